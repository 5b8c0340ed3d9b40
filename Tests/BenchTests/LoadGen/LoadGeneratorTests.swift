import Foundation
import XCTest

@testable import Bench

final class LoadGeneratorTests: XCTestCase {
    func tempDatabase() throws -> ResultsDatabase {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("lg-\(UUID().uuidString)/r.sqlite").path
        return try ResultsDatabase(path: path)
    }

    func newRun(_ database: ResultsDatabase) throws -> Int64 {
        try database.createRun(
            RunRecord(workload: "t", workloadHash: "h", parameters: "{}", target: "stub", gitRevision: "g",
                      swiftletVersion: "v", cpuModel: "c", cores: 1, memoryBytes: 1, kernel: "k", started: 0))
    }

    func drive(_ workload: Workload, url: String, configure: (inout LoadGeneratorConfig) -> Void = { _ in })
        async throws -> (requests: [RequestRow], samples: [SampleRow])
    {
        let database = try tempDatabase()
        let runID = try newRun(database)
        let writer = ResultsWriter(database: database)
        var config = LoadGeneratorConfig(url: url)
        configure(&config)
        let generator = try LoadGenerator(
            workload: workload, arrivals: try ArrivalSchedule.openArrivals(for: workload, baseDirectory: "/"),
            segments: ArrivalSchedule.closedSegments(for: workload), runID: runID, config: config, writer: writer)
        try await generator.run()
        try await writer.close()
        return (try database.requests(runID: runID), try database.samples(runID: runID))
    }

    /// One connection, the first request stalls 500 ms: the requests queued behind it are charged from their
    /// intended send time, not from when they could finally be sent.
    func testOpenLoopLatencyCountsFromIntendedTime() async throws {
        let server = StubServer { $0 == 0 ? 500 : 0 }
        let url = try await server.start()
        let workload = Workload(
            name: "co", targets: [WorkloadTarget(lambda: "spin")], arrival: .open(rate: 100, process: .constant),
            durationSeconds: 1, warmupSeconds: 0.2)
        let (rows, samples) = try await drive(workload, url: url) {
            $0.maxConnections = 1
            $0.preconnectPerLoop = 1
            $0.threads = 1
            $0.sampleStats = false
        }
        await server.stop()
        XCTAssertEqual(rows.count, 120)
        XCTAssertEqual(rows.map(\.seq), (0..<120).map(Int64.init))
        XCTAssertTrue(samples.isEmpty)
        for row in rows {
            XCTAssertEqual(row.status, 200)
            XCTAssertEqual(row.latencyMs, Double(row.endNs - row.intendedNs) / 1e6, accuracy: 1e-9)
            XCTAssertGreaterThanOrEqual(row.sentNs, row.intendedNs)
            XCTAssertEqual(row.warmup, row.intendedNs < 200_000_000)
        }
        // Request 1 was due at 10 ms but could only go out after the stall (~500 ms).
        let second = rows[1]
        XCTAssertEqual(second.intendedNs, 10_000_000)
        XCTAssertGreaterThan(second.sentNs, 450_000_000)
        XCTAssertGreaterThan(second.latencyMs, 440)
        XCTAssertLessThan(Double(second.endNs - second.sentNs) / 1e6, 100, "its own service time was short")
        // Latency falls as the backlog drains: request 40 (due at 400 ms) waited ~100 ms.
        XCTAssertGreaterThan(rows[40].latencyMs, 60)
        XCTAssertLessThan(rows[40].latencyMs, 300)
        // Worker headers are recorded.
        XCTAssertEqual(rows[0].cold, true)
        XCTAssertEqual(rows[0].initMs, 12.5)
        XCTAssertEqual(rows[0].runMs, 500)
        XCTAssertEqual(rows[0].billedMs, 100)
        XCTAssertEqual(rows[0].sandboxID, "sb-0")
        XCTAssertEqual(rows[0].worker, "stub")
        XCTAssertEqual(rows[5].cold, false)
        XCTAssertEqual(rows[0].bytes, 4)
        XCTAssertEqual(rows[0].lambda, "spin")
    }

    func testClosedLoopClientsWaitForResponsesAndStatsAreSampled() async throws {
        let server = StubServer { _ in 50 }
        let url = try await server.start()
        let workload = Workload(
            name: "closed", targets: [WorkloadTarget(lambda: "spin")], arrival: .closed(clients: 4, thinkSeconds: 0),
            durationSeconds: 1)
        let (rows, samples) = try await drive(workload, url: url)
        await server.stop()
        // 4 clients × ~1 s / 50 ms each.
        XCTAssertEqual(Double(rows.count), 80, accuracy: 12)
        XCTAssertTrue(rows.allSatisfy { $0.status == 200 && $0.error.isEmpty })
        XCTAssertTrue(rows.allSatisfy { $0.latencyMs >= 49 && $0.latencyMs < 200 })
        XCTAssertEqual(Set(rows.map(\.seq)).count, rows.count, "sequence numbers are unique")
        // Never more than 4 requests in flight at once.
        var events: [(time: Int64, delta: Int)] = []
        for row in rows {
            events.append((row.sentNs, 1))
            events.append((row.endNs, -1))
        }
        events.sort { lhs, rhs in lhs.time != rhs.time ? lhs.time < rhs.time : lhs.delta < rhs.delta }
        var inFlight = 0
        var peak = 0
        for event in events {
            inFlight += event.delta
            peak = max(peak, inFlight)
        }
        XCTAssertLessThanOrEqual(peak, 4)
        // ~10 samples per second of /stats.
        XCTAssertGreaterThanOrEqual(samples.count, 6)
        XCTAssertEqual(samples.first?.lambda, "spin")
        XCTAssertEqual(samples.first?.running, 2)
        XCTAssertEqual(samples.first?.queued, 3)
        XCTAssertEqual(samples.first?.instances, 4)
        XCTAssertEqual(samples.first?.memoryReservedMB, 256)
    }

