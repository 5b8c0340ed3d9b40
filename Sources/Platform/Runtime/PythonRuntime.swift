import Foundation

#if canImport(Glibc)
import Glibc
#endif

public enum PythonRuntimeError: Error, Sendable, Equatable, CustomStringConvertible {
    case interpreterNotFound(String)
    case interpreterNotExecutable(String)
    case cannotWriteServer(path: String, reason: String)

    public var description: String {
        switch self {
        case .interpreterNotFound(let what): return "Python interpreter not found: \(what)"
        case .interpreterNotExecutable(let path): return "Python interpreter \(path) is not an executable file"
        case .cannotWriteServer(let path, let reason): return "cannot write the Python runtime server \(path): \(reason)"
        }
    }
}

/// The Python runtime: a small stdlib-only server (`server.py`) that imports `/handler/f.py` and serves `f(event)`.
public enum PythonRuntime {
    /// File name of the server under the runtime directory.
    public static let serverFileName = "server.py"
    /// Where the lambda's code is seen inside a sandbox.
    public static let handlerDirectory = "/handler"

    /// File name of the server compiled by the configured interpreter.
    public static let compiledServerFileName = "server.pyc"

    /// Writes server.py under runtimeDirectory (idempotent, atomic), compiles it with `interpreter` to server.pyc, and returns
    /// the command that runs the compiled server (server.py when compiling failed) for the code at /handler.
    /// readOnlyPaths holds runtimeDirectory and, when the interpreter lives outside the system directories, its installation prefix.
    public static func command(interpreter: String, runtimeDirectory: String) throws -> RuntimeCommand {
        let sourcePath = try writeServer(runtimeDirectory: runtimeDirectory)
        // Compiling server.py costs about 1 ms of every cold start; the interpreter loads a .pyc in microseconds.
        let serverPath = compileServer(interpreter: interpreter, source: sourcePath) ?? sourcePath
        var readOnly = [runtimeDirectory]
        for path in [interpreter, realPath(interpreter)] where !RuntimePaths.isSystemPath(path) {
            let prefix = installationPrefix(ofInterpreter: path)
            if !readOnly.contains(prefix) { readOnly.append(prefix) }
        }
        return RuntimeCommand(
            executable: interpreter,
            // -I: ignore PYTHON* variables and user site; -S: skip `site` (server.py adds site-packages itself, ~5 ms faster);
            // -B: never write .pyc into the code directory; -u: unbuffered output so logs survive a killed sandbox.
            arguments: ["-I", "-S", "-B", "-u", serverPath, handlerDirectory],
            readOnlyPaths: readOnly
        )
    }

