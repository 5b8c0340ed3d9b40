import Foundation
import NIOCore
import XCTest

@testable import Platform

#if canImport(Glibc)
import Glibc
#endif

/// Runs the Python runtime server with /usr/bin/python3 over a socketpair (no sandbox).
final class RuntimePythonServerTests: XCTestCase {
    static let python = "/usr/bin/python3"

    private var directories: [String] = []

    override func setUpWithError() throws {
        guard access(Self.python, X_OK) == 0 else {
            if ProcessInfo.processInfo.environment["CI"] != nil {
                XCTFail("\(Self.python) is required on CI")
                return
            }
            let reason = "\(Self.python) is not installed; the Python runtime server cannot be tested"
            print("SKIP: \(reason)")
            throw XCTSkip(reason)
        }
    }

    override func tearDown() {
        for directory in directories { try? FileManager.default.removeItem(atPath: directory) }
        directories = []
    }

    /// A running server: its pid and the worker's connection.
    struct Server {
        var pid: pid_t
        var connection: RuntimeConnection
        var ready: WireReady
        var startToReady: Duration
    }

    private func handlerDirectory(_ source: String?) throws -> String {
        let directory = try RuntimeTestSupport.makeTemporaryDirectory("handler")
        directories.append(directory)
        if let source { try RuntimeTestSupport.writeFile(directory + "/f.py", source) }
        return directory
    }

    private func startServer(handler directory: String) async throws -> Server {
        let runtimeDirectory = try RuntimeTestSupport.makeTemporaryDirectory("runtime")
        directories.append(runtimeDirectory)
        var command = try PythonRuntime.command(interpreter: Self.python, runtimeDirectory: runtimeDirectory)
        XCTAssertEqual(command.arguments.last, "/handler")
        command.arguments[command.arguments.count - 1] = directory
        let clock = ContinuousClock()
        let started = clock.now
        let (workerFd, runtimeFd) = try RuntimeTestSupport.makeSocketPair()
        let pid = try RuntimeTestSupport.spawnRuntime(executable: command.executable, arguments: command.arguments, socket: runtimeFd)
        close(runtimeFd)
        let connection = try await RuntimeConnection.open(socket: workerFd)
        let ready = try await connection.readReady()
        return Server(pid: pid, connection: connection, ready: ready, startToReady: clock.now - started)
    }

    private func stop(_ server: Server) async -> Int32? {
        await server.connection.close()
        return RuntimeTestSupport.waitForExit(server.pid)
    }

    private func call(_ server: Server, _ body: String) async throws -> WireResponse {
        let request = WireRequest(id: "t", method: "POST", path: "/", query: "", headers: [["Content-Type", "application/json"]])
        return try await server.connection.roundTrip(request, body: ByteBuffer(string: body))
    }

    private static let echoHandler = """
        def f(event):
            action = event.get("action") if isinstance(event, dict) else None
            if action == "raise":
                raise ValueError("boom")
            if action == "set":
                return {1, 2}
            if action == "nan":
                return float("nan")
            if action == "exit":
                raise SystemExit(3)
            return event
        """

