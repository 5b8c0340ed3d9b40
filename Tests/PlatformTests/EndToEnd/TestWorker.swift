import Apps
import Foundation
import HTTPTypes
import HummingbirdTesting
import Logging
import NIOCore
import Platform
import XCTest

/// Privileges the isolated backend needs. On CI (CI set) missing privileges fail the test instead of skipping it.
func requireIsolation(file: StaticString = #filePath, line: UInt = #line) throws {
    let ci = ProcessInfo.processInfo.environment["CI"].map { !$0.isEmpty } ?? false
    if geteuid() != 0 {
        if ci { XCTFail("CI is set but the tests do not run as root: isolation tests cannot run", file: file, line: line) }
        let reason = "skipping: isolated sandboxes need root (namespaces, cgroups); run as root or on CI"
        print(reason)
        throw XCTSkip(reason)
    }
}

/// A real worker on an ephemeral port with a temporary directory and registry.
final class TestWorker: Sendable {
    let directory: String
    let registry: String
    let running: RunningWorker

    var port: Int { running.port }

    static func start(
        sandbox: String = "isolated", _ configure: (inout WorkerConfig) -> Void = { _ in },
        lambdas: [String: [String: String]] = [:]
    ) async throws -> TestWorker {
        let directory = NSTemporaryDirectory() + "swiftlet-test-\(UUID().uuidString.prefix(8))"
        let registry = directory + "/registry"
        try FileManager.default.createDirectory(atPath: registry, withIntermediateDirectories: true)
        for (name, files) in lambdas {
            try TestWorker.write(lambda: name, files: files, registry: registry)
        }
        var config = WorkerConfig()
        config.port = 0
        config.sandbox = sandbox
        config.swiftRuntime = try swiftletBinary()
        config.logLevel = "warning"
        configure(&config)
        var logger = Logger(label: "test.worker")
        logger.logLevel = .warning
        let running = try await EmbeddedWorker.start(directory: directory, config: config, apps: BuiltinApps.all, logger: logger)
        return TestWorker(directory: directory, registry: registry, running: running)
    }

    private init(directory: String, registry: String, running: RunningWorker) {
        self.directory = directory
        self.registry = registry
        self.running = running
    }

    static func write(lambda name: String, files: [String: String], registry: String) throws {
        let dir = registry + "/" + name
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for (file, content) in files {
            try content.write(toFile: dir + "/" + file, atomically: true, encoding: .utf8)
        }
    }

    func stop() async {
        await running.stop()
        try? FileManager.default.removeItem(atPath: directory)
    }

    func request(
        _ method: HTTPRequest.Method, _ path: String, body: String? = nil, bytes: [UInt8]? = nil,
        headers: HTTPFields = [:]
    ) async throws -> TestClient.Response {
        let buffer = bytes.map { ByteBuffer(bytes: $0) } ?? body.map { ByteBuffer(string: $0) }
        return try await TestClient.withClient(host: "127.0.0.1", port: port, configuration: .init(timeout: .seconds(60))) { client in
            try await client.execute(.init(path, method: method, headers: headers, body: buffer))
        }
    }

    func json(_ response: TestClient.Response) throws -> [String: Any] {
        let data = Data(response.body.map { Array($0.readableBytesView) } ?? [])
        guard let object = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]) as? [String: Any] else {
            throw TestFailure("not a JSON object: \(String(decoding: data, as: UTF8.self))")
        }
        return object
    }
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

extension TestClient.Response {
    var text: String { body.map { String(buffer: $0) } ?? "" }
    func header(_ name: String) -> String? { headers[HTTPField.Name(name)!] }
}

/// The swiftlet executable built beside the test bundle (hosts built-in Swift apps).
func swiftletBinary() throws -> String {
    let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    var dir = URL(fileURLWithPath: exe).deletingLastPathComponent()
    for _ in 0..<3 {
        let candidate = dir.appendingPathComponent("swiftlet").path
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        dir = dir.deletingLastPathComponent()
    }
    throw TestFailure("the swiftlet executable was not found beside \(exe); run `swift build` before `swift test`")
}

/// Raw HTTP/1.1 over one TCP connection, for tests about framing that a client library would hide.
enum RawHTTP {
    struct Response {
        var status: Int
        var body: String
    }

    /// Writes `bytes` at once, then reads until the server closes the connection.
    static func exchange(port: Int, _ bytes: [UInt8]) throws -> [UInt8] {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 30, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw TestFailure("connect: \(String(cString: strerror(errno)))") }
        guard bytes.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) == bytes.count else {
            throw TestFailure("short write")
        }
        var data: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = read(fd, &buffer, buffer.count)
            if n < 0 { throw TestFailure("read: \(String(cString: strerror(errno)))") }
            if n == 0 { return data }
            data.append(contentsOf: buffer[0..<n])
        }
    }

    /// Splits consecutive responses framed by Content-Length.
    static func split(_ data: [UInt8]) throws -> [Response] {
        var responses: [Response] = []
        var rest = data[...]
        let separator = Array("\r\n\r\n".utf8)
        while !rest.isEmpty {
            guard let end = rest.firstRange(of: separator) else { throw TestFailure("incomplete response head") }
            let head = String(decoding: rest[rest.startIndex..<end.lowerBound], as: UTF8.self)
            let lines = head.components(separatedBy: "\r\n")
            guard let status = lines.first?.split(separator: " ").dropFirst().first.flatMap({ Int($0) }) else {
                throw TestFailure("bad status line in \(head)")
            }
            let length = lines.dropFirst().compactMap { line -> Int? in
                let parts = line.split(separator: ":", maxSplits: 1)
                guard parts.count == 2, parts[0].lowercased() == "content-length" else { return nil }
                return Int(parts[1].trimmingCharacters(in: .whitespaces))
            }.first ?? 0
            let bodyStart = end.upperBound
            guard rest.endIndex - bodyStart >= length else { throw TestFailure("truncated body") }
            responses.append(Response(status: status, body: String(decoding: rest[bodyStart..<bodyStart + length], as: UTF8.self)))
            rest = rest[(bodyStart + length)...]
        }
        return responses
    }
}