    /// "" → /usr/bin/python3 if executable, else `python3` on PATH (resolved to an absolute path); otherwise the given path must exist.
    /// A name without "/" is looked up on PATH. A launcher script found on PATH (e.g. a version-manager shim) is resolved to the
    /// interpreter it runs, since a script cannot work inside a sandbox.
    public static func resolveInterpreter(_ configured: String) throws -> String {
        let systemDefault = "/usr/bin/python3"
        if configured.isEmpty {
            if access(systemDefault, X_OK) == 0 { return systemDefault }
            guard let found = RuntimePaths.findOnPath("python3") else {
                throw PythonRuntimeError.interpreterNotFound("\(systemDefault) does not exist and no python3 is on PATH")
            }
            return try interpreterBehindLauncher(found)
        }
        if !configured.contains("/") {
            guard let found = RuntimePaths.findOnPath(configured) else {
                throw PythonRuntimeError.interpreterNotFound("no \(configured) on PATH")
            }
            return try interpreterBehindLauncher(found)
        }
        let absolute = configured.hasPrefix("/")
            ? configured
            : FileManager.default.currentDirectoryPath + "/" + configured
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: absolute, isDirectory: &isDirectory) else {
            throw PythonRuntimeError.interpreterNotFound("\(absolute) does not exist")
        }
        guard !isDirectory.boolValue, access(absolute, X_OK) == 0 else {
            throw PythonRuntimeError.interpreterNotExecutable(absolute)
        }
        return absolute
    }

    /// Writes the server if it is missing or differs; returns its path.
    @discardableResult
    public static func writeServer(runtimeDirectory: String) throws -> String {
        let path = runtimeDirectory + "/" + serverFileName
        let contents = Data(serverSource.utf8)
        if let existing = FileManager.default.contents(atPath: path), existing == contents { return path }
        do {
            try FileManager.default.createDirectory(atPath: runtimeDirectory, withIntermediateDirectories: true)
            let temporary = path + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
            try contents.write(to: URL(fileURLWithPath: temporary))
            if rename(temporary, path) != 0 {
                let reason = String(cString: strerror(errno))
                unlink(temporary)
                throw PythonRuntimeError.cannotWriteServer(path: path, reason: reason)
            }
        } catch let error as PythonRuntimeError {
            throw error
        } catch {
            throw PythonRuntimeError.cannotWriteServer(path: path, reason: "\(error)")
        }
        return path
    }

    /// Compiles `source` next to it as server.pyc with `interpreter` (so the bytecode matches it); nil when that fails.
    /// The hash-based .pyc is not checked against the source: `command` recompiles it every time it is called.
    static func compileServer(interpreter: String, source: String) -> String? {
        let compiled = (source as NSString).deletingLastPathComponent + "/" + compiledServerFileName
        let process = Process()
        process.executableURL = URL(fileURLWithPath: interpreter)
        process.arguments = [
            "-I", "-S", "-c",
            "import py_compile, sys; py_compile.compile(sys.argv[1], cfile=sys.argv[2], doraise=True, "
                + "invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)",
            source, compiled,
        ]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            return nil
        }
        process.waitUntilExit()
        guard process.terminationReason == .exit, process.terminationStatus == 0,
              FileManager.default.fileExists(atPath: compiled) else { return nil }
        return compiled
    }

    /// `/opt/py/bin/python3` → `/opt/py`; an interpreter not in a `bin` directory → its directory.
    static func installationPrefix(ofInterpreter path: String) -> String {
        let directory = (path as NSString).deletingLastPathComponent
        if (directory as NSString).lastPathComponent == "bin" {
            return (directory as NSString).deletingLastPathComponent
        }
        return directory
    }

    static func realPath(_ path: String) -> String {
        guard let resolved = realpath(path, nil) else { return path }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// A binary is returned as is; a script (`#!`) is asked for `sys.executable`.
    private static func interpreterBehindLauncher(_ path: String) throws -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw PythonRuntimeError.interpreterNotExecutable(path)
        }
        let magic = handle.readData(ofLength: 2)
        try? handle.close()
        guard magic == Data("#!".utf8) else { return path }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = ["-c", "import sys; sys.stdout.write(sys.executable)"]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            throw PythonRuntimeError.interpreterNotFound("cannot run \(path): \(error)")
        }
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let executable = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard process.terminationStatus == 0, executable.hasPrefix("/"), access(executable, X_OK) == 0 else {
            throw PythonRuntimeError.interpreterNotFound("\(path) is a launcher script that did not name its interpreter")
        }
        return executable
    }

    /// The runtime server (Python 3.8+, stdlib only). Speaks the wire protocol on fd 3; see README.md in this folder.
    public static let serverSource = #"""
"""Swiftlet Python runtime: serves f(event) from <handler dir>/f.py over the wire protocol on fd 3."""
import os
import select
import sys

SOCKET_FD = 3
MAX_HEADER = 1 << 20
MAX_BODY = 64 << 20
JSON_WHITESPACE = " \t\n\r"


