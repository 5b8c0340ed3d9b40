import Foundation
import Platform
import XCTest

/// The `swiftlet` binary's verbs against a detached worker: up -d, status, invoke, admin install, down.
final class CommandLineTests: XCTestCase {
    func run(_ arguments: [String]) throws -> (code: Int32, out: String, err: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try swiftletBinary())
        process.arguments = arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: outData, as: UTF8.self), String(decoding: errData, as: UTF8.self))
    }

    func testWorkerLifecycleInvokeAndInstall() throws {
        let dir = NSTemporaryDirectory() + "swiftlet-cli-\(UUID().uuidString.prefix(6))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let sandbox = geteuid() == 0 ? "isolated" : "process"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try "{\"sandbox\": \"\(sandbox)\", \"port\": 0}".write(toFile: dir + "/config.json", atomically: true, encoding: .utf8)

        let up = try run(["worker", "up", "--dir", dir, "-d"])
        XCTAssertEqual(up.code, 0, up.err)
        let port = try XCTUnwrap(WorkerDirectory(path: dir).port())
        let url = "http://127.0.0.1:\(port)"

        let again = try run(["worker", "up", "--dir", dir, "-d"])
        XCTAssertNotEqual(again.code, 0)
        XCTAssertTrue(again.err.contains("already running"), again.err)

        let status = try run(["worker", "status", "--dir", dir])
        XCTAssertEqual(status.code, 0, status.err)
        XCTAssertTrue(status.out.contains("\"sandbox\":\"\(sandbox)\""), status.out)

        let echo = try run(["invoke", "echo", #"{"x":1}"#, "--url", url])
        XCTAssertEqual(echo.code, 0, echo.err)
        XCTAssertEqual(echo.out.trimmingCharacters(in: .whitespacesAndNewlines), #"{"x":1}"#)

        let source = dir + "/src/adder"
        try FileManager.default.createDirectory(atPath: source, withIntermediateDirectories: true)
        try "def f(event):\n    return event['a'] + event['b']\n".write(toFile: source + "/f.py", atomically: true, encoding: .utf8)
        let install = try run(["admin", "install", source, "--url", url])
        XCTAssertEqual(install.code, 0, install.err)
        let sum = try run(["invoke", "adder", #"{"a":2,"b":3}"#, "--url", url])
        XCTAssertEqual(sum.out.trimmingCharacters(in: .whitespacesAndNewlines), "5", sum.err)

        let missing = try run(["invoke", "nope", "--url", url])
        XCTAssertEqual(missing.code, 1)
        XCTAssertTrue(missing.out.contains("no lambda named"), missing.out)

        let down = try run(["worker", "down", "--dir", dir])
        XCTAssertEqual(down.code, 0, down.err)
        XCTAssertNil(WorkerDirectory(path: dir).runningPID())
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/sandboxes"), "sandbox directories left behind")
        let log = (try? String(contentsOfFile: dir + "/worker.log", encoding: .utf8)) ?? ""
        XCTAssertTrue(log.contains("sandbox backend: \(sandbox)"), log)

        let after = try run(["worker", "status", "--dir", dir])
        XCTAssertEqual(after.code, 3)
    }

    func testBadConfigIsReportedWithFileAndField() throws {
        let dir = NSTemporaryDirectory() + "swiftlet-cli-\(UUID().uuidString.prefix(6))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try "{\"keep_alive\": 5}".write(toFile: dir + "/config.json", atomically: true, encoding: .utf8)
        let up = try run(["worker", "up", "--dir", dir])
        XCTAssertNotEqual(up.code, 0)
        XCTAssertTrue(up.err.contains("config.json: keep_alive: unknown key"), up.err)
    }
}
