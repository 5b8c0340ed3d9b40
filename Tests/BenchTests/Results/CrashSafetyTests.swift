import Foundation
import XCTest

@testable import Bench

/// A run killed with SIGKILL keeps every committed batch, and the next run still opens the database.
final class CrashSafetyTests: XCTestCase {
    static let childDatabaseVariable = "SWIFTLET_CRASH_CHILD_DB"

    /// In the child process: write batches forever (until killed). In a normal test run: write a few batches and check them.
    func testWriterChild() async throws {
        if let path = ProcessInfo.processInfo.environment[Self.childDatabaseVariable] {
            let database = try ResultsDatabase(path: path)
            let id = try database.createRun(ResultsDatabaseTests.sampleRun())
            let writer = ResultsWriter(database: database, batchSize: 500, interval: 0.02)
            var seq: Int64 = 0
            while true {
                for _ in 0..<250 {
                    writer.add(ResultsDatabaseTests.request(id, seq))
                    seq += 1
                }
                try await Task.sleep(nanoseconds: 5_000_000)
            }
        }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("crash-\(UUID().uuidString).sqlite").path
        let database = try ResultsDatabase(path: path)
        let id = try database.createRun(ResultsDatabaseTests.sampleRun())
        let writer = ResultsWriter(database: database, batchSize: 100, interval: 0.01)
        for seq in 0..<1000 { writer.add(ResultsDatabaseTests.request(id, Int64(seq))) }
        try await writer.close()
        XCTAssertEqual(try database.requestCount(runID: id), 1000)
    }

    func testSIGKILLKeepsCommittedBatches() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("crash-\(UUID().uuidString).sqlite").path
        _ = try ResultsDatabase(path: path)
        let child = Process()
        child.executableURL = URL(fileURLWithPath: ProcessInfo.processInfo.arguments[0])
        child.arguments = ["BenchTests.CrashSafetyTests/testWriterChild"]
        child.environment = ProcessInfo.processInfo.environment.merging([Self.childDatabaseVariable: path]) { $1 }
        child.standardOutput = FileHandle.nullDevice
        child.standardError = FileHandle.nullDevice
        try child.run()
        let observer = try ResultsDatabase(path: path)
        var seen = 0
        let deadline = Date().addingTimeInterval(30)
        while seen < 5000 && Date() < deadline {
            Thread.sleep(forTimeInterval: 0.05)
            seen = try observer.requestCount(runID: 1)
        }
        kill(child.processIdentifier, SIGKILL)
        child.waitUntilExit()
        XCTAssertEqual(child.terminationReason, .uncaughtSignal)
        XCTAssertGreaterThanOrEqual(seen, 5000, "the child committed batches before it was killed")

        let reopened = try ResultsDatabase(path: path)
        let killedRun = try XCTUnwrap(try reopened.run(id: 1))
        XCTAssertEqual(killedRun.status, "aborted", "a run whose process was killed is not left running")
        XCTAssertTrue(killedRun.notes.contains("ended without finishing"), killedRun.notes)
        XCTAssertNotNil(killedRun.ended)
        let rows = try reopened.requests(runID: 1)
        XCTAssertGreaterThanOrEqual(rows.count, seen, "every batch committed before the kill is still there")
        XCTAssertEqual(rows.map(\.seq), (0..<Int64(rows.count)).map { $0 }, "batches are whole: no gaps")
        let integrity = try reopened.pool.read { try String.fetchOne($0, sql: "PRAGMA integrity_check") }
        XCTAssertEqual(integrity, "ok")
        let next = try reopened.createRun(ResultsDatabaseTests.sampleRun())
        try reopened.insert(requests: [ResultsDatabaseTests.request(next, 0)])
        XCTAssertEqual(try reopened.requestCount(runID: next), 1)
        _ = try ResultsDatabase(path: path)
        XCTAssertEqual(try reopened.run(id: next)?.status, "running", "a run whose process is alive stays running")
    }
}