def add_site_packages():
    """Started with -S for a fast start: add site-packages and the directories named in their .pth files (no .pth code runs)."""
    try:
        import site
        directories = site.getsitepackages()
    except Exception:
        return
    for directory in directories:
        if directory in sys.path or not os.path.isdir(directory):
            continue
        sys.path.append(directory)
        try:
            names = sorted(name for name in os.listdir(directory) if name.endswith(".pth"))
        except OSError:
            continue
        for name in names:
            try:
                with open(os.path.join(directory, name), encoding="utf-8") as lines:
                    for line in lines:
                        line = line.strip()
                        if not line or line.startswith(("#", "import ", "import\t")):
                            continue
                        path = os.path.join(directory, line)
                        if path not in sys.path and os.path.isdir(path):
                            sys.path.append(path)
            except (OSError, UnicodeDecodeError):
                pass


def json_codec():
    """(loads, dumps) on the C accelerator: importing the json package costs ~8 ms (it pulls in re)."""
    try:
        import _json

        class Options:
            strict = True
            object_hook = None
            object_pairs_hook = None
            parse_float = float
            parse_int = int
            parse_constant = {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}.__getitem__
            memo = {}

        scan = _json.make_scanner(Options())
        escape = _json.encode_basestring_ascii

        def not_serialisable(value):
            raise TypeError("Object of type %s is not JSON serializable" % value.__class__.__name__)

        def position(text, index):
            line = text.count("\n", 0, index) + 1
            column = index - text.rfind("\n", 0, index)
            return "line %d column %d (char %d)" % (line, column, index)

        def loads(text):
            start = len(text) - len(text.lstrip(JSON_WHITESPACE))
            try:
                value, end = scan(text, start)
            except StopIteration as stop:
                raise ValueError("Expecting value: " + position(text, stop.value)) from None
            except Exception:
                # The accelerator reports other syntax errors through json.decoder; let the package describe them.
                import json

                return json.loads(text)
            rest = len(text) - len(text[end:].lstrip(JSON_WHITESPACE))
            if rest != len(text):
                raise ValueError("Extra data: " + position(text, rest))
            return value

        def dumps(value):
            # A fresh encoder per call: its cycle markers are left dirty after a failure.
            encode = _json.make_encoder({}, not_serialisable, escape, None, ": ", ", ", False, False, False)
            return "".join(encode(value, 0))

        if loads(' {"a": [1, 2.5, "\\u00e9", null, true]} ') != {"a": [1, 2.5, "\u00e9", None, True]}:
            raise ValueError("accelerated decoder disagrees")
        if dumps({"a": [1, 2.5, "\u00e9", None, True]}) != '{"a": [1, 2.5, "\\u00e9", null, true]}':
            raise ValueError("accelerated encoder disagrees")
        return loads, dumps
    except Exception:
        import json

        return json.loads, lambda value: json.dumps(value, allow_nan=False)


def describe(error):
    text = str(error)
    return "%s: %s" % (type(error).__name__, text) if text else type(error).__name__


def format_traceback(error):
    import traceback

    frames = error.__traceback__
    if frames is not None:
        frames = frames.tb_next  # drop this server's own frame
    return "".join(traceback.format_exception(type(error), error, frames))


def load_handler(directory):
    """Returns (f, None) or (None, error header) when the code cannot be loaded."""
    sys.path.insert(0, directory)
    if not os.path.isfile(os.path.join(directory, "f.py")):
        return None, {"kind": "import", "message": "no f.py in " + directory}
    try:
        import f as module
    except (Exception, SystemExit) as error:
        return None, {"kind": "import", "message": describe(error), "traceback": format_traceback(error)}
    function = getattr(module, "f", None)
    if not callable(function):
        return None, {"kind": "import", "message": "f.py does not define a function f(event)"}
    return function, None


class FrameReader:
    """Reads exact byte counts from the socket. It waits with poll() for input: a read() blocked on a Unix stream
    socket is also woken each time the worker consumes a reply (write space), a spurious wake-up per request."""

    def __init__(self, fd):
        self.fd = fd
        self.buffer = bytearray()
        self.poller = select.poll()
        self.poller.register(fd, select.POLLIN)

    def read(self, count):
        while len(self.buffer) < count:
            self.poller.poll()
            chunk = os.read(self.fd, max(1 << 16, count - len(self.buffer)))
            if not chunk:
                break
            self.buffer += chunk
        data = bytes(self.buffer[:count])
        del self.buffer[:count]
        return data


