import CSandbox
import Foundation
import Synchronization

/// What `csandbox_spawn` needs, in Swift types.
struct SpawnRequest: Sendable {
    var executable: String
    /// argv, including argv[0].
    var arguments: [String]
    /// "KEY=value" entries: the child's whole environment.
    var environment: [String]
    var cgroupProcs: [String] = []
    var logPath: String
    var isolated: Bool
    var network: Bool = false
    var rootDirectory: String?
    var codeDirectory: String?
    var scratchDirectory: String?
    var readOnlyPaths: [String] = []
    var workingDirectory: String?
    var tmpBytes: Int = 16 << 20
    var openFiles: Int = 1024
    /// RLIMIT_AS (0: none).
    var addressSpaceBytes: Int = 0
    /// RLIMIT_NPROC (0: none).
    var processes: Int = 0
    /// SCHED_BATCH instead of the normal policy (see `SandboxSpec.batchScheduling`).
    var batchScheduling: Bool = false
    var uid: Int32 = -1
    var gid: Int32 = -1
}

struct SpawnedChild: Sendable {
    let pid: Int32
    /// The worker's end of the runtime socket.
    let socket: Int32
}

struct SpawnFailure: Error, Sendable, CustomStringConvertible {
    let message: String
    var description: String { message }
}

enum ChildSpawner {
    /// Spawns on the dedicated spawn thread: the child's parent-death signal is tied to the thread that
    /// created it, so that thread must live as long as the worker.
    static func spawn(_ request: SpawnRequest) async -> Result<SpawnedChild, SpawnFailure> {
        await SpawnThread.shared.run { spawnBlocking(request) }
    }

    static func spawnBlocking(_ request: SpawnRequest) -> Result<SpawnedChild, SpawnFailure> {
        let arena = CStringArena()
        var spec = csandbox_spec()
        spec.executable = arena.string(request.executable)
        spec.argv = arena.array(request.arguments)
        spec.envp = arena.array(request.environment)
        spec.cgroup_procs = arena.array(request.cgroupProcs)
        spec.log_path = arena.string(request.logPath)
        spec.isolated = request.isolated ? 1 : 0
        spec.network = request.network ? 1 : 0
        spec.root_dir = arena.optional(request.rootDirectory)
        spec.code_dir = arena.optional(request.codeDirectory)
        spec.scratch_dir = arena.optional(request.scratchDirectory)
        spec.ro_paths = arena.array(request.readOnlyPaths)
        spec.workdir = arena.optional(request.workingDirectory)
        spec.tmp_bytes = Int64(request.tmpBytes)
        spec.nofile = Int64(request.openFiles)
        spec.address_space_bytes = Int64(request.addressSpaceBytes)
        spec.nproc = Int64(request.processes)
        spec.batch_scheduling = request.batchScheduling ? 1 : 0
        spec.uid = request.uid
        spec.gid = request.gid
        var socket: Int32 = -1
        var pid: pid_t = 0
        var message = [CChar](repeating: 0, count: 1024)
        let rc = withExtendedLifetime(arena) {
            message.withUnsafeMutableBufferPointer { csandbox_spawn(&spec, &socket, &pid, $0.baseAddress, $0.count) }
        }
        if rc != 0 {
            let text = message.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            return .failure(SpawnFailure(message: text))
        }
        return .success(SpawnedChild(pid: pid, socket: socket))
    }
}

/// C strings that live until the arena is released.
private final class CStringArena {
    private var strings: [UnsafeMutablePointer<CChar>] = []
    private var arrays: [UnsafeMutablePointer<UnsafePointer<CChar>?>] = []

    func string(_ value: String) -> UnsafePointer<CChar> {
        let copy = strdup(value)!
        strings.append(copy)
        return UnsafePointer(copy)
    }

    func optional(_ value: String?) -> UnsafePointer<CChar>? {
        value.map { string($0) }
    }

    /// A NULL-terminated array.
    func array(_ values: [String]) -> UnsafePointer<UnsafePointer<CChar>?> {
        let list = UnsafeMutablePointer<UnsafePointer<CChar>?>.allocate(capacity: values.count + 1)
        for (index, value) in values.enumerated() { list[index] = string(value) }
        list[values.count] = nil
        arrays.append(list)
        return UnsafePointer(list)
    }

    deinit {
        for pointer in strings { free(pointer) }
        for list in arrays { list.deallocate() }
    }
}

/// One long-lived thread that runs spawn jobs in order.
final class SpawnThread: Sendable {
    static let shared = SpawnThread()

    private let jobs = Mutex<[@Sendable () -> Void]>([])
    private let wakeUp = DispatchSemaphore(value: 0)

    private init() {
        let thread = Thread { [self] in serve() }
        thread.name = "sandbox-spawn"
        thread.start()
    }

    private func serve() -> Never {
        while true {
            wakeUp.wait()
            let job = jobs.withLock { $0.isEmpty ? nil : $0.removeFirst() }
            job?()
        }
    }

    func run<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { (continuation: CheckedContinuation<T, Never>) in
            jobs.withLock { $0.append { continuation.resume(returning: body()) } }
            wakeUp.signal()
        }
    }
}

/// How a child ended, from its wait status.
struct ExitStatus: Sendable, Equatable, CustomStringConvertible {
    let raw: Int32

    var signal: Int32? { csandbox_wifsignaled(raw) != 0 ? csandbox_wtermsig(raw) : nil }
    var exitCode: Int32? { csandbox_wifexited(raw) != 0 ? csandbox_wexitstatus(raw) : nil }

    var description: String {
        if let signal { return "killed by signal \(signal)" }
        if let exitCode { return "exited with status \(exitCode)" }
        return "ended with wait status \(raw)"
    }

    /// Blocks a fresh thread (never a Swift concurrency thread) until `pid` has exited, without reaping it.
    static func waitUntilExited(_ pid: Int32) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let thread = Thread {
                _ = csandbox_wait_exited(pid)
                continuation.resume()
            }
            thread.name = "sandbox-reap"
            thread.start()
        }
    }

    /// Reaps `pid` if it has exited; nil when it is still running or was already reaped.
    static func reapIfExited(_ pid: Int32) -> ExitStatus? {
        var status: Int32 = 0
        return csandbox_try_wait(pid, &status) == pid ? ExitStatus(raw: status) : nil
    }
}
