import Foundation
import NIOCore
@testable import Platform
import XCTest

final class RuntimeTimeoutTests: XCTestCase {
    /// A fake runtime that answers the first request at once and never answers the second.
    func testRoundTripTimesOutOnlyWhenTheAnswerIsLate() async throws {
        let connection = try await Self.answerFirstOnly()
        let request = WireRequest(id: "1", method: "GET", path: "/", query: "", headers: [])
        let first = try await connection.roundTrip(request, body: ByteBuffer(), timeout: .milliseconds(200))
        XCTAssertEqual(first.status, 200)
        try await Task.sleep(for: .milliseconds(300))  // the first request's timer must have been cancelled
        let start = ContinuousClock.now
        do {
            _ = try await connection.roundTrip(request, body: ByteBuffer(), timeout: .milliseconds(150))
            XCTFail("expected a timeout")
        } catch let timeout as RuntimeTimeout {
            XCTAssertEqual(timeout.timeout, .milliseconds(150))
        }
        let waited = ContinuousClock.now - start
        XCTAssertGreaterThanOrEqual(waited, .milliseconds(140))
        XCTAssertLessThan(waited, .seconds(2))
        await connection.close()
    }

    /// A later round trip with a shorter timeout than the armed timer still times out on time.
    func testShorterLaterDeadlineRearmsTheTimer() async throws {
        let connection = try await Self.answerFirstOnly()
        let request = WireRequest(id: "1", method: "GET", path: "/", query: "", headers: [])
        // Arms the timer 60 s ahead; the answer comes at once.
        let first = try await connection.roundTrip(request, body: ByteBuffer(), timeout: .seconds(60))
        XCTAssertEqual(first.status, 200)
        let start = ContinuousClock.now
        do {
            _ = try await connection.roundTrip(request, body: ByteBuffer(), timeout: .milliseconds(100))
            XCTFail("expected a timeout")
        } catch let timeout as RuntimeTimeout {
            XCTAssertEqual(timeout.timeout, .milliseconds(100))
        }
        XCTAssertLessThan(ContinuousClock.now - start, .seconds(5), "the 60 s timer must not delay a 100 ms deadline")
        await connection.close()
    }

    /// Answers cut into pieces, and two answers in one write, reach the right round trips in order.
    func testFragmentedAndCoalescedAnswers() async throws {
        let (workerFd, runtimeFd) = try RuntimeTestSupport.makeSocketPair()
        let connection = try await RuntimeConnection.open(socket: workerFd)
        let runtime = Thread {
            let ready = WireReady(ready: true, runtime: "fake", pid: 1)
            guard let readyFrame = try? WireFrame.encode(header: ready, body: []) else { return }
            var reader = WireFrameReader(fd: runtimeFd)
            func answer(_ status: Int, _ body: String) -> [UInt8] {
                WireFrame.encode(rawHeader: WireResponse(status: status, headers: [["K", "\(status)"]]).encodedJSON(), body: Array(body.utf8))
            }
            // The ready frame and the first answer arrive a few bytes at a time.
            for chunk in stride(from: 0, to: readyFrame.count, by: 3) {
                _ = try? WireFrameWriter.writeAll(Array(readyFrame[chunk..<min(chunk + 3, readyFrame.count)]), to: runtimeFd)
                usleep(1000)
            }
            guard (try? reader.next()) != nil else { return }
            let first = answer(201, "one")
            for chunk in stride(from: 0, to: first.count, by: 5) {
                _ = try? WireFrameWriter.writeAll(Array(first[chunk..<min(chunk + 5, first.count)]), to: runtimeFd)
                usleep(1000)
            }
            // Two requests outstanding: both answers in one write.
            guard (try? reader.next()) != nil, (try? reader.next()) != nil else { return }
            _ = try? WireFrameWriter.writeAll(answer(202, "two") + answer(203, "three"), to: runtimeFd)
            while (try? reader.next()) != nil {}
            close(runtimeFd)
        }
        runtime.start()
        let ready = try await connection.readReady()
        XCTAssertEqual(ready.runtime, "fake")
        let request = WireRequest(id: "1", method: "GET", path: "/", query: "", headers: [])
        let first = try await connection.roundTrip(request, body: ByteBuffer(), timeout: .seconds(10))
        XCTAssertEqual(first.status, 201)
        XCTAssertEqual(String(buffer: first.body), "one")
        async let second = connection.roundTrip(request, body: ByteBuffer(string: "a"), timeout: .seconds(10))
        try await Task.sleep(for: .milliseconds(50))
        async let third = connection.roundTrip(request, body: ByteBuffer(string: "b"), timeout: .seconds(10))
        let (two, three) = try await (second, third)
        XCTAssertEqual([two.status, three.status], [202, 203])
        XCTAssertEqual([String(buffer: two.body), String(buffer: three.body)], ["two", "three"])
        XCTAssertEqual(three.headers, [["K", "203"]])
        await connection.close()
    }

    /// A connection to a fake runtime that answers the first request at once and never answers later ones.
    static func answerFirstOnly() async throws -> RuntimeConnection {
        let (workerFd, runtimeFd) = try RuntimeTestSupport.makeSocketPair()
        let connection = try await RuntimeConnection.open(socket: workerFd)
        let runtime = Thread {
            let ready = WireReady(ready: true, runtime: "fake", pid: 1)
            guard (try? WireFrameWriter.writeAll(WireFrame.encode(header: ready, body: []), to: runtimeFd)) != nil else { return }
            var reader = WireFrameReader(fd: runtimeFd)
            if (try? reader.next()) != nil {
                let response = WireResponse(status: 200, headers: [])
                _ = try? WireFrameWriter.writeAll(WireFrame.encode(rawHeader: response.encodedJSON(), body: []), to: runtimeFd)
            }
            while (try? reader.next()) != nil {}  // read and never answer, until closed
            close(runtimeFd)
        }
        runtime.start()
        _ = try await connection.readReady()
        return connection
    }

    func testNanosecondConversionSaturates() {
        XCTAssertEqual(RuntimeConnection.nanoseconds(.milliseconds(1500)), 1_500_000_000)
        XCTAssertEqual(RuntimeConnection.nanoseconds(.seconds(Int64.max)), Int64.max)
    }
}