    func testEchoEmptyBodyAndErrorsThenExitOnEOF() async throws {
        let server = try await startServer(handler: try handlerDirectory(Self.echoHandler))
        XCTAssertTrue(server.ready.ready)
        XCTAssertEqual(server.ready.runtime, "python")
        XCTAssertEqual(server.ready.pid, Int(server.pid))

        let nested = #"{"a":{"b":[1,2.5,{"c":"é","d":null}],"e":true},"big":12345678901234567890,"s":"x\"y\\z\n"}"#
        let echo = try await call(server, nested)
        XCTAssertEqual(echo.status, 200)
        XCTAssertNil(echo.error)
        XCTAssertEqual(echo.headers, [["Content-Type", "application/json"]])
        XCTAssertEqual(
            String(buffer: echo.body),
            #"{"a": {"b": [1, 2.5, {"c": "\u00e9", "d": null}], "e": true}, "big": 12345678901234567890, "s": "x\"y\\z\n"}"#
        )
        let array = try await call(server, " [1, [2, [3]]] ")
        XCTAssertEqual(String(buffer: array.body), "[1, [2, [3]]]")

        let empty = try await call(server, "")
        XCTAssertEqual(empty.status, 200)
        XCTAssertEqual(String(buffer: empty.body), "{}")

        let invalid = try await call(server, #"{"a": }"#)
        XCTAssertEqual(invalid.status, 400)
        XCTAssertEqual(invalid.error?.kind, "bad_request")
        XCTAssertEqual(invalid.error?.message, "request body is not valid JSON: Expecting value: line 1 column 7 (char 6)")
        let trailing = try await call(server, "{} x")
        XCTAssertEqual(trailing.status, 400)
        XCTAssertEqual(trailing.error?.message, "request body is not valid JSON: Extra data: line 1 column 4 (char 3)")
        let notUTF8 = try await server.connection.roundTrip(
            WireRequest(id: "u", method: "POST", path: "/", query: "", headers: []), body: ByteBuffer(bytes: [0x22, 0xFF, 0x22]))
        XCTAssertEqual(notUTF8.status, 400)
        XCTAssertEqual(notUTF8.error?.kind, "bad_request")

        let raised = try await call(server, #"{"action":"raise"}"#)
        XCTAssertEqual(raised.status, 500)
        XCTAssertEqual(raised.error?.kind, "exception")
        XCTAssertEqual(raised.error?.message, "ValueError: boom")
        let traceback = try XCTUnwrap(raised.error?.traceback)
        XCTAssertTrue(traceback.hasPrefix("Traceback (most recent call last):"), traceback)
        XCTAssertTrue(traceback.contains("f.py\", line 4, in f"), traceback)
        XCTAssertTrue(traceback.hasSuffix("ValueError: boom\n"), traceback)
        XCTAssertFalse(traceback.contains("server.py"), traceback)

        let exited = try await call(server, #"{"action":"exit"}"#)
        XCTAssertEqual(exited.status, 500)
        XCTAssertEqual(exited.error?.message, "SystemExit: 3")

        for action in ["set", "nan"] {
            let bad = try await call(server, #"{"action":"\#(action)"}"#)
            XCTAssertEqual(bad.status, 500, action)
            XCTAssertEqual(bad.error?.kind, "bad_response", action)
            XCTAssertTrue(bad.error?.message.hasPrefix("return value is not JSON-serialisable: ") ?? false, action)
        }
        let set = try await call(server, #"{"action":"set"}"#)
        XCTAssertEqual(set.error?.message, "return value is not JSON-serialisable: TypeError: Object of type set is not JSON serializable")

        // Still serving after every kind of failure.
        let after = try await call(server, #"{"ok":1}"#)
        XCTAssertEqual(String(buffer: after.body), #"{"ok": 1}"#)
        let large = "[" + Array(repeating: "\"0123456789\"", count: 100_000).joined(separator: ", ") + "]"
        let largeEcho = try await call(server, large)
        XCTAssertEqual(String(buffer: largeEcho.body), large)

        let exitCode = await stop(server)
        XCTAssertEqual(exitCode, 0, "the server exits 0 on EOF")
    }

    func testImportFailuresAreReportedOnEveryRequest() async throws {
        let cases: [(source: String?, message: String, hasTraceback: Bool)] = [
            ("def f(event):\n    return (\n", "SyntaxError", true),
            ("import no_such_module_for_swiftlet\ndef f(event):\n    return 1\n", "ModuleNotFoundError: No module named 'no_such_module_for_swiftlet'", true),
            (nil, "no f.py in ", false),
            ("def g(event):\n    return 1\n", "f.py does not define a function f(event)", false),
            ("raise RuntimeError('at import')\n", "RuntimeError: at import", true),
        ]
        for item in cases {
            let server = try await startServer(handler: try handlerDirectory(item.source))
            XCTAssertTrue(server.ready.ready, "ready is sent even when the import fails")
            for body in ["", #"{"a":1}"#] {
                let response = try await call(server, body)
                XCTAssertEqual(response.status, 500)
                XCTAssertEqual(response.error?.kind, "import")
                let message = response.error?.message ?? ""
                XCTAssertTrue(message.hasPrefix(item.message), "\(message) should start with \(item.message)")
                XCTAssertEqual(response.error?.traceback != nil, item.hasTraceback, message)
            }
            let exitCode = await stop(server)
            XCTAssertEqual(exitCode, 0)
        }
    }

    func testSitePackagesAndStdlibImportWithFastStartFlags() async throws {
        let probe = """
            import sys, json, re, collections
            def f(event):
                return {"path": sys.path, "no_site": sys.flags.no_site, "bytecode": sys.dont_write_bytecode}
            """
        let directory = try handlerDirectory(probe)
        let server = try await startServer(handler: directory)
        let response = try await call(server, "")
        XCTAssertEqual(response.status, 200, "\(String(describing: response.error))")
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(String(buffer: response.body).utf8)) as? [String: Any])
        let path = try XCTUnwrap(object["path"] as? [String])
        XCTAssertEqual(path.first, directory)
        // Started with -S, the server adds the interpreter's site-packages itself.
        let expected = try sitePackages()
        for directory in expected where FileManager.default.fileExists(atPath: directory) {
            XCTAssertTrue(path.contains(directory), "\(directory) missing from \(path)")
        }
        XCTAssertEqual(object["bytecode"] as? Bool, true)
        XCTAssertFalse(FileManager.default.fileExists(atPath: directory + "/__pycache__"))
        let exitCode = await stop(server)
        XCTAssertEqual(exitCode, 0)
    }

    private func sitePackages() throws -> [String] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.python)
        process.arguments = ["-I", "-c", "import site, sys; sys.stdout.write('\\n'.join(site.getsitepackages()))"]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self).split(separator: "\n").map(String.init)
    }

    /// Reports the start→ready time and the median round trip over 2000 requests.
    /// The server sleeps once per request: while it waits for the next request, the worker reading its reply must
    /// not wake it (a plain blocking read on a Unix stream socket would be woken by the freed write space).
    func testServerSleepsOncePerRequest() async throws {
        let directory = try handlerDirectory("def f(event):\n    return None\n")
        let server = try await startServer(handler: directory)
        let request = WireRequest(id: "s", method: "POST", path: "/", query: "", headers: [])
        for _ in 0..<50 { _ = try await server.connection.roundTrip(request, body: ByteBuffer()) }
        let before = try Self.voluntarySwitches(server.pid)
        let count = 500
        for _ in 0..<count {
            _ = try await server.connection.roundTrip(request, body: ByteBuffer())
            try await Task.sleep(for: .microseconds(200))  // the server is asleep before each request arrives
        }
        let perRequest = Double(try Self.voluntarySwitches(server.pid) - before) / Double(count)
        XCTAssertGreaterThan(perRequest, 0.9, "the server should block between requests")
        XCTAssertLessThan(perRequest, 1.5, "the server was woken more than once per request (\(perRequest))")
        _ = await stop(server)
    }

    static func voluntarySwitches(_ pid: pid_t) throws -> Int {
        let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("voluntary_ctxt_switches:") }),
              let value = Int(line.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) else {
            throw NSError(domain: "proc", code: 1, userInfo: [NSLocalizedDescriptionKey: "no voluntary_ctxt_switches for \(pid)"])
        }
        return value
    }

