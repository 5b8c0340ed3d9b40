import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// Helpers for runtime tests: sockets, spawning a runtime on fd 3, temporary handler directories.
enum RuntimeTestSupport {
    /// A connected pair of Unix stream sockets, both close-on-exec.
    static func makeSocketPair() throws -> (worker: Int32, runtime: Int32) {
        var fds: [Int32] = [-1, -1]
        let type = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
        guard socketpair(AF_UNIX, type, 0, &fds) == 0 else {
            throw NSError(domain: "socketpair", code: Int(errno), userInfo: [NSLocalizedDescriptionKey: "socketpair failed"])
        }
        return (fds[0], fds[1])
    }

    /// Spawns `executable` with `socket` as fd 3 (plain posix_spawn, no sandbox). Returns the pid.
    static func spawnRuntime(executable: String, arguments: [String], socket: Int32, environment: [String] = ["PATH=/usr/bin:/bin"]) throws
        -> pid_t
    {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, socket, 3)
        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup($0) } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, executable, &actions, nil, argv, envp)
        guard result == 0 else {
            throw NSError(domain: "spawn", code: Int(result), userInfo: [NSLocalizedDescriptionKey: "posix_spawn \(executable) failed"])
        }
        return pid
    }

    /// Waits up to `seconds` for `pid`; returns its exit code, or nil (after killing it) when it did not exit in time.
    static func waitForExit(_ pid: pid_t, seconds: Double = 10) -> Int32? {
        let deadline = Date().addingTimeInterval(seconds)
        var status: Int32 = 0
        while Date() < deadline {
            let result = waitpid(pid, &status, WNOHANG)
            if result == pid {
                // WIFEXITED / WEXITSTATUS by hand (the macros are not imported).
                if status & 0x7F == 0 { return (status >> 8) & 0xFF }
                return 128 + (status & 0x7F)
            }
            usleep(2_000)
        }
        kill(pid, SIGKILL)
        waitpid(pid, &status, 0)
        return nil
    }

    /// A fresh temporary directory, removed by the caller.
    static func makeTemporaryDirectory(_ label: String) throws -> String {
        let path = NSTemporaryDirectory() + "swiftlet-\(label)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    static func writeFile(_ path: String, _ contents: String) throws {
        try contents.write(toFile: path, atomically: true, encoding: .utf8)
    }
}
