import Foundation
import NIOCore
import Synchronization
import XCTest

@testable import Platform

#if canImport(Glibc)
import Glibc
#endif

final class RuntimeWireFrameTests: XCTestCase {
    func testEncodeThenDecodeRoundTrip() throws {
        let request = WireRequest(id: "r1", method: "POST", path: "/a/b", query: "x=1", headers: [["Content-Type", "text/plain"]])
        let body: [UInt8] = Array("héllo".utf8)
        let bytes = try WireFrame.encode(header: request, body: body)
        let headerLength = Int(bytes[0]) << 24 | Int(bytes[1]) << 16 | Int(bytes[2]) << 8 | Int(bytes[3])
        XCTAssertEqual(bytes.count, 8 + headerLength + body.count)

        let decoded = try XCTUnwrap(WireFrame.decode(from: bytes + [1, 2, 3]))
        XCTAssertEqual(decoded.consumed, bytes.count)
        XCTAssertEqual(decoded.frame.body, body)
        XCTAssertEqual(try decoded.frame.decodeHeader(WireRequest.self), request)
    }

    func testPartialFrameDecodesToNil() throws {
        let bytes = WireFrame.encode(rawHeader: Array("{}".utf8), body: [9, 9])
        for cut in 0..<bytes.count {
            XCTAssertNil(try WireFrame.decode(from: Array(bytes[0..<cut])), "prefix of \(cut) bytes")
        }
        XCTAssertNotNil(try WireFrame.decode(from: bytes))
    }

    func testOverLimitLengthsAreRejected() {
        var tooLongHeader: [UInt8] = []
        WireFrame.appendBigEndian(UInt32(wireMaxHeaderBytes + 1), to: &tooLongHeader)
        WireFrame.appendBigEndian(0, to: &tooLongHeader)
        XCTAssertThrowsError(try WireFrame.decode(from: tooLongHeader)) { error in
            XCTAssertEqual(error as? WireFrameError, .headerTooLarge(wireMaxHeaderBytes + 1))
            XCTAssertTrue("\(error)".contains("exceeds the limit"))
        }
        var tooLongBody: [UInt8] = []
        WireFrame.appendBigEndian(2, to: &tooLongBody)
        WireFrame.appendBigEndian(UInt32(wireMaxBodyBytes + 1), to: &tooLongBody)
        XCTAssertThrowsError(try WireFrame.decode(from: tooLongBody)) { error in
            XCTAssertEqual(error as? WireFrameError, .bodyTooLarge(wireMaxBodyBytes + 1))
        }
        XCTAssertThrowsError(try WireFrame.encode(header: ["k": "v"], body: [UInt8](repeating: 0, count: wireMaxBodyBytes + 1)))
    }

    /// A runtime serving with `WireFrameReader` blocks once per request: the worker reading a reply must not wake it.
    func testReaderSleepsOncePerRequest() async throws {
        let (workerFd, runtimeFd) = try RuntimeTestSupport.makeSocketPair()
        let connection = try await RuntimeConnection.open(socket: workerFd)
        let switches = Mutex<(start: Int, end: Int)>((0, 0))
        let marked = DispatchSemaphore(value: 0)
        let runtime = Thread {
            func voluntary() -> Int {
                let status = (try? String(contentsOfFile: "/proc/thread-self/status", encoding: .utf8)) ?? ""
                let line = status.split(separator: "\n").first { $0.hasPrefix("voluntary_ctxt_switches:") } ?? ""
                return Int(line.split(separator: ":").last?.trimmingCharacters(in: .whitespaces) ?? "") ?? -1
            }
            let ready = WireReady(ready: true, runtime: "fake", pid: 1)
            guard (try? WireFrameWriter.writeAll(WireFrame.encode(header: ready, body: []), to: runtimeFd)) != nil else { return }
            var reader = WireFrameReader(fd: runtimeFd)
            let reply = WireFrame.encode(rawHeader: WireResponse(status: 200, headers: []).encodedJSON(), body: [])
            var served = 0
            while let frame = try? reader.next() {
                if frame.header.first != UInt8(ascii: "{") { break }
                served += 1
                if served == 50 { switches.withLock { $0.start = voluntary() } }
                if served == 550 { switches.withLock { $0.end = voluntary() } }
                _ = try? WireFrameWriter.writeAll(reply, to: runtimeFd)
            }
            close(runtimeFd)
            marked.signal()
        }
        runtime.start()
        _ = try await connection.readReady()
        let request = WireRequest(id: "1", method: "GET", path: "/", query: "", headers: [])
        for index in 0..<560 {
            _ = try await connection.roundTrip(request, body: ByteBuffer())
            if index >= 50 { try await Task.sleep(for: .microseconds(200)) }  // the runtime is asleep when each request arrives
        }
        await connection.close()
        marked.wait()
        let (start, end) = switches.withLock { $0 }
        let perRequest = Double(end - start) / 500
        XCTAssertGreaterThan(perRequest, 0.9, "the runtime should block between requests")
        XCTAssertLessThan(perRequest, 1.5, "the runtime was woken more than once per request (\(perRequest))")
    }

