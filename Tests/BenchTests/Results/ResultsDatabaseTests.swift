import Foundation
import GRDB
import XCTest

@testable import Bench

final class ResultsDatabaseTests: XCTestCase {
    func tempPath() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("rdb-\(UUID().uuidString)/nested/results.sqlite").path
    }

    static func sampleRun(status: String = "running") -> RunRecord {
        RunRecord(
            workload: "elasticity", workloadHash: SHA256Digest.hex(Array("x".utf8)), parameters: #"{"seed":1}"#,
            target: "local", gitRevision: "abc", swiftletVersion: "0.1.0", cpuModel: "cpu", cores: 2,
            memoryBytes: 24 << 30, kernel: "Linux 6", started: 1000.5, status: status, notes: "n")
    }

    static func request(_ runID: Int64, _ seq: Int64) -> RequestRow {
        RequestRow(
            runID: runID, seq: seq, lambda: "spin", intendedNs: seq * 1000, sentNs: seq * 1000 + 5, endNs: seq * 1000 + 99,
            latencyMs: 0.099, status: 200, bytes: 12, error: seq % 2 == 0 ? "" : "boom", cold: seq == 0 ? true : nil,
            initMs: seq == 0 ? 30 : nil, runMs: 1.5, billedMs: 100, sandboxID: "sb", worker: "w", warmup: seq < 2)
    }

    func testRoundTrip() throws {
        let database = try ResultsDatabase(path: tempPath())
        let id = try database.createRun(Self.sampleRun())
        let requests = (0..<5).map { Self.request(id, $0) }
        try database.insert(requests: requests)
        let samples = [
            SampleRow(runID: id, tNs: 100, lambda: "spin", running: 1, idle: 2, paused: 3, starting: 4, queued: 5,
                      created: 6, destroyed: 7, memoryReservedMB: 8)
        ]
        try database.insert(samples: samples)
        try database.finishRun(id: id, status: "complete", ended: 2000, notes: "done")
        var expected = Self.sampleRun(status: "complete")
        expected.id = id
        expected.ended = 2000
        expected.notes = "done"
        XCTAssertEqual(try database.run(id: id), expected)
        XCTAssertEqual(try database.runs(), [expected])
        XCTAssertEqual(try database.requests(runID: id), requests)
        XCTAssertEqual(try database.samples(runID: id), samples)
        XCTAssertNil(try database.run(id: 99))
        XCTAssertThrowsError(try database.finishRun(id: 99, status: "complete", ended: 1)) {
            XCTAssertEqual("\($0)", "no run with id 99 in the results database")
        }
        XCTAssertEqual(try database.appliedMigrations(), ["v1", "v2", "v3"])
        let mode = try database.pool.read { try String.fetchOne($0, sql: "PRAGMA journal_mode") }
        XCTAssertEqual(mode, "wal")
    }

    /// A `running` run whose writer is gone becomes `aborted` when the database is next opened; other hosts' runs and
    /// runs of live processes are left alone.
    func testRunsOfDeadWritersAreMarkedAborted() throws {
        let path = tempPath()
        let database = try ResultsDatabase(path: path)
        let live = try database.createRun(Self.sampleRun())
        let dead = try database.createRun(Self.sampleRun())
        let elsewhere = try database.createRun(Self.sampleRun())
        try database.insert(requests: [Self.request(dead, 0), Self.request(dead, 1)])
        let host = RunOwner.hostName()
        try database.pool.write { db in
            // pid 0 never names a process of ours; a pid with the wrong start time is a recycled pid.
            try db.execute(sql: "UPDATE runs SET owner = ? WHERE id = ?", arguments: ["\(host)|\(getpid())|1", dead])
            try db.execute(sql: "UPDATE runs SET owner = ? WHERE id = ?", arguments: ["other-host|0|1", elsewhere])
        }
        let reopened = try ResultsDatabase(path: path)
        XCTAssertEqual(try reopened.run(id: live)?.status, "running")
        XCTAssertEqual(try reopened.run(id: elsewhere)?.status, "running", "another host's run cannot be judged here")
        let aborted = try XCTUnwrap(try reopened.run(id: dead))
        XCTAssertEqual(aborted.status, "aborted")
        XCTAssertEqual(aborted.notes, "n; " + RunOwner.abandonedNote)
        XCTAssertEqual(try XCTUnwrap(aborted.ended), 1000.5 + 1099e-9, accuracy: 1e-6, "ended at its last request")
        XCTAssertEqual(RunOwner(RunOwner.current.description), RunOwner.current)
        XCTAssertTrue(RunOwner.current.isAlive)
        XCTAssertNil(RunOwner("no-pipes"))
    }

    func testMigratesADatabaseCreatedByTheFirstSchema() throws {
        let path = tempPath()
        try FileManager.default.createDirectory(
            atPath: URL(fileURLWithPath: path).deletingLastPathComponent().path, withIntermediateDirectories: true)
        do {
            let old = try DatabaseQueue(path: path)
            try ResultsDatabase.migrator().migrate(old, upTo: "v1")
            try old.write { db in
                try db.execute(sql: """
                    INSERT INTO runs (workload, workload_hash, parameters, target, git_revision, swiftlet_version, cpu_model,
                        cores, memory_bytes, kernel, started, ended, status)
                    VALUES ('old', 'h', '{}', 'local', 'g', '0.0.1', 'c', 1, 1, 'k', 1, 2, 'complete');
                    INSERT INTO requests (run_id, seq, lambda, intended_ns, sent_ns, end_ns, latency_ms, status, bytes, error)
                    VALUES (1, 0, 'echo', 0, 1, 2, 0.002, 200, 3, '');
                    """)
            }
        }
        let database = try ResultsDatabase(path: path)
        XCTAssertEqual(try database.appliedMigrations(), ["v1", "v2", "v3"])
        let run = try XCTUnwrap(try database.run(id: 1))
        XCTAssertEqual(run.workload, "old")
        XCTAssertEqual(run.notes, "")
        let rows = try database.requests(runID: 1)
        XCTAssertEqual(rows.count, 1)
        XCTAssertEqual(rows[0].warmup, false)
        XCTAssertNil(rows[0].cold)
        // And the upgraded file takes new runs.
        XCTAssertEqual(try database.createRun(Self.sampleRun()), 2)
    }

    func testUnopenableDatabaseIsNamed() {
        XCTAssertThrowsError(try ResultsDatabase(path: "/proc/forbidden/results.sqlite")) {
            XCTAssertTrue("\($0)".hasPrefix("cannot open results database /proc/forbidden/results.sqlite:"), "\($0)")
        }
    }

    /// The generator only appends under a lock; committing happens on the writer's thread.
    func testWriterKeepsUpAndAddingIsCheap() async throws {
        let database = try ResultsDatabase(path: tempPath())
        let id = try database.createRun(Self.sampleRun())
        let writer = ResultsWriter(database: database)
        let rows = (0..<200_000).map { Self.request(id, Int64($0)) }
        let clock = ContinuousClock()
        let addTime = clock.measure {
            for row in rows { writer.add(row) }
        }
        let closeTime = try await clock.measure { try await writer.close() }
        let perAddNs = Double(addTime.components.attoseconds / 1_000_000_000 + addTime.components.seconds * 1_000_000_000)
            / Double(rows.count)
        print("results writer: add \(String(format: "%.0f", perAddNs)) ns/row; drain after adds \(closeTime)")
        XCTAssertLessThan(perAddNs, 5_000, "adding a row must stay far below a request's cost")
        XCTAssertEqual(try database.requestCount(runID: id), rows.count)
        XCTAssertEqual(writer.committed.requests, rows.count)
        XCTAssertGreaterThan(writer.committed.batches, 1)
    }

    func testSHA256KnownVectors() {
        XCTAssertEqual(SHA256Digest.hex([UInt8]()), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(
            SHA256Digest.hex(Array("abc".utf8)), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(
            SHA256Digest.hex(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
    }

    func testMachineInfoIsFilledIn() {
        let info = MachineInfo.current(gitDirectory: "/nonexistent")
        XCTAssertGreaterThan(info.cores, 0)
        XCTAssertGreaterThan(info.memoryBytes, 0)
        XCTAssertTrue(info.kernel.hasPrefix("Linux"), info.kernel)
        XCTAssertEqual(info.gitRevision, "unknown")
        XCTAssertFalse(info.cpuModel.isEmpty)
    }
}