    /// With zero think time a closed-loop client is ready again when its response arrives: that is the next
    /// request's intended time, so time the generator spends between requests counts as latency (as in wrk).
    func testClosedLoopNextIntendedTimeIsPreviousEnd() async throws {
        let server = StubServer { _ in 5 }
        let url = try await server.start()
        let workload = Workload(
            name: "closed1", targets: [WorkloadTarget(lambda: "spin")], arrival: .closed(clients: 1, thinkSeconds: 0),
            durationSeconds: 0.3)
        let (rows, _) = try await drive(workload, url: url) { $0.sampleStats = false }
        await server.stop()
        XCTAssertGreaterThan(rows.count, 10)
        let ordered = rows.sorted { $0.seq < $1.seq }
        XCTAssertEqual(ordered.first?.intendedNs, 0)
        for (previous, next) in zip(ordered, ordered.dropFirst()) {
            XCTAssertEqual(next.intendedNs, previous.endNs)
            XCTAssertGreaterThanOrEqual(next.sentNs, next.intendedNs)
            XCTAssertGreaterThanOrEqual(next.latencyMs, 5)
        }
    }

    func testTargetWithoutStatsIsNotPolledAgain() async throws {
        let server = StubServer(hasStats: false) { _ in 0 }
        let url = try await server.start()
        let workload = Workload(
            name: "open", targets: [WorkloadTarget(lambda: "echo")], arrival: .open(rate: 200, process: .poisson),
            durationSeconds: 0.5)
        let (rows, samples) = try await drive(workload, url: url)
        await server.stop()
        XCTAssertEqual(Double(rows.count), 100, accuracy: 40)
        XCTAssertTrue(samples.isEmpty)
        XCTAssertEqual(server.statsRequests.load(ordering: .relaxed), 1)
    }

    func testDeadTargetRecordsConnectErrors() async throws {
        let workload = Workload(
            name: "dead", targets: [WorkloadTarget(lambda: "echo")], arrival: .open(rate: 50, process: .constant),
            durationSeconds: 0.2)
        // Port 1 on loopback: connection refused.
        let (rows, _) = try await drive(workload, url: "http://127.0.0.1:1") { $0.sampleStats = false }
        XCTAssertEqual(rows.count, 10)
        XCTAssertTrue(rows.allSatisfy { $0.status == 0 && $0.error.hasPrefix("connect:") })
    }

    func testRequestTimeoutIsRecorded() async throws {
        let server = StubServer { $0 == 0 ? 3000 : 0 }
        let url = try await server.start()
        let workload = Workload(
            name: "slow", targets: [WorkloadTarget(lambda: "echo")], arrival: .open(rate: 10, process: .constant),
            durationSeconds: 0.3)
        let (rows, _) = try await drive(workload, url: url) {
            $0.requestTimeoutSeconds = 0.5
            $0.sampleStats = false
        }
        await server.stop()
        XCTAssertEqual(rows.count, 3)
        XCTAssertEqual(rows[0].status, 0)
        XCTAssertEqual(rows[0].error, "timeout after 0.5 s")
        XCTAssertEqual(rows[0].latencyMs, 550, accuracy: 150)
        XCTAssertEqual(rows[1].status, 200)
    }

    func testStopEndsEarlyAndKeepsFinishedRequests() async throws {
        let server = StubServer { _ in 0 }
        let url = try await server.start()
        let database = try tempDatabase()
        let runID = try newRun(database)
        let writer = ResultsWriter(database: database)
        let workload = Workload(
            name: "long", targets: [WorkloadTarget(lambda: "echo")], arrival: .open(rate: 100, process: .constant),
            durationSeconds: 30)
        let generator = try LoadGenerator(
            workload: workload, arrivals: try ArrivalSchedule.openArrivals(for: workload, baseDirectory: "/"),
            segments: [], runID: runID, config: LoadGeneratorConfig(url: url), writer: writer)
        let started = Date()
        Task {
            try await Task.sleep(nanoseconds: 500_000_000)
            generator.stop()
        }
        try await generator.run()
        try await writer.close()
        await server.stop()
        XCTAssertLessThan(Date().timeIntervalSince(started), 5)
        XCTAssertTrue(generator.isStopped)
        let count = try database.requestCount(runID: runID)
        XCTAssertGreaterThan(count, 30)
        XCTAssertLessThan(count, 100)
    }

    func testTargetURLParsing() throws {
        let url = try TargetURL(parsing: "http://example.org:8080/prefix/")
        XCTAssertEqual(url.host, "example.org")
        XCTAssertEqual(url.port, 8080)
        XCTAssertEqual(url.prefix, "/prefix")
        XCTAssertEqual(try TargetURL(parsing: "http://h").port, 80)
        XCTAssertThrowsError(try TargetURL(parsing: "https://h")) {
            XCTAssertEqual("\($0)", "target URL 'https://h': expected http://HOST[:PORT][/PATH] (https is not supported)")
        }
        XCTAssertThrowsError(try TargetURL(parsing: "http://h:99999"))
    }
}
