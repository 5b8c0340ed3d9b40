import Foundation

/// A plain child process with rlimits, for machines where the worker has no privileges.
/// No namespaces and no cgroups: the runtime shares the host filesystem and network.
/// Arguments naming `/handler` or `/scratch` are rewritten to the host code and scratch directories.
public final class ProcessBackend: SandboxBackend {
    public let kind = SandboxKind.process
    public let summary = "process: REDUCED ISOLATION — plain child process with rlimits "
        + "(no namespaces, no cgroups, shares the host filesystem and network)"
    public let workerDirectory: String
    let sandboxesDirectory: String
    let live = LiveSandboxes()

    public init(workerDirectory: String) throws {
        self.workerDirectory = workerDirectory
        sandboxesDirectory = try SandboxDirectories.prepare(workerDirectory: workerDirectory)
    }

    public func create(_ spec: SandboxSpec) async throws -> any Sandbox {
        let startedAt = ContinuousClock.now
        try SandboxStarter.validate(spec, extraReadOnlyPaths: [])
        try live.reserve(spec.id)
        let directory = sandboxesDirectory + "/" + spec.id
        let scratch = directory + "/scratch"
        let live = self.live
        do {
            try SandboxDirectories.make(scratch, mode: 0o700)
        } catch {
            live.release(spec.id)
            throw error
        }
        SandboxDirectories.makeLogParent(spec.logPath)

        let code = spec.codeDirectory
        func hostPath(_ argument: String) -> String {
            if let code, argument == "/handler" || argument.hasPrefix("/handler/") {
                return code + argument.dropFirst("/handler".count)
            }
            if argument == "/scratch" || argument.hasPrefix("/scratch/") {
                return scratch + argument.dropFirst("/scratch".count)
            }
            return argument
        }
        let request = SpawnRequest(
            executable: spec.runtime.executable,
            arguments: [spec.runtime.executable] + spec.runtime.arguments.map(hostPath),
            environment: SandboxStarter.environment(spec.environment),
            logPath: spec.logPath,
            isolated: false,
            workingDirectory: code ?? scratch,
            addressSpaceBytes: spec.limits.memoryMB << 20,
            processes: max(spec.limits.procs, 0),
            batchScheduling: spec.batchScheduling)
        do {
            let sandbox = try await SandboxStarter.start(
                spec: spec, request: request,
                resources: { pid in SandboxResources(pid: pid, killsProcessGroup: true, cgroup: nil, directory: directory) },
                cleanUpBeforeSpawn: { SandboxDirectories.remove(directory) },
                startedAt: startedAt,
                onDestroy: { id in live.release(id) })
            live.add(sandbox)
            return sandbox
        } catch {
            live.release(spec.id)
            throw error
        }
    }

    /// Number of sandboxes created and not yet destroyed.
    public var liveCount: Int { live.count }

    public func shutdown() async {
        await live.destroyAll()
        try? FileManager.default.removeItem(atPath: sandboxesDirectory)
    }
}
