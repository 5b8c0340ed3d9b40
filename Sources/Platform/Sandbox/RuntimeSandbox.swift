import Foundation
import NIOCore
import Synchronization

/// A runtime process behind a socket, shared by both backends. The isolated backend gives it a cgroup;
/// the process backend kills its process group instead.
final class RuntimeSandbox: Sandbox {
    let id: String
    let pid: Int32
    let initMilliseconds: Double
    let limits: SandboxLimits
    private let resources: SandboxResources
    private let connection: RuntimeConnection
    private let onDestroy: @Sendable (String) -> Void
    private let state = Mutex(State())

    private struct State {
        /// Set once the sandbox can no longer serve requests.
        var deadCause: String?
        var destroyed = false
    }

    init(
        id: String, initMilliseconds: Double, limits: SandboxLimits, resources: SandboxResources,
        connection: RuntimeConnection, onDestroy: @escaping @Sendable (String) -> Void
    ) {
        self.id = id
        self.pid = resources.pid
        self.initMilliseconds = initMilliseconds
        self.limits = limits
        self.resources = resources
        self.connection = connection
        self.onDestroy = onDestroy
    }

    var eventLoop: any EventLoop { connection.eventLoop }

    nonisolated(nonsending) func invoke(_ request: WireRequest, body: ByteBuffer, timeout: Duration) async throws -> WireResponse {
        if let cause = state.withLock({ $0.deadCause }) { throw SandboxError.died(cause: cause) }
        if body.readableBytes > wireMaxBodyBytes {
            throw RuntimeConnectionError.protocolViolation(
                "request body of \(body.readableBytes) bytes exceeds the limit of \(wireMaxBodyBytes) bytes")
        }
        let resources = self.resources
        let seconds = Double(timeout.components.seconds) + Double(timeout.components.attoseconds) / 1e18
        do {
            // The timeout is an event-loop timer inside the connection: no extra task or dispatch timer per request.
            return try await connection.roundTrip(request, body: body, timeout: timeout)
        } catch is RuntimeTimeout {
            await resources.killProcesses()
            markDead("killed after exceeding its timeout of \(SandboxError.format(seconds)) s")
            throw SandboxError.timedOut(seconds: seconds)
        } catch is CancellationError {
            await resources.killProcesses()
            markDead("killed because its request was cancelled")
            throw CancellationError()
        } catch {
            let cause: String
            if case RuntimeConnectionError.closed = error {
                cause = await resources.deathCause(memoryMB: limits.memoryMB)
            } else {
                await resources.killProcesses()
                cause = "\(error)"
            }
            markDead(cause)
            throw SandboxError.died(cause: cause)
        }
    }

    private func markDead(_ cause: String) {
        state.withLock { if $0.deadCause == nil { $0.deadCause = cause } }
    }

    func pause() async throws {
        if let cause = state.withLock({ $0.deadCause }) { throw SandboxError.died(cause: cause) }
        try await resources.cgroup?.freeze()
    }

    func unpause() async throws {
        if let cause = state.withLock({ $0.deadCause }) { throw SandboxError.died(cause: cause) }
        try await resources.cgroup?.thaw()
    }

    func destroy() async {
        let first = state.withLock { state -> Bool in
            if state.destroyed { return false }
            state.destroyed = true
            if state.deadCause == nil { state.deadCause = "the sandbox was destroyed" }
            return true
        }
        guard first else { return }
        await connection.close()
        await resources.tearDown()
        onDestroy(id)
    }
}

/// Host-side things one sandbox owns: its process, cgroup and directory.
final class SandboxResources: Sendable {
    let pid: Int32
    /// Kill the whole process group (process backend: the child called setsid).
    let killsProcessGroup: Bool
    /// The child is the init of its own pid namespace (isolated backend): when it dies the kernel kills
    /// every other process of the namespace and the child only exits once they are all gone.
    let killsPidNamespace: Bool
    let cgroup: CgroupGroup?
    /// `<workerDirectory>/sandboxes/<id>`.
    let directory: String
    private let exit = Mutex<Task<ExitStatus?, Never>?>(nil)
    /// Reaping and signalling by pid happen under this lock, so a signal never reaches a recycled pid.
    private let reap = Mutex<(reaped: Bool, status: ExitStatus?)>((false, nil))

    init(pid: Int32, killsProcessGroup: Bool, killsPidNamespace: Bool = false, cgroup: CgroupGroup?, directory: String) {
        self.pid = pid
        self.killsProcessGroup = killsProcessGroup
        self.killsPidNamespace = killsPidNamespace
        self.cgroup = cgroup
        self.directory = directory
    }

    /// The child's exit status. A thread outside the Swift concurrency pool waits for the exit (leaving a zombie
    /// that keeps the pid reserved), then the child is reaped under the lock `killProcesses` takes.
    func exitStatus() async -> ExitStatus? {
        let task = exit.withLock { current in
            if let current { return current }
            let task = Task { [self] in
                await ExitStatus.waitUntilExited(pid)
                return reap.withLock { state -> ExitStatus? in
                    if !state.reaped {
                        // The zombie leader still holds the group id: take the rest of the group down with it.
                        if killsProcessGroup { kill(-pid, SIGKILL) }
                        state.status = ExitStatus.reapIfExited(pid)
                        state.reaped = true
                    }
                    return state.status
                }
            }
            current = task
            return task
        }
        return await task.value
    }

    func killProcesses() async {
        reap.withLock { state in
            guard !state.reaped else { return }
            if killsProcessGroup { kill(-pid, SIGKILL) }
            kill(pid, SIGKILL)
        }
        guard let cgroup else { return }
        if killsPidNamespace {
            // Frozen tasks only act on SIGKILL once thawed; the pending signal then ends them.
            cgroup.thawWithoutWaiting()
            _ = await exitStatus()
            // Nothing outside the namespace can be in the group; check anyway, cheaply.
            if cgroup.processes().isEmpty { return }
        }
        await cgroup.killAll()
    }

    /// Why the runtime went away: waits (briefly) for it to exit, then reads the cgroup's OOM record.
    func deathCause(memoryMB: Int) async -> String {
        enum Wait: Sendable { case exited(ExitStatus?), stillRunning }
        let first = await withTaskGroup(of: Wait.self) { group in
            group.addTask { .exited(await self.exitStatus()) }
            group.addTask {
                try? await Task.sleep(for: .seconds(2))
                return .stillRunning
            }
            let first = await group.next()!
            if case .stillRunning = first {
                // Closed its socket but kept running: kill it so the reaper returns.
                await killProcesses()
            }
            group.cancelAll()
            return first
        }
        let status: ExitStatus?
        switch first {
        case .exited(let exited): status = exited
        case .stillRunning: status = await exitStatus()
        }
        await killProcesses()
        if let cgroup, cgroup.recordedOutOfMemoryKill(), status?.signal == SIGKILL || status == nil {
            return "out of memory (limit \(memoryMB) MB)"
        }
        return status?.description ?? "the runtime closed its connection"
    }

    /// Kills, reaps and removes everything; safe to call more than once.
    func tearDown() async {
        await killProcesses()
        _ = await exitStatus()
        await cgroup?.remove()
        SandboxDirectories.remove(directory)
    }
}
