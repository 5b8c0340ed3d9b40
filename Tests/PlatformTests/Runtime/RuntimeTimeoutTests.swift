import Foundation
import NIOCore
@testable import Platform
import XCTest

final class RuntimeTimeoutTests: XCTestCase {
    /// A fake runtime that answers the first request at once and never answers the second.
    func testRoundTripTimesOutOnlyWhenTheAnswerIsLate() async throws {
        let (workerFd, runtimeFd) = try RuntimeTestSupport.makeSocketPair()
        let connection = try await RuntimeConnection.open(socket: workerFd)
        let runtime = Thread {
            let ready = WireReady(ready: true, runtime: "fake", pid: 1)
            guard (try? WireFrameWriter.writeAll(WireFrame.encode(header: ready, body: []), to: runtimeFd)) != nil else { return }
            let reader = WireFrameReader(fd: runtimeFd)
            if (try? reader.next()) != nil {
                let response = WireResponse(status: 200, headers: [])
                _ = try? WireFrameWriter.writeAll(WireFrame.encode(rawHeader: response.encodedJSON(), body: []), to: runtimeFd)
            }
            while (try? reader.next()) != nil {}  // read and never answer, until closed
            close(runtimeFd)
        }
        runtime.start()
        _ = try await connection.readReady()
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

    func testNanosecondConversionSaturates() {
        XCTAssertEqual(RuntimeConnection.nanoseconds(.milliseconds(1500)), 1_500_000_000)
        XCTAssertEqual(RuntimeConnection.nanoseconds(.seconds(Int64.max)), Int64.max)
    }
}
