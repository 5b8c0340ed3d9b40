import Foundation
import Platform
import XCTest

final class WireRequestEncodingTests: XCTestCase {
    func testHandWrittenJSONDecodesToTheSameRequest() throws {
        let request = WireRequest(
            id: "w1-7", method: "POST", path: "/a b/\"quoted\"\\slash/ü", query: "x=1&y=\u{1}\t\n\r",
            headers: [["Content-Type", "application/json"], ["X-Odd", "tab\there \u{7f} 😀"]])
        let bytes = request.encodedJSON()
        XCTAssertEqual(try JSONDecoder().decode(WireRequest.self, from: Data(bytes)), request)
        XCTAssertNotNil(try JSONSerialization.jsonObject(with: Data(bytes)))
        let empty = WireRequest(id: "", method: "GET", path: "/", query: "", headers: [])
        XCTAssertEqual(try JSONDecoder().decode(WireRequest.self, from: Data(empty.encodedJSON())), empty)
    }
}
