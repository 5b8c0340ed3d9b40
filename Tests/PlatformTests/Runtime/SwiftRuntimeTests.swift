import Foundation
import NIOCore
import XCTest

@testable import Platform

#if canImport(Glibc)
import Glibc
#endif

private struct HostTestApp: SwiftApp {
    static let name = "host-test"

    struct Unexpected: Error, CustomStringConvertible {
        var description: String { "disk on fire" }
    }

    func handle(_ request: AppRequest) async throws -> AppResponse {
        switch request.path {
        case "/teapot":
            throw AppError(status: 418, "short and stout")
        case "/crash":
            throw Unexpected()
        default:
            let summary = "\(request.method) \(request.path)?\(request.query) \(request.header("x-tag") ?? "-")"
            return AppResponse(status: 202, headers: [(name: "X-Summary", value: summary)], body: request.body.reversed())
        }
    }
}

final class RuntimeSwiftHostTests: XCTestCase {
    func testServeAnswersRequestsAndErrorsThenReturnsZeroOnEOF() async throws {
        let (workerFd, hostFd) = try RuntimeTestSupport.makeSocketPair()
        defer { close(hostFd) }
        let host = Task.detached { await SwiftRuntimeHost.serve(app: HostTestApp(), fd: hostFd) }
        let connection = try await RuntimeConnection.open(socket: workerFd)
        let ready = try await connection.readReady()
        XCTAssertEqual(ready, WireReady(ready: true, runtime: "swift", pid: Int(getpid())))

        let request = WireRequest(id: "1", method: "POST", path: "/echo", query: "a=1", headers: [["X-Tag", "blue"], ["broken"]])
        let response = try await connection.roundTrip(request, body: ByteBuffer(string: "abc"))
        XCTAssertEqual(response.status, 202)
        XCTAssertEqual(response.headers, [["X-Summary", "POST /echo?a=1 blue"]])
        XCTAssertEqual(String(buffer: response.body), "cba")
        XCTAssertNil(response.error)

        var teapot = request
        teapot.path = "/teapot"
        let refused = try await connection.roundTrip(teapot, body: ByteBuffer())
        XCTAssertEqual(refused.status, 418)
        XCTAssertEqual(refused.error, WireError(kind: "exception", message: "short and stout"))

        var crash = request
        crash.path = "/crash"
        let crashed = try await connection.roundTrip(crash, body: ByteBuffer())
        XCTAssertEqual(crashed.status, 500)
        XCTAssertEqual(crashed.error?.kind, "exception")
        XCTAssertTrue(crashed.error?.message.contains("disk on fire") ?? false, "\(String(describing: crashed.error))")

        let large = ByteBuffer(bytes: (0..<1_000_000).map { UInt8(truncatingIfNeeded: $0) })
        let largeResponse = try await connection.roundTrip(request, body: large)
        XCTAssertEqual(Array(largeResponse.body.readableBytesView), Array(large.readableBytesView).reversed())

        await connection.close()
        let code = await host.value
        XCTAssertEqual(code, 0)
    }

    func testMalformedRequestHeaderGets400AndHostKeepsServing() async throws {
        let (workerFd, hostFd) = try RuntimeTestSupport.makeSocketPair()
        defer {
            close(hostFd)
            close(workerFd)
        }
        let host = Task.detached { await SwiftRuntimeHost.serve(app: HostTestApp(), fd: hostFd) }
        var reader = WireFrameReader(fd: workerFd)
        _ = try XCTUnwrap(reader.next())
        try WireFrameWriter.writeAll(WireFrame.encode(rawHeader: Array(#"{"id":1}"#.utf8), body: []), to: workerFd)
        let answer = try XCTUnwrap(reader.next())
        let response = try answer.decodeHeader(WireResponse.self)
        XCTAssertEqual(response.status, 400)
        XCTAssertEqual(response.error?.kind, "bad_request")
        XCTAssertTrue(response.error?.message.contains("WireRequest") ?? false)

        // A frame cut short is a protocol error: exit code 2.
        try WireFrameWriter.writeAll([0, 0, 0, 9], to: workerFd)
        shutdown(workerFd, Int32(SHUT_WR))
        let code = await host.value
        XCTAssertEqual(code, 2)
    }

    func testCommandListsBinaryAndLibraryDirectories() throws {
        let binary = SwiftRuntime.defaultBinary()
        XCTAssertTrue(binary.hasPrefix("/"), binary)
        XCTAssertTrue(FileManager.default.isExecutableFile(atPath: binary), binary)
        let command = SwiftRuntime.command(binary: binary, app: "echo")
        XCTAssertEqual(command.executable, binary)
        XCTAssertEqual(command.arguments, ["__runtime", "--app", "echo"])
        XCTAssertTrue(command.readOnlyPaths.contains(binary) || command.readOnlyPaths.contains { binary.hasPrefix($0 + "/") })
        for path in command.readOnlyPaths {
            XCTAssertTrue(FileManager.default.fileExists(atPath: path), path)
            XCTAssertFalse(RuntimePaths.isSystemPath(path), "\(path) is already in every sandbox root")
        }
        // Every shared library this process maps lies in a system directory or in a listed one.
        let maps = try String(contentsOfFile: "/proc/self/maps", encoding: .utf8)
        for line in maps.split(separator: "\n") {
            guard let slash = line.firstIndex(of: "/") else { continue }
            let path = PythonRuntime.realPath(String(line[slash...]))
            guard path.hasSuffix(".so") || path.contains(".so.") else { continue }
            let covered = RuntimePaths.isSystemPath(path) || command.readOnlyPaths.contains { path.hasPrefix($0 + "/") }
            XCTAssertTrue(covered, "\(path) is not visible to the sandbox")
        }
    }

    func testELFRunPathIsReadWithOriginExpanded() throws {
        let binary = SwiftRuntime.defaultBinary()
        let directories = ELFRunPath.directories(ofBinary: binary)
        // The test runner is linked against the toolchain's Swift runtime; its RUNPATH names it unless stdlib is static.
        if directories.isEmpty {
            print("note: \(binary) has no RUNPATH")
        }
        for directory in directories {
            XCTAssertTrue(directory.hasPrefix("/"), directory)
            XCTAssertFalse(directory.contains("$ORIGIN"), directory)
        }
        XCTAssertEqual(ELFRunPath.directories(ofBinary: "/nonexistent"), [])
        XCTAssertEqual(RuntimePaths.minimal(["/a/b", "/a", "/a/b/c", "/ab", "/a"]), ["/a", "/ab"])
    }
}
