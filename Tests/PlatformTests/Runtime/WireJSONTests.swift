import Foundation
@testable import Platform
import XCTest

final class WireJSONTests: XCTestCase {
    func testResponseRoundTripsThroughHandWrittenJSONAndFoundation() throws {
        let responses = [
            WireResponse(status: 200, headers: [["Content-Type", "application/json"], ["X-A", "q\"u\\o\nte 😀 \u{1}"]]),
            WireResponse(status: 500, headers: [], error: WireError(kind: "exception", message: "ValueError: boom", traceback: "Traceback\n  line 1")),
            WireResponse(status: 404, headers: [], error: WireError(kind: "import", message: "no f.py")),
        ]
        for response in responses {
            let bytes = response.encodedJSON()
            XCTAssertEqual(try WireResponse(json: bytes), response)
            XCTAssertEqual(try JSONDecoder().decode(WireResponse.self, from: Data(bytes)), response)
            let foundation = try JSONEncoder().encode(response)
            XCTAssertEqual(try WireResponse(json: Array(foundation)), response)
        }
    }

    func testRequestParsesFoundationAndPythonStyleJSON() throws {
        let request = WireRequest(id: "r1", method: "GET", path: "/p", query: "a=1", headers: [["Host", "x"], ["É", "\u{10348}"]])
        XCTAssertEqual(try WireRequest(json: Array(try JSONEncoder().encode(request))), request)
        XCTAssertEqual(try WireRequest(json: request.encodedJSON()), request)
        let python = #"{"id": "r2", "method": "POST", "path": "/", "query": "", "headers": [["K", "\u00e9\ud83d\ude00\/"]]}"#
        let parsed = try WireRequest(json: Array(python.utf8))
        XCTAssertEqual(parsed.headers, [["K", "é😀/"]])
        let pythonResponse = #"{"status": 400, "headers": [], "error": {"kind": "bad_request", "message": "m", "traceback": null}}"#
        XCTAssertEqual(try WireResponse(json: Array(pythonResponse.utf8)).error, WireError(kind: "bad_request", message: "m"))
    }

    func testMalformedHeadersAreRefusedWithAReason() {
        let cases = ["", "{", "{\"status\": \"200\"}", "{\"status\": 200, \"headers\": [[1]]}", "{\"status\": 2.5}",
                     "{\"status\": 200} x", "[\"unterminated", "{\"status\": 200, \"headers\": [[\"a\\q\"]]}"]
        for text in cases {
            XCTAssertThrowsError(try WireResponse(json: Array(text.utf8)), text)
        }
        XCTAssertThrowsError(try WireRequest(json: Array("{\"id\": 1}".utf8))) { error in
            XCTAssertEqual("\(error)", "id: expected a string")
        }
        let deep = String(repeating: "[", count: 100) + String(repeating: "]", count: 100)
        XCTAssertThrowsError(try WireResponse(json: Array("{\"status\": 200, \"x\": \(deep)}".utf8))) { error in
            XCTAssertTrue("\(error)".contains("nesting too deep"), "\(error)")
        }
        // Unknown keys are skipped, whatever their shape.
        let extra = #"{"status": 201, "future": {"a": [1, true, null, "s"]}, "headers": null}"#
        XCTAssertEqual(try WireResponse(json: Array(extra.utf8)), WireResponse(status: 201, headers: []))
    }
}
