import Foundation
import Platform
import XCTest

final class WorkerConfigTests: XCTestCase {
    func decode(_ json: String) throws -> WorkerConfig {
        try JSONDecoder().decode(WorkerConfig.self, from: Data(json.utf8))
    }

    func testEmptyObjectGivesDefaults() throws {
        let config = try decode("{}")
        XCTAssertEqual(config, WorkerConfig())
        XCTAssertEqual(config.port, 5000)
        XCTAssertEqual(config.registryCacheMs, 5000)
        XCTAssertEqual(config.billingGranularityMs, 100)
        XCTAssertEqual(config.maxBodyBytes, 6 * 1024 * 1024)
        XCTAssertEqual(config.keepAliveS, 600)
    }

    func testFieldsAndPartialLimitsOverride() throws {
        let config = try decode(#"{"port": 7000, "sandbox": "process", "limits": {"memory_mb": 50}, "environment": {"A": "b"}}"#)
        XCTAssertEqual(config.port, 7000)
        XCTAssertEqual(config.sandbox, "process")
        XCTAssertEqual(config.limits.memoryMB, 50)
        XCTAssertEqual(config.limits.timeoutSeconds, SandboxLimits().timeoutSeconds)
        XCTAssertEqual(config.environment, ["A": "b"])
    }

    func testRoundTripOfWrittenDefaults() throws {
        let data = try WorkerConfig().encodedJSON()
        XCTAssertEqual(try JSONDecoder().decode(WorkerConfig.self, from: data), WorkerConfig())
    }

    func testErrorsNameTheField() {
        XCTAssertThrowsError(try decode(#"{"prot": 1}"#)) { error in
            XCTAssertTrue("\(error)".hasPrefix("prot: unknown key"), "\(error)")
        }
        XCTAssertThrowsError(try decode(#"{"port": "x"}"#)) { error in
            XCTAssertEqual("\(error)", "port: expected a whole number")
        }
        XCTAssertThrowsError(try decode(#"{"port": 70000}"#)) { error in
            XCTAssertEqual("\(error)", "port: must be 0...65535, got 70000")
        }
        XCTAssertThrowsError(try decode(#"{"sandbox": "docker"}"#)) { error in
            XCTAssertTrue("\(error)".contains("sandbox: must be auto, isolated or process"), "\(error)")
        }
        XCTAssertThrowsError(try decode(#"{"sandbox_scheduling": "fifo"}"#)) { error in
            XCTAssertEqual("\(error)", "sandbox_scheduling: must be batch or normal, got \"fifo\"")
        }
        XCTAssertEqual(try decode(#"{"sandbox_scheduling": "normal"}"#).sandboxScheduling, "normal")
        XCTAssertEqual(try decode("{}").sandboxScheduling, "batch")
        XCTAssertThrowsError(try decode(#"{"limits": {"memory_mb": 2}}"#)) { error in
            XCTAssertEqual("\(error)", "limits.memory_mb: must be >= 8, got 2")
        }
        XCTAssertThrowsError(try decode(#"{"limits": {"mem": 2}}"#)) { error in
            XCTAssertTrue("\(error)".hasPrefix("limits.mem: unknown limit"), "\(error)")
        }
    }

    func testLoadNamesTheFile() throws {
        let path = NSTemporaryDirectory() + "cfg-\(UUID().uuidString.prefix(6)).json"
        try "{\"port\": true}".write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        XCTAssertThrowsError(try WorkerConfig.load(from: path)) { error in
            XCTAssertEqual("\(error)", "\(path): port: expected a whole number")
        }
        try "{not json".write(toFile: path, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try WorkerConfig.load(from: path)) { error in
            XCTAssertTrue("\(error)".hasPrefix("\(path): (file): not valid JSON"), "\(error)")
        }
    }
}
