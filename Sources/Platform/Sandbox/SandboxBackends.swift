import Foundation
import Logging
import Synchronization

/// Why a backend cannot be used, or a bad backend setting.
public enum SandboxBackendError: Error, Sendable, Equatable, CustomStringConvertible {
    case unavailable(String)
    case invalidMode(String)

    public var description: String {
        switch self {
        case .unavailable(let why): return "isolated sandboxes are not available: \(why)"
        case .invalidMode(let mode): return "unknown sandbox mode \"\(mode)\" (expected auto, isolated or process)"
        }
    }
}

public enum SandboxBackends {
    /// mode: "auto" (isolated when privileged and supported, else process), "isolated" (throw with the reason if
    /// impossible), "process".
    public static func make(
        mode: String, workerDirectory: String, extraReadOnlyPaths: [String], logger: Logger
    ) throws -> any SandboxBackend {
        let backend: any SandboxBackend
        switch mode {
        case "process":
            backend = try ProcessBackend(workerDirectory: workerDirectory)
        case "isolated":
            backend = try IsolatedBackend(workerDirectory: workerDirectory, extraReadOnlyPaths: extraReadOnlyPaths, logger: logger)
        case "auto":
            do {
                backend = try IsolatedBackend(workerDirectory: workerDirectory, extraReadOnlyPaths: extraReadOnlyPaths, logger: logger)
            } catch {
                logger.warning("sandbox mode auto: \(error); falling back to the process backend")
                backend = try ProcessBackend(workerDirectory: workerDirectory)
            }
        default:
            throw SandboxBackendError.invalidMode(mode)
        }
        if backend.kind == .process {
            logger.warning("\(backend.summary)")
        } else {
            logger.info("\(backend.summary)")
        }
        return backend
    }
}

/// Sandboxes still alive, so `shutdown` can destroy them.
final class LiveSandboxes: Sendable {
    private let sandboxes = Mutex<[String: RuntimeSandbox]>([:])
    /// Ids being created (reserved so two creates cannot share a directory or cgroup).
    private let reserved = Mutex<Set<String>>([])

    func reserve(_ id: String) throws {
        let taken = reserved.withLock { ids -> Bool in
            if ids.contains(id) { return true }
            ids.insert(id)
            return false
        }
        if taken { throw SandboxError.startFailed("sandbox id \(id) is already in use") }
    }

    func release(_ id: String) {
        _ = reserved.withLock { $0.remove(id) }
        _ = sandboxes.withLock { $0.removeValue(forKey: id) }
    }

    func add(_ sandbox: RuntimeSandbox) {
        sandboxes.withLock { $0[sandbox.id] = sandbox }
    }

    var all: [RuntimeSandbox] { sandboxes.withLock { Array($0.values) } }

    var count: Int { sandboxes.withLock { $0.count } }

    func destroyAll() async {
        await withTaskGroup(of: Void.self) { group in
            for sandbox in all { group.addTask { await sandbox.destroy() } }
        }
    }
}

enum SandboxDirectories {
    /// Creates `<workerDirectory>/sandboxes`, removing what a previous worker left there.
    static func prepare(workerDirectory: String) throws -> String {
        let directory = (workerDirectory as NSString).appendingPathComponent("sandboxes")
        let manager = FileManager.default
        do {
            if manager.fileExists(atPath: directory) { try manager.removeItem(atPath: directory) }
            try manager.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw SandboxBackendError.unavailable("cannot prepare \(directory): \(error.localizedDescription)")
        }
        return directory
    }

    static func make(_ path: String, mode: Int) throws {
        do {
            try FileManager.default.createDirectory(
                atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: mode])
        } catch {
            throw SandboxError.startFailed("cannot create \(path): \(error.localizedDescription)")
        }
    }

    /// Removes a sandbox directory: a few rmdir calls for the usual `root` + `scratch` layout
    /// (a fraction of a generic recursive removal), the recursive removal when something was left inside.
    static func remove(_ directory: String) {
        for child in ["root", "scratch"] {
            let path = directory + "/" + child
            if rmdir(path) != 0 && errno != ENOENT { break }
        }
        if rmdir(directory) == 0 || errno == ENOENT { return }
        try? FileManager.default.removeItem(atPath: directory)
    }

    static func makeLogParent(_ logPath: String) {
        let parent = (logPath as NSString).deletingLastPathComponent
        if !parent.isEmpty { try? FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true) }
    }
}