    func testMeasureStartToReadyAndRoundTrip() async throws {
        let directory = try handlerDirectory("def f(event):\n    return event\n")
        var starts: [Duration] = []
        for _ in 0..<15 {
            let server = try await startServer(handler: directory)
            starts.append(server.startToReady)
            let exitCode = await stop(server)
            XCTAssertEqual(exitCode, 0)
        }
        let server = try await startServer(handler: directory)
        let clock = ContinuousClock()
        var trips: [Duration] = []
        let request = WireRequest(id: "m", method: "POST", path: "/", query: "", headers: [])
        let body = ByteBuffer(string: #"{"n": 1}"#)
        for index in 0..<2100 {
            let started = clock.now
            let response = try await server.connection.roundTrip(request, body: body)
            let elapsed = clock.now - started
            XCTAssertEqual(response.status, 200)
            if index >= 100 { trips.append(elapsed) }  // after warm-up
        }
        let exitCode = await stop(server)
        XCTAssertEqual(exitCode, 0)
        func median(_ values: [Duration]) -> Double {
            let sorted = values.sorted()
            let middle = sorted[sorted.count / 2].components
            return Double(middle.seconds) * 1e6 + Double(middle.attoseconds) / 1e12
        }
        let p99 = trips.sorted()[trips.count * 99 / 100].components
        print(String(
            format: "python runtime (%@): start→ready median %.1f ms over %d starts; round trip median %.1f µs, p99 %.1f µs over %d requests",
            Self.python, median(starts) / 1000, starts.count, median(trips),
            Double(p99.seconds) * 1e6 + Double(p99.attoseconds) / 1e12, trips.count))
    }

    func testCommandWritesServerIdempotentlyAndListsReadOnlyPaths() throws {
        let runtimeDirectory = try RuntimeTestSupport.makeTemporaryDirectory("runtime") + "/nested"
        directories.append((runtimeDirectory as NSString).deletingLastPathComponent)
        let first = try PythonRuntime.command(interpreter: Self.python, runtimeDirectory: runtimeDirectory)
        let serverPath = runtimeDirectory + "/server.py"
        XCTAssertEqual(first.executable, Self.python)
        XCTAssertEqual(first.arguments, ["-I", "-S", "-B", "-u", runtimeDirectory + "/server.pyc", "/handler"], "the compiled server runs")
        XCTAssertEqual(first.readOnlyPaths, [runtimeDirectory], "a system interpreter needs no extra paths")
        XCTAssertEqual(try String(contentsOfFile: serverPath, encoding: .utf8), PythonRuntime.serverSource)
        try RuntimeTestSupport.writeFile(serverPath, "stale")
        _ = try PythonRuntime.command(interpreter: Self.python, runtimeDirectory: runtimeDirectory)
        XCTAssertEqual(try String(contentsOfFile: serverPath, encoding: .utf8), PythonRuntime.serverSource, "a stale server is replaced")
        let files = try FileManager.default.contentsOfDirectory(atPath: runtimeDirectory)
        XCTAssertEqual(files.sorted(), ["server.py", "server.pyc"], "no temporary files are left")
        // An interpreter that cannot compile it falls back to the source.
        XCTAssertNil(PythonRuntime.compileServer(interpreter: "/bin/false", source: serverPath))

        let custom = PythonRuntime.installationPrefix(ofInterpreter: "/opt/py/3.12/bin/python3")
        XCTAssertEqual(custom, "/opt/py/3.12")
        XCTAssertTrue(RuntimePaths.isSystemPath("/usr/bin/python3"))
        XCTAssertTrue(RuntimePaths.isSystemPath("/lib64/ld.so"))
        XCTAssertFalse(RuntimePaths.isSystemPath("/usrlocal/bin/python3"))
        XCTAssertFalse(RuntimePaths.isSystemPath("/opt/py/bin/python3"))
    }

    func testCommandForInterpreterOutsideSystemDirectoriesIncludesItsPrefix() throws {
        let prefix = try RuntimeTestSupport.makeTemporaryDirectory("prefix")
        directories.append(prefix)
        try FileManager.default.createDirectory(atPath: prefix + "/bin", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: prefix + "/bin/python3", withDestinationPath: Self.python)
        let runtimeDirectory = prefix + "/runtime"
        let command = try PythonRuntime.command(interpreter: prefix + "/bin/python3", runtimeDirectory: runtimeDirectory)
        XCTAssertEqual(command.readOnlyPaths, [runtimeDirectory, prefix])
    }

    func testResolveInterpreter() throws {
        XCTAssertEqual(try PythonRuntime.resolveInterpreter(""), Self.python)
        XCTAssertEqual(try PythonRuntime.resolveInterpreter(Self.python), Self.python)
        XCTAssertThrowsError(try PythonRuntime.resolveInterpreter("/nonexistent/python3")) { error in
            XCTAssertEqual("\(error)", "Python interpreter not found: /nonexistent/python3 does not exist")
        }
        XCTAssertThrowsError(try PythonRuntime.resolveInterpreter("/usr")) { error in
            XCTAssertEqual("\(error)", "Python interpreter /usr is not an executable file")
        }
        XCTAssertThrowsError(try PythonRuntime.resolveInterpreter("no-such-python-for-swiftlet")) { error in
            XCTAssertEqual("\(error)", "Python interpreter not found: no no-such-python-for-swiftlet on PATH")
        }
        let resolved = try PythonRuntime.resolveInterpreter("sh")
        XCTAssertTrue(resolved.hasPrefix("/") && resolved.hasSuffix("/sh"), resolved)
    }
}
