import Foundation
import Logging
import NIOCore
import XCTest

@testable import Platform

/// A minimal runtime for sandbox tests: each request body is Python source run with `exec`;
/// the response body is `str(result)`, or status 500 with the exception's repr.
let sandboxTestRuntimeSource = #"""
import json, os, socket, struct, sys
sock = socket.socket(fileno=3)
def send(header, body=b""):
    raw = json.dumps(header).encode()
    sock.sendall(struct.pack(">II", len(raw), len(body)) + raw + body)
def read_exact(n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            os._exit(0)
        data += chunk
    return data
send({"ready": True, "runtime": "python", "pid": os.getpid()})
while True:
    header_length, body_length = struct.unpack(">II", read_exact(8))
    request = json.loads(read_exact(header_length))
    code = read_exact(body_length).decode()
    scope = {}
    try:
        exec(code, scope)
        send({"status": 200, "headers": []}, str(scope.get("result", "")).encode())
    except BaseException as error:
        send({"status": 500, "headers": [], "error": {"kind": "exception", "message": repr(error)}})
"""#

let systemPython = "/usr/bin/python3"

/// Skips (with the reason printed) when not root; fails instead when CI is set.
func requireRootAndPython() throws {
    var missing: String?
    if geteuid() != 0 {
        missing = "isolated sandbox tests need root (running as euid \(geteuid()))"
    } else if access(systemPython, X_OK) != 0 {
        missing = "sandbox tests need \(systemPython)"
    }
    guard let missing else { return }
    throw unavailable(missing)
}

/// A capability a test needs is missing: a failure when CI is set, otherwise a printed skip.
func unavailable(_ reason: String) -> XCTSkip {
    if ProcessInfo.processInfo.environment["CI"] != nil {
        XCTFail(reason + " — CI is set, so this is a failure, not a skip")
    }
    print("SKIP: \(reason)")
    return XCTSkip(reason)
}

func requirePython() throws {
    guard access(systemPython, X_OK) != 0 else { return }
    throw unavailable("sandbox tests need \(systemPython)")
}

/// Temporary directories for one test: worker dir, code dir, runtime script; removed by `cleanUp`.
struct SandboxFixture {
    let base: String
    let workerDirectory: String
    let codeDirectory: String
    let runtimeScript: String

    init() throws {
        base = NSTemporaryDirectory() + "sandbox-test-" + UUID().uuidString
        workerDirectory = base + "/worker"
        codeDirectory = base + "/code"
        let runtimeDirectory = base + "/runtime"
        runtimeScript = runtimeDirectory + "/runtime.py"
        let manager = FileManager.default
        for directory in [workerDirectory, codeDirectory, runtimeDirectory] {
            try manager.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
        // Let uid 65534 traverse to the runtime script.
        chmod(base, 0o755)
        chmod(runtimeDirectory, 0o755)
        try sandboxTestRuntimeSource.write(toFile: runtimeScript, atomically: true, encoding: .utf8)
        try "def f(event):\n    return event\n".write(toFile: codeDirectory + "/f.py", atomically: true, encoding: .utf8)
    }

    func spec(id: String, limits: SandboxLimits = SandboxLimits(memoryMB: 128, timeoutSeconds: 10, procs: 32, cpuPercent: 100),
              environment: [String: String] = ["SANDBOX_TEST": "1"]) -> SandboxSpec {
        SandboxSpec(
            id: id, lambda: "test", codeDirectory: codeDirectory,
            runtime: RuntimeCommand(executable: systemPython, arguments: ["-I", "-S", "-B", "-u", runtimeScript],
                                    readOnlyPaths: [runtimeScript]),
            environment: environment, limits: limits, network: false,
            logPath: workerDirectory + "/logs/\(id).log")
    }

    func cleanUp() {
        try? FileManager.default.removeItem(atPath: base)
    }
}

var testLogger: Logger {
    var logger = Logger(label: "sandbox-test")
    logger.logLevel = .warning
    return logger
}

extension Sandbox {
    /// Runs Python source in the sandbox; returns (status, body or error message).
    func run(_ code: String, timeout: Duration = .seconds(10)) async throws -> (Int, String) {
        let request = WireRequest(id: UUID().uuidString, method: "POST", path: "/", query: "", headers: [])
        let response = try await invoke(request, body: ByteBuffer(string: code), timeout: timeout)
        if let error = response.error { return (response.status, error.message) }
        return (response.status, String(buffer: response.body))
    }
}

/// A TCP listener on 127.0.0.1 with an ephemeral port; accepts nothing, the backlog is enough for connect.
final class LoopbackListener {
    let fd: Int32
    let port: UInt16

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.fd = fd
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        guard bound == 0, listen(fd, 16) == 0 else { throw unavailable("cannot listen on 127.0.0.1") }
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        port = UInt16(bigEndian: address.sin_port)
        _ = length
    }

    deinit { close(fd) }
}

func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    return sorted.isEmpty ? 0 : sorted[sorted.count / 2]
}

/// True when no process with this pid exists (a zombie counts as existing).
func processIsGone(_ pid: Int32) -> Bool {
    kill(pid, 0) != 0 && errno == ESRCH
}

/// True when the process is gone or only its zombie is left (reparented children are reaped by whoever is init).
func processIsGoneOrZombie(_ pid: Int32) -> Bool {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return true }
    let afterName = stat.split(separator: ")").last ?? ""
    return afterName.split(separator: " ").first == "Z"
}