    func testBlockingReaderReadsFramesThenEOF() throws {
        let (writer, readerFd) = try RuntimeTestSupport.makeSocketPair()
        defer { close(readerFd) }
        let big = [UInt8]((0..<200_000).map { UInt8(truncatingIfNeeded: $0 * 7) })
        let first = WireFrame.encode(rawHeader: Array(#"{"a":1}"#.utf8), body: [])
        let second = WireFrame.encode(rawHeader: Array(#"{"b":2}"#.utf8), body: big)
        let writing = Thread {
            try? WireFrameWriter.writeAll(first + second, to: writer)
            close(writer)
        }
        writing.start()
        var reader = WireFrameReader(fd: readerFd)
        let one = try XCTUnwrap(reader.next())
        XCTAssertEqual(one, WireFrame(header: Array(#"{"a":1}"#.utf8), body: []))
        let two = try XCTUnwrap(reader.next())
        XCTAssertEqual(two.header, Array(#"{"b":2}"#.utf8))
        XCTAssertEqual(two.body, big)
        XCTAssertNil(try reader.next())
    }

    func testBlockingReaderReportsTruncatedFrame() throws {
        let (writer, readerFd) = try RuntimeTestSupport.makeSocketPair()
        defer { close(readerFd) }
        let frame = WireFrame.encode(rawHeader: Array("{}".utf8), body: [1, 2, 3, 4])
        try WireFrameWriter.writeAll(Array(frame.dropLast(2)), to: writer)
        close(writer)
        var reader = WireFrameReader(fd: readerFd)
        XCTAssertThrowsError(try reader.next()) { error in
            XCTAssertEqual(error as? WireFrameError, .truncated(expected: frame.count, received: frame.count - 2))
        }
    }

    func testWriterToClosedPeerThrowsInsteadOfSIGPIPE() throws {
        let (writer, readerFd) = try RuntimeTestSupport.makeSocketPair()
        defer { close(writer) }
        close(readerFd)
        XCTAssertThrowsError(try WireFrameWriter.writeAll([1, 2, 3], to: writer)) { error in
            XCTAssertEqual(error as? WireFrameError, .io(operation: "write", errno: EPIPE))
        }
    }
}

/// RuntimeConnection against a scripted fake runtime on the other end of a socketpair.
final class RuntimeConnectionTests: XCTestCase {
    private func readyFrame() throws -> [UInt8] {
        try WireFrame.encode(header: WireReady(ready: true, runtime: "fake", pid: 7), body: [])
    }

    func testReadyThenRoundTripWithLargeBodies() async throws {
        let (workerFd, runtimeFd) = try RuntimeTestSupport.makeSocketPair()
        let connection = try await RuntimeConnection.open(socket: workerFd)
        let echo = Thread {
            defer { close(runtimeFd) }
            let ready = WireReady(ready: true, runtime: "fake", pid: 7)
            guard (try? WireFrameWriter.writeAll(WireFrame.encode(header: ready, body: []), to: runtimeFd)) != nil else { return }
            var reader = WireFrameReader(fd: runtimeFd)
            while let frame = try? reader.next() {
                guard let request = try? frame.decodeHeader(WireRequest.self) else { return }
                let response = WireResponse(status: 201, headers: [["X-Id", request.id]])
                guard (try? WireFrameWriter.writeAll(WireFrame.encode(header: response, body: frame.body), to: runtimeFd)) != nil
                else { return }
            }
        }
        echo.start()
        let ready = try await connection.readReady()
        XCTAssertEqual(ready, WireReady(ready: true, runtime: "fake", pid: 7))
        for size in [0, 10, 100_000, 3_000_000] {
            let body = ByteBuffer(bytes: (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31) })
            let request = WireRequest(id: "id-\(size)", method: "PUT", path: "/", query: "", headers: [])
            let response = try await connection.roundTrip(request, body: body)
            XCTAssertEqual(response.status, 201)
            XCTAssertEqual(response.headers, [["X-Id", "id-\(size)"]])
            XCTAssertEqual(response.body, body, "body of \(size) bytes")
        }
        await connection.close()
    }

    func testEOFBeforeReadyIsClosed() async throws {
        let (workerFd, runtimeFd) = try RuntimeTestSupport.makeSocketPair()
        let connection = try await RuntimeConnection.open(socket: workerFd)
        close(runtimeFd)
        do {
            _ = try await connection.readReady()
            XCTFail("expected closed")
        } catch {
            XCTAssertEqual(error as? RuntimeConnectionError, .closed)
        }
        await connection.close()
    }

    func testRuntimeDyingMidRequestIsClosed() async throws {
        let (workerFd, runtimeFd) = try RuntimeTestSupport.makeSocketPair()
        let connection = try await RuntimeConnection.open(socket: workerFd)
        try WireFrameWriter.writeAll(try readyFrame(), to: runtimeFd)
        _ = try await connection.readReady()
        let request = WireRequest(id: "1", method: "GET", path: "/", query: "", headers: [])
        async let response = connection.roundTrip(request, body: ByteBuffer())
        // Read the request, then die after half a response.
        var reader = WireFrameReader(fd: runtimeFd)
        _ = try reader.next()
        let partial = try WireFrame.encode(header: WireResponse(status: 200, headers: []), body: [1, 2, 3])
        try WireFrameWriter.writeAll(Array(partial.prefix(10)), to: runtimeFd)
        close(runtimeFd)
        do {
            _ = try await response
            XCTFail("expected closed")
        } catch {
            XCTAssertEqual(error as? RuntimeConnectionError, .closed)
        }
        do {
            _ = try await connection.roundTrip(request, body: ByteBuffer())
            XCTFail("expected closed")
        } catch {
            XCTAssertEqual(error as? RuntimeConnectionError, .closed)
        }
        await connection.close()
    }

    func testOversizedFrameIsProtocolViolation() async throws {
        let (workerFd, runtimeFd) = try RuntimeTestSupport.makeSocketPair()
        defer { close(runtimeFd) }
        let connection = try await RuntimeConnection.open(socket: workerFd)
        var prefix: [UInt8] = []
        WireFrame.appendBigEndian(2, to: &prefix)
        WireFrame.appendBigEndian(UInt32(wireMaxBodyBytes + 1), to: &prefix)
        try WireFrameWriter.writeAll(prefix, to: runtimeFd)
        do {
            _ = try await connection.readReady()
            XCTFail("expected a protocol violation")
        } catch let RuntimeConnectionError.protocolViolation(message) {
            XCTAssertTrue(message.contains("exceeds the limit of \(wireMaxBodyBytes)"), message)
        }
        await connection.close()
    }

    func testInvalidHeaderAndUnsolicitedFrameAreProtocolViolations() async throws {
        let (workerFd, runtimeFd) = try RuntimeTestSupport.makeSocketPair()
        defer { close(runtimeFd) }
        let connection = try await RuntimeConnection.open(socket: workerFd)
        try WireFrameWriter.writeAll(WireFrame.encode(rawHeader: Array("not json".utf8), body: []), to: runtimeFd)
        do {
            _ = try await connection.readReady()
            XCTFail("expected a protocol violation")
        } catch let RuntimeConnectionError.protocolViolation(message) {
            XCTAssertTrue(message.contains("WireReady"), message)
        }
        // A second frame that answers nothing closes the connection.
        try WireFrameWriter.writeAll(WireFrame.encode(rawHeader: Array("{}".utf8), body: []), to: runtimeFd)
        let request = WireRequest(id: "1", method: "GET", path: "/", query: "", headers: [])
        try await Task.sleep(for: .milliseconds(200))  // let the unsolicited frame arrive first
        var failure: RuntimeConnectionError?
        do {
            _ = try await connection.roundTrip(request, body: ByteBuffer())
        } catch let error as RuntimeConnectionError {
            failure = error
        }
        XCTAssertEqual(failure, .protocolViolation("runtime sent a frame while no request was outstanding"))
        await connection.close()
    }

    func testOversizedRequestBodyIsRefusedBeforeSending() async throws {
        let (workerFd, runtimeFd) = try RuntimeTestSupport.makeSocketPair()
        defer { close(runtimeFd) }
        let connection = try await RuntimeConnection.open(socket: workerFd)
        let request = WireRequest(id: "1", method: "POST", path: "/", query: "", headers: [])
        let body = ByteBuffer(repeating: 0, count: wireMaxBodyBytes + 1)
        do {
            _ = try await connection.roundTrip(request, body: body)
            XCTFail("expected a protocol violation")
        } catch let RuntimeConnectionError.protocolViolation(message) {
            XCTAssertTrue(message.contains("request body of \(wireMaxBodyBytes + 1) bytes"), message)
        }
        await connection.close()
    }
}
