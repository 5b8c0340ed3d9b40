import CSandbox
import Foundation
import Logging

/// Namespaces (pid, mnt, uts, ipc, net), cgroup limits, a read-only root via pivot_root, and uid 65534.
public final class IsolatedBackend: SandboxBackend {
    /// The unprivileged uid and gid runtimes run as ("nobody").
    public static let sandboxUser: Int32 = 65534
    /// Host directories visible in every sandbox; paths below them need no extra bind mount.
    static let systemDirectories = ["/usr", "/lib", "/lib64", "/lib32", "/libx32", "/bin", "/sbin"]

    public let kind = SandboxKind.isolated
    public let summary: String
    public let workerDirectory: String
    public let cgroups: CgroupManager
    let sandboxesDirectory: String
    let extraReadOnlyPaths: [String]
    let logger: Logger
    let live = LiveSandboxes()

    /// Throws `SandboxBackendError.unavailable` naming what is missing (privileges, namespaces, cgroups).
    public init(workerDirectory: String, extraReadOnlyPaths: [String], logger: Logger) throws {
        guard geteuid() == 0 else {
            throw SandboxBackendError.unavailable("they need root (the worker runs as uid \(geteuid()))")
        }
        for namespace in ["pid", "mnt", "uts", "ipc", "net"] where !CgroupFiles.exists("/proc/self/ns/\(namespace)") {
            throw SandboxBackendError.unavailable("the kernel has no \(namespace) namespaces (/proc/self/ns/\(namespace) is missing)")
        }
        for path in extraReadOnlyPaths where !path.hasPrefix("/") || !FileManager.default.fileExists(atPath: path) {
            throw SandboxBackendError.unavailable("extra read-only path \"\(path)\" is not an existing absolute path")
        }
        let layout: CgroupLayout
        do {
            layout = try CgroupLayout.detect()
        } catch {
            throw SandboxBackendError.unavailable("\(error)")
        }
        let removed = CgroupManager.removeStale(layout: layout)
        if !removed.isEmpty { logger.info("removed stale cgroups of dead workers: \(removed.joined(separator: ", "))") }
        self.workerDirectory = workerDirectory
        self.extraReadOnlyPaths = extraReadOnlyPaths
        self.logger = logger
        sandboxesDirectory = try SandboxDirectories.prepare(workerDirectory: workerDirectory)
        do {
            cgroups = try CgroupManager(layout: layout)
        } catch {
            throw SandboxBackendError.unavailable("\(error)")
        }
        do {
            try Self.probe(in: sandboxesDirectory)
        } catch {
            for directory in Set(cgroups.parents.values) { rmdir(directory) }
            throw error
        }
        summary = "isolated: pid,mnt,uts,ipc,net namespaces (net only shared when a sandbox is given host network); "
            + "\(layout.summary); read-only root (pivot_root); uid \(Self.sandboxUser)"
    }

    /// Starts and reaps one throw-away isolated child, so `auto` only picks this backend when it really works
    /// (e.g. a container without CAP_SYS_ADMIN passes the checks above but cannot mount).
    static func probe(in sandboxesDirectory: String) throws {
        let directory = sandboxesDirectory + "/.probe"
        let root = directory + "/root"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try? FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        let candidates: [String] = ["/usr/bin/true", "/bin/true"]
        let executable = candidates.first { access($0, X_OK) == 0 } ?? candidates[0]
        let request = SpawnRequest(
            executable: executable, arguments: ["true"], environment: [], logPath: "/dev/null", isolated: true,
            rootDirectory: root, uid: sandboxUser, gid: sandboxUser)
        switch ChildSpawner.spawnBlocking(request) {
        case .failure(let failure):
            throw SandboxBackendError.unavailable("a test sandbox failed to start: \(failure.message)")
        case .success(let child):
            close(child.socket)
            var status: Int32 = 0
            _ = csandbox_wait(child.pid, &status)
        }
    }

    public func create(_ spec: SandboxSpec) async throws -> any Sandbox {
        let startedAt = ContinuousClock.now
        try SandboxStarter.validate(spec, extraReadOnlyPaths: extraReadOnlyPaths)
        try live.reserve(spec.id)
        let directory = sandboxesDirectory + "/" + spec.id
        let root = directory + "/root"
        let scratch = directory + "/scratch"
        let live = self.live
        let group: CgroupGroup
        do {
            try SandboxDirectories.make(root, mode: 0o755)
            try SandboxDirectories.make(scratch, mode: 0o700)
            guard chown(scratch, uid_t(Self.sandboxUser), gid_t(Self.sandboxUser)) == 0 else {
                throw SandboxError.startFailed("cannot chown \(scratch) to uid \(Self.sandboxUser): \(CgroupFiles.errnoText())")
            }
            do {
                group = try cgroups.makeGroup(name: spec.id, limits: spec.limits)
            } catch {
                throw SandboxError.startFailed("\(error)")
            }
        } catch {
            try? FileManager.default.removeItem(atPath: directory)
            live.release(spec.id)
            throw error
        }
        SandboxDirectories.makeLogParent(spec.logPath)

        var readOnly: [String] = []
        for path in spec.runtime.readOnlyPaths + extraReadOnlyPaths + [spec.runtime.executable]
        where !readOnly.contains(path) && !Self.isSystemPath(path) {
            readOnly.append(path)
        }
        let request = SpawnRequest(
            executable: spec.runtime.executable,
            arguments: [spec.runtime.executable] + spec.runtime.arguments,
            environment: SandboxStarter.environment(spec.environment),
            cgroupProcs: group.procsFiles,
            logPath: spec.logPath,
            isolated: true,
            network: spec.network,
            rootDirectory: root,
            codeDirectory: spec.codeDirectory,
            scratchDirectory: scratch,
            readOnlyPaths: readOnly,
            tmpBytes: spec.limits.memoryMB << 20,
            batchScheduling: spec.batchScheduling,
            uid: Self.sandboxUser,
            gid: Self.sandboxUser)
        do {
            let sandbox = try await SandboxStarter.start(
                spec: spec, request: request,
                resources: { pid in SandboxResources(
                    pid: pid, killsProcessGroup: false, killsPidNamespace: true, cgroup: group, directory: directory) },
                cleanUpBeforeSpawn: {
                    await group.remove()
                    SandboxDirectories.remove(directory)
                },
                startedAt: startedAt,
                onDestroy: { id in live.release(id) })
            live.add(sandbox)
            return sandbox
        } catch {
            live.release(spec.id)
            throw error
        }
    }

    static func isSystemPath(_ path: String) -> Bool {
        systemDirectories.contains { path == $0 || path.hasPrefix($0 + "/") }
    }

    /// Number of sandboxes created and not yet destroyed.
    public var liveCount: Int { live.count }

    public func shutdown() async {
        await live.destroyAll()
        await cgroups.removeAll()
        try? FileManager.default.removeItem(atPath: sandboxesDirectory)
    }
}
