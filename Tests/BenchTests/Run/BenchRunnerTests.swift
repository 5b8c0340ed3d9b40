import Apps
import Foundation
import Platform
import XCTest

@testable import Bench

final class BenchRunnerTests: XCTestCase {
    func scratch() throws -> String {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("runner-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        return directory
    }

    func writeWorkload(_ text: String, in directory: String, name: String = "w.yaml") throws -> String {
        let path = directory + "/" + name
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func options(_ workload: String, _ target: BenchTarget, db: String) -> BenchRunOptions {
        var options = BenchRunOptions(workloadPath: workload, target: target, databasePath: db)
        options.showProgress = false
        options.handleSignals = false
        return options
    }

    func testURLRunRecordsRunRequestsAndEnvironment() async throws {
        let server = StubServer { _ in 5 }
        let url = try await server.start()
        let directory = try scratch()
        let text = "seed: 4\nduration: 1\nwarmup: 0.5\narrival: open\nrate: 40\ntargets:\n  - lambda: spin\n    payload: {ms: 5, mode: cpu}\n"
        let workload = try writeWorkload(text, in: directory)
        let db = directory + "/r.sqlite"
        let result = try await BenchRunner.run(options(workload, .url(url), db: db))
        await server.stop()
        XCTAssertEqual(result.status, "complete")
        let database = try ResultsDatabase(path: db)
        let run = try XCTUnwrap(try database.run(id: result.runID))
        XCTAssertEqual(run.workload, "w")
        XCTAssertEqual(run.status, "complete")
        XCTAssertEqual(run.target, url)
        XCTAssertEqual(run.workloadHash, SHA256Digest.hex(Array(text.utf8)))
        XCTAssertEqual(run.swiftletVersion, Platform.swiftletVersion)
        XCTAssertGreaterThan(run.cores, 0)
        XCTAssertNotNil(run.ended)
        XCTAssertTrue(run.parameters.contains(#""seed":4"#), run.parameters)
        // Open loop: no clients, so spin keeps its mode and there is no note.
        XCTAssertEqual(run.notes, "")
        let rows = try database.requests(runID: result.runID)
        XCTAssertEqual(Double(rows.count), 60, accuracy: 25)
        XCTAssertEqual(result.requests, rows.count)
        XCTAssertTrue(rows.contains { $0.warmup } && rows.contains { !$0.warmup })
        XCTAssertFalse(try database.samples(runID: result.runID).isEmpty)
    }

    func testSpinSwitchesToSleepWhenClientsOutnumberCores() throws {
        var workload = Workload(
            name: "e", targets: [WorkloadTarget(lambda: "spin", payload: #"{"mode":"cpu","ms":200}"#)],
            arrival: .closed(clients: 100, thinkSeconds: 0), durationSeconds: 60)
        let note = BenchRunner.applySpinMode(.auto, to: &workload, cores: 2)
        XCTAssertEqual(note, "spin mode sleep: 2 cores < 100 clients, so the handler waits instead of computing")
        XCTAssertEqual(workload.targets[0].payload, #"{"mode":"sleep","ms":200}"#)
        var enough = Workload(
            name: "e", targets: [WorkloadTarget(lambda: "spin", payload: #"{"mode":"cpu","ms":200}"#)],
            arrival: .closed(clients: 4, thinkSeconds: 0), durationSeconds: 60)
        XCTAssertNil(BenchRunner.applySpinMode(.auto, to: &enough, cores: 8))
        XCTAssertEqual(enough.targets[0].payload, #"{"mode":"cpu","ms":200}"#)
        XCTAssertEqual(BenchRunner.applySpinMode(.sleep, to: &enough, cores: 8), "spin mode sleep (forced by --spin-mode)")
    }

    func testModelRunStoresRowsLikeARealRun() async throws {
        let directory = try scratch()
        let workload = try writeWorkload(
            "seed: 1\nduration: 10\narrival: closed\nclients: 5\ntargets:\n  - lambda: spin\n    payload: {ms: 200, mode: cpu}\n",
            in: directory)
        let db = directory + "/r.sqlite"
        let result = try await BenchRunner.run(options(workload, .model("container"), db: db))
        XCTAssertEqual(result.status, "complete")
        let database = try ResultsDatabase(path: db)
        let run = try XCTUnwrap(try database.run(id: result.runID))
        XCTAssertEqual(run.target, "model:container")
        XCTAssertTrue(run.parameters.contains(#""model":"#), run.parameters)
        let rows = try database.requests(runID: result.runID)
        XCTAssertFalse(rows.isEmpty)
        XCTAssertEqual(result.requests, rows.count)
        XCTAssertTrue(rows.allSatisfy { $0.runID == result.runID && $0.lambda == "spin" })
        // 100 ms samples over the 10 s run.
        let samples = try database.samples(runID: result.runID)
        XCTAssertGreaterThanOrEqual(Set(samples.map(\.tNs)).count, 90)
    }

    func testBadInputsFailBeforeARunIsCreated() async throws {
        let directory = try scratch()
        let db = directory + "/r.sqlite"
        let bad = try writeWorkload("arrival: open\nrate: x\nduration: 1\ntargets: [{lambda: a}]\n", in: directory, name: "bad.yaml")
        do {
            _ = try await BenchRunner.run(options(bad, .model("container"), db: db))
            XCTFail("expected an error")
        } catch {
            XCTAssertEqual("\(error)", "\(bad):2: rate: expected a number")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: db))
        XCTAssertThrowsError(try BenchTarget(parsing: "model:vm")) {
            XCTAssertEqual("\($0)", "--target 'model:vm': expected local, http://HOST:PORT, model:container or model:lambda")
        }
        XCTAssertEqual(try BenchTarget(parsing: "model:lambda"), .model("lambda"))
        XCTAssertEqual(try BenchTarget(parsing: "http://127.0.0.1:8080"), .url("http://127.0.0.1:8080"))
    }

    func testSIGINTMarksTheRunAbortedAndKeepsRows() async throws {
        let server = StubServer { _ in 0 }
        let url = try await server.start()
        let directory = try scratch()
        let workload = try writeWorkload(
            "duration: 30\narrival: open\nrate: 100\ntargets: [{lambda: echo}]\n", in: directory)
        let db = directory + "/r.sqlite"
        var opts = options(workload, .url(url), db: db)
        opts.handleSignals = true
        let started = Date()
        Task {
            try await Task.sleep(nanoseconds: 700_000_000)
            kill(getpid(), SIGINT)
        }
        let result = try await BenchRunner.run(opts)
        await server.stop()
        XCTAssertLessThan(Date().timeIntervalSince(started), 10)
        XCTAssertEqual(result.status, "aborted")
        let database = try ResultsDatabase(path: db)
        let run = try XCTUnwrap(try database.run(id: result.runID))
        XCTAssertEqual(run.status, "aborted")
        XCTAssertTrue(run.notes.contains("aborted by signal"), run.notes)
        XCTAssertGreaterThan(try database.requestCount(runID: result.runID), 20)
    }

    /// End to end against an embedded worker with the built-in apps.
    func testLocalRunAgainstEmbeddedWorker() async throws {
        let directory = try scratch()
        let workload = try writeWorkload(
            "duration: 2\narrival: closed\nclients: 4\ntargets:\n  - lambda: spin\n    payload: {ms: 50, mode: sleep}\n",
            in: directory)
        let db = directory + "/r.sqlite"
        var opts = options(workload, .local, db: db)
        opts.localWorker = {
            var config = WorkerConfig()
            config.port = 0
            config.logLevel = "critical"
            // Built-in apps run in the swiftlet binary, built next to this test bundle.
            config.swiftRuntime = URL(fileURLWithPath: ProcessInfo.processInfo.arguments[0]).deletingLastPathComponent()
                .appendingPathComponent("swiftlet").path
            let worker = try await EmbeddedWorker.start(directory: directory + "/worker", config: config, apps: BuiltinApps.all)
            return LocalWorkerHandle(url: worker.url) { await worker.stop() }
        }
        let result = try await BenchRunner.run(opts)
        XCTAssertEqual(result.status, "complete")
        let database = try ResultsDatabase(path: db)
        let rows = try database.requests(runID: result.runID)
        let ok = rows.filter { $0.status == 200 }
        XCTAssertGreaterThan(ok.count, 40, "errors: \(Set(rows.map(\.error)))")
        XCTAssertTrue(ok.allSatisfy { $0.latencyMs >= 50 })
        XCTAssertTrue(ok.contains { $0.cold == true }, "the first requests start sandboxes")
        XCTAssertTrue(ok.contains { $0.cold == false })
        XCTAssertTrue(ok.allSatisfy { $0.sandboxID != nil && $0.worker != nil && $0.runMs != nil })
        let samples = try database.samples(runID: result.runID)
        XCTAssertFalse(samples.isEmpty)
        XCTAssertTrue(samples.contains { $0.lambda == "spin" && $0.instances > 0 })
    }
}
