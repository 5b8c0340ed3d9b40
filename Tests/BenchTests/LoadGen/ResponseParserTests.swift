import NIOCore
import XCTest

@testable import Bench

final class ResponseParserTests: XCTestCase {
    /// Feeds `text` in pieces of `chunk` bytes and returns every response completed along the way.
    func parse(_ text: String, chunk: Int = .max, head: Bool = false, collect: Bool = false, atEOF: Bool = false)
        throws -> [HTTPResult]
    {
        var parser = ResponseParser()
        parser.requestIsHead = head
        parser.collectBody = collect
        var results: [HTTPResult] = []
        let bytes = Array(text.utf8)
        var start = 0
        while start < bytes.count {
            let end = min(bytes.count, start + chunk)
            parser.append(ByteBuffer(bytes: bytes[start..<end]))
            while let result = try parser.next() { results.append(result) }
            start = end
        }
        if atEOF, let last = parser.finish() { results.append(last) }
        return results
    }

    func body(_ result: HTTPResult) -> String? { result.body.map { String(buffer: $0) } }

    static let swiftletResponse =
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nx-swiftlet-start: cold\r\nX-Swiftlet-Init-Ms: 12.5\r\n"
        + "X-SWIFTLET-RUN-MS:3\r\nX-Swiftlet-Billed-Ms: 100 \r\nX-Swiftlet-Sandbox: sb-1\r\nX-Swiftlet-Worker: w1\r\n"
        + "X-Other: x\r\n\r\nhello"

    func testContentLengthResponseWithWorkerHeaders() throws {
        let results = try parse(Self.swiftletResponse, collect: true)
        XCTAssertEqual(results.count, 1)
        let result = results[0]
        XCTAssertEqual(result.status, 200)
        XCTAssertEqual(result.bytes, 5)
        XCTAssertEqual(body(result), "hello")
        XCTAssertTrue(result.keepAlive)
        XCTAssertEqual(
            result.worker,
            WorkerHeaders(start: "cold", initMs: "12.5", runMs: "3", billedMs: "100", sandbox: "sb-1", worker: "w1"))
    }

    func testByteByByteGivesTheSameResult() throws {
        let whole = try parse(Self.swiftletResponse + Self.swiftletResponse, collect: true)
        let split = try parse(Self.swiftletResponse + Self.swiftletResponse, chunk: 1, collect: true)
        XCTAssertEqual(whole.count, 2)
        XCTAssertEqual(split.count, 2)
        XCTAssertEqual(split.map(\.worker), whole.map(\.worker))
        XCTAssertEqual(split.map(body), ["hello", "hello"])
        XCTAssertEqual(split.map(\.bytes), [5, 5])
    }

    func testBodyIsCountedButNotKeptByDefault() throws {
        let result = try XCTUnwrap(parse(Self.swiftletResponse, chunk: 7).first)
        XCTAssertEqual(result.bytes, 5)
        XCTAssertNil(result.body)
    }

    func testChunkedBodyWithExtensionAndTrailers() throws {
        let text = "HTTP/1.1 201 Created\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n"
            + "5;name=value\r\nhello\r\nA\r\n, world!!!\r\n0\r\nX-Trailer: t\r\n\r\n"
            + "HTTP/1.1 204 No Content\r\n\r\n"
        for chunk in [1, 3, 1000] {
            let results = try parse(text, chunk: chunk, collect: true)
            XCTAssertEqual(results.map(\.status), [201, 204], "chunk \(chunk)")
            XCTAssertEqual(results.first.flatMap(body), "hello, world!!!")
            XCTAssertEqual(results.first?.bytes, 15)
            XCTAssertEqual(results.last?.bytes, 0)
        }
    }

    func testKeepAliveRules() throws {
        let close = try parse("HTTP/1.1 200 OK\r\nConnection: Close\r\nContent-Length: 0\r\n\r\n")
        XCTAssertEqual(close.map(\.keepAlive), [false])
        let old = try parse("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n")
        XCTAssertEqual(old.map(\.keepAlive), [false])
        let oldKept = try parse("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n")
        XCTAssertEqual(oldKept.map(\.keepAlive), [true])
    }

    func testBodyUntilCloseEndsAtEndOfStream() throws {
        let text = "HTTP/1.1 200 OK\r\nServer: x\r\n\r\nsome body"
        XCTAssertTrue(try parse(text).isEmpty, "not complete before the close")
        let results = try parse(text, chunk: 4, collect: true, atEOF: true)
        XCTAssertEqual(results.count, 1)
        XCTAssertEqual(results.first.flatMap(body), "some body")
        XCTAssertEqual(results.first?.keepAlive, false)
    }

    func testHeadResponseHasNoBodyAndInterimResponsesAreSkipped() throws {
        let head = try parse("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nHTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", head: true)
        XCTAssertEqual(head.map(\.status), [200, 404])
        XCTAssertEqual(head.first?.bytes, 0)
        let interim = try parse("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        XCTAssertEqual(interim.map(\.status), [200])
        XCTAssertEqual(interim.first?.bytes, 2)
    }

    func testMalformedResponsesAreNamed() {
        XCTAssertThrowsError(try parse("SMTP ready\r\n\r\n")) {
            XCTAssertEqual("\($0)", "invalid HTTP response: status line does not start with HTTP/1.x")
        }
        XCTAssertThrowsError(try parse("HTTP/1.1 2x0 OK\r\n\r\n")) {
            XCTAssertEqual("\($0)", "invalid HTTP response: status code is not a number")
        }
        XCTAssertThrowsError(try parse("HTTP/1.1 200 OK\r\nContent-Length: ten\r\n\r\n")) {
            XCTAssertEqual("\($0)", "invalid HTTP response: Content-Length 'ten'")
        }
        XCTAssertThrowsError(try parse("HTTP/1.1 200 OK\r\nno colon here\r\n\r\n")) {
            XCTAssertEqual("\($0)", "invalid HTTP response: header line without a colon")
        }
        XCTAssertThrowsError(try parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")) {
            XCTAssertEqual("\($0)", "invalid HTTP response: chunk size is not hexadecimal")
        }
        let huge = "HTTP/1.1 200 OK\r\n" + String(repeating: "X-Padding: 0123456789\r\n", count: 4000)
        XCTAssertThrowsError(try parse(huge, chunk: 4096)) {
            XCTAssertEqual("\($0)", "invalid HTTP response: response head larger than 64 KiB")
        }
    }

    func testEncodedRequest() {
        let get = EncodedRequest(method: "GET", uri: "/run/static", host: "127.0.0.1:8080", body: nil)
        XCTAssertEqual(String(buffer: get.bytes), "GET /run/static HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nContent-Length: 0\r\n\r\n")
        XCTAssertFalse(get.isHead)
        let post = EncodedRequest(method: "POST", uri: "/run/echo", host: "h", body: ByteBuffer(string: "{\"a\":1}"))
        XCTAssertEqual(
            String(buffer: post.bytes),
            "POST /run/echo HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n{\"a\":1}")
        XCTAssertTrue(EncodedRequest(method: "HEAD", uri: "/", host: "h", body: nil).isHead)
    }
}
