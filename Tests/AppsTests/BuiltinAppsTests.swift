import Apps
import Platform
import XCTest

final class BuiltinAppsTests: XCTestCase {
    func request(_ body: String, contentType: String? = nil) -> AppRequest {
        AppRequest(method: "POST", path: "/", query: "", headers: contentType.map { [("Content-Type", $0)] } ?? [], body: Array(body.utf8))
    }

    func testRegistryOfBuiltins() {
        XCTAssertEqual(BuiltinApps.all.map { $0.name }.sorted(), ["echo", "noop", "spin"])
        XCTAssertNotNil(BuiltinApps.named("spin"))
        XCTAssertNil(BuiltinApps.named("nope"))
    }

    func testEchoReturnsBodyAndContentType() async throws {
        let response = try await EchoApp().handle(request("hello", contentType: "text/plain"))
        XCTAssertEqual(response.status, 200)
        XCTAssertEqual(String(decoding: response.body, as: UTF8.self), "hello")
        XCTAssertEqual(response.headers.first?.value, "text/plain")
        let empty = try await EchoApp().handle(request(""))
        XCTAssertEqual(String(decoding: empty.body, as: UTF8.self), "{}")
    }

    func testNoop() async throws {
        let response = try await NoopApp().handle(request(""))
        XCTAssertEqual(String(decoding: response.body, as: UTF8.self), "null")
    }

    func testSpinSleepAndCPUTakeAtLeastTheRequestedTime() async throws {
        for mode in ["sleep", "cpu"] {
            let start = ContinuousClock.now
            let response = try await SpinApp().handle(request("{\"ms\": 30, \"mode\": \"\(mode)\"}"))
            XCTAssertGreaterThanOrEqual(ContinuousClock.now - start, .milliseconds(30))
            XCTAssertEqual(response.status, 200)
            XCTAssertTrue(String(decoding: response.body, as: UTF8.self).contains("\"mode\":\"\(mode)\""))
        }
    }

    func testSpinRejectsBadInput() async {
        for body in ["{\"mode\": \"dance\"}", "{\"ms\": -1}", "not json", "{\"ms\": \"x\"}"] {
            do {
                _ = try await SpinApp().handle(request(body))
                XCTFail("accepted \(body)")
            } catch let error as AppError {
                XCTAssertEqual(error.status, 400, body)
                XCTAssertTrue(error.message.hasPrefix("spin:"), error.message)
            } catch {
                XCTFail("unexpected \(error)")
            }
        }
    }
}