def send(header, body):
    data = len(header).to_bytes(4, "big") + len(body).to_bytes(4, "big") + header + body
    view = memoryview(data)
    while view:
        view = view[os.write(SOCKET_FD, view):]


def invoke(function, body, loads, dumps):
    """Returns (status, headers, error, body) for one request body."""
    if body:
        try:
            event = loads(body.decode("utf-8"))
        except Exception as error:
            return 400, [], {"kind": "bad_request", "message": "request body is not valid JSON: " + str(error)}, b""
    else:
        event = {}
    try:
        result = function(event)
    except (Exception, SystemExit) as error:
        return 500, [], {"kind": "exception", "message": describe(error), "traceback": format_traceback(error)}, b""
    try:
        encoded = dumps(result).encode("utf-8")
    except Exception as error:
        message = "return value is not JSON-serialisable: " + describe(error)
        return 500, [], {"kind": "bad_response", "message": message}, b""
    return 200, [["Content-Type", "application/json"]], None, encoded


def main():
    handler_directory = sys.argv[1] if len(sys.argv) > 1 else "/handler"
    sys.dont_write_bytecode = True
    if sys.flags.no_site:
        add_site_packages()
    loads, dumps = json_codec()
    function, import_error = load_handler(handler_directory)
    stream = FrameReader(SOCKET_FD)
    try:
        send(dumps({"ready": True, "runtime": "python", "pid": os.getpid()}).encode(), b"")
        while True:
            prefix = stream.read(8)
            if len(prefix) < 8:
                if prefix:
                    sys.stderr.write("swiftlet runtime: stream ended inside a frame\n")
                    return 2
                return 0
            header_length = int.from_bytes(prefix[:4], "big")
            body_length = int.from_bytes(prefix[4:], "big")
            if header_length > MAX_HEADER or body_length > MAX_BODY:
                sys.stderr.write("swiftlet runtime: frame of %d + %d bytes is over the limits\n" % (header_length, body_length))
                return 2
            stream.read(header_length)  # the request header; f(event) sees only the body
            body = stream.read(body_length)
            if len(body) < body_length:
                sys.stderr.write("swiftlet runtime: stream ended inside a frame\n")
                return 2
            if import_error is not None:
                status, headers, error, out = 500, [], import_error, b""
            else:
                status, headers, error, out = invoke(function, body, loads, dumps)
            reply = {"status": status, "headers": headers}
            if error is not None:
                reply["error"] = error
            send(dumps(reply).encode(), out)
    except (BrokenPipeError, ConnectionResetError):
        return 0


if __name__ == "__main__":
    sys.exit(main())
"""#
}

/// Host path helpers shared by the runtimes.
enum RuntimePaths {
    /// Directories every sandbox root already shows read-only (so they need no extra bind).
    static let systemDirectories = ["/usr", "/lib", "/lib32", "/lib64", "/libx32", "/bin", "/sbin"]

    static func isSystemPath(_ path: String) -> Bool {
        systemDirectories.contains { path == $0 || path.hasPrefix($0 + "/") }
    }

    static func findOnPath(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for directory in path.split(separator: ":") where directory.hasPrefix("/") {
            let candidate = "\(directory)/\(name)"
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: candidate, isDirectory: &isDirectory), !isDirectory.boolValue,
               access(candidate, X_OK) == 0 {
                return candidate
            }
        }
        return nil
    }

    /// Drops duplicates and paths inside another listed directory, keeping first-seen order.
    static func minimal(_ paths: [String]) -> [String] {
        var result: [String] = []
        for path in paths {
            let covered = result.contains { path == $0 || path.hasPrefix($0.hasSuffix("/") ? $0 : $0 + "/") }
            if !covered { result.append(path) }
        }
        return result.filter { candidate in
            !result.contains { $0 != candidate && candidate.hasPrefix($0.hasSuffix("/") ? $0 : $0 + "/") }
        }
    }
}
