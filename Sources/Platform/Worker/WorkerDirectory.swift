import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A worker's directory: `config.json`, `registry/`, `logs/`, `worker.pid` and `worker.port` while running.
public struct WorkerDirectory: Sendable {
    public let path: String

    public init(path: String) {
        self.path = URL(fileURLWithPath: path).standardizedFileURL.path
    }

    public var configFile: String { file("config.json") }
    public var pidFile: String { file("worker.pid") }
    public var portFile: String { file("worker.port") }
    public var logFile: String { file("worker.log") }

    /// Creates the directory and a `config.json` of defaults if missing (the `port` given is written on first use).
    public static func prepare(_ path: String, port: Int? = nil) throws -> WorkerDirectory {
        let layout = WorkerDirectory(path: path)
        try FileManager.default.createDirectory(atPath: layout.path, withIntermediateDirectories: true)
        if !FileManager.default.fileExists(atPath: layout.configFile) {
            var config = WorkerConfig()
            if let port { config.port = port }
            try config.encodedJSON().write(to: URL(fileURLWithPath: layout.configFile), options: .atomic)
        }
        return layout
    }

    public func loadConfig() throws -> WorkerConfig {
        try WorkerConfig.load(from: configFile)
    }

    /// The pid of a live worker using this directory, if any.
    public func runningPID() -> Int32? {
        guard let text = try? String(contentsOfFile: pidFile, encoding: .utf8),
              let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)), Self.alive(pid)
        else { return nil }
        return pid
    }

    public func port() -> Int? {
        guard let text = try? String(contentsOfFile: portFile, encoding: .utf8) else { return nil }
        return Int(text.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    public func writePID(port: Int) {
        try? "\(port)\n".write(toFile: portFile, atomically: true, encoding: .utf8)
        try? "\(getpid())\n".write(toFile: pidFile, atomically: true, encoding: .utf8)
    }

    public func clearPID() {
        try? FileManager.default.removeItem(atPath: pidFile)
        try? FileManager.default.removeItem(atPath: portFile)
    }

    public static func alive(_ pid: Int32) -> Bool {
        if kill(pid, 0) != 0 && errno == ESRCH { return false }
        // A zombie child of ours still answers kill(0); treat it as gone.
        if let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
           let close = stat.lastIndex(of: ")") {
            let state = stat[stat.index(close, offsetBy: 2)...].prefix(1)
            if state == "Z" || state == "X" { return false }
        }
        return true
    }

    /// Starts `swiftlet worker up` for this directory in a new session, output to `worker.log`; waits until it listens.
    public func startDetached(port: Int?, executable: String = "/proc/self/exe", timeoutSeconds: Double = 30) throws -> (Int32, String) {
        clearPID()
        let resolved = (try? FileManager.default.destinationOfSymbolicLink(atPath: executable)) ?? executable
        var arguments = [resolved, "worker", "up", "--dir", path]
        if let port { arguments += ["--port", String(port)] }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, logFile, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        // The caller's other descriptors (e.g. the pipes of whoever ran `worker up -d`) must not stay open in the worker.
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? [] {
            if let fd = Int32(entry), fd > 2 { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setflags(&attributes, Int16(0x80))  // POSIX_SPAWN_SETSID (glibc), not exported to Swift
        var pid: pid_t = 0
        let argv = arguments.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        let rc = posix_spawn(&pid, resolved, &actions, &attributes, argv, environ)
        guard rc == 0 else { throw WorkerStartError("cannot start the worker: \(String(cString: strerror(rc)))") }
        let deadline = Date().addingTimeInterval(timeoutSeconds)
        while Date() < deadline {
            if let port = self.port(), runningPID() == pid { return (pid, "http://127.0.0.1:\(port)") }
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid {
                let tail = (try? String(contentsOfFile: logFile, encoding: .utf8))?.split(separator: "\n").suffix(5).joined(separator: "\n") ?? ""
                throw WorkerStartError("the worker exited during start-up; last lines of \(logFile):\n\(tail)")
            }
            usleep(20_000)
        }
        throw WorkerStartError("the worker did not start listening within \(Int(timeoutSeconds)) s; see \(logFile)")
    }

    private func file(_ name: String) -> String {
        (path as NSString).appendingPathComponent(name)
    }
}

public struct WorkerStartError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
