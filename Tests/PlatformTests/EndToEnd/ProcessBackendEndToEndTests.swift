import Foundation
import HTTPTypes
import HummingbirdTesting
import Platform
import XCTest

/// The reduced-isolation backend works without privileges, and says so.
final class ProcessBackendEndToEndTests: XCTestCase {
    func testPythonAndSwiftLambdasRunAndStatusReportsReducedIsolation() async throws {
        let worker = try await TestWorker.start(sandbox: "process", lambdas: ["echo-py": TestLambdas.echo, "raises": TestLambdas.raises])
        defer { Task { await worker.stop() } }
        let status = try worker.json(try await worker.request(.get, "/status"))
        XCTAssertEqual(status["sandbox"] as? String, "process")
        XCTAssertTrue((status["isolation"] as? String ?? "").contains("REDUCED ISOLATION"), "\(status)")
        let echo = try await worker.request(.post, "/run/echo-py", body: #"{"k":[1,2]}"#)
        XCTAssertEqual(echo.status, .ok, echo.text)
        XCTAssertEqual(echo.text, #"{"k": [1, 2]}"#)
        XCTAssertEqual(echo.header("X-Swiftlet-Start"), "cold")
        let again = try await worker.request(.post, "/run/echo-py", body: "2")
        XCTAssertEqual(again.header("X-Swiftlet-Start"), "warm")
        let raised = try await worker.request(.post, "/run/raises")
        XCTAssertEqual(raised.status, .internalServerError)
        let noop = try await worker.request(.post, "/run/noop")
        XCTAssertEqual(noop.status, .ok, noop.text)
    }
}
