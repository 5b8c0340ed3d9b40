import NIOCore

/// Which isolation a sandbox backend provides. Reported by `/status` and in logs.
public enum SandboxKind: String, Codable, Sendable {
    /// Namespaces (pid, mnt, uts, ipc, net), cgroup limits, read-only root via pivot_root.
    case isolated
    /// A plain child process with rlimits: reduced isolation, for machines without privileges.
    case process
}

/// Resource limits of one sandbox. Worker defaults come from `config.json`, per-lambda overrides from `ol.yaml`.
public struct SandboxLimits: Codable, Sendable, Equatable {
    public var memoryMB: Int
    public var timeoutSeconds: Double
    public var procs: Int
    public var cpuPercent: Int

    public init(memoryMB: Int = 128, timeoutSeconds: Double = 30, procs: Int = 32, cpuPercent: Int = 100) {
        self.memoryMB = memoryMB
        self.timeoutSeconds = timeoutSeconds
        self.procs = procs
        self.cpuPercent = cpuPercent
    }

    enum CodingKeys: String, CodingKey {
        case memoryMB = "memory_mb", timeoutSeconds = "timeout_s", procs, cpuPercent = "cpu_percent"
    }
}

/// The program a sandbox runs: the runtime (Python server or the Swift app host).
public struct RuntimeCommand: Sendable, Equatable {
    /// Absolute path of the executable as seen inside the sandbox (host paths are bound at the same path).
    public var executable: String
    public var arguments: [String]
    /// Host files or directories that must be visible read-only inside the sandbox at the same path
    /// (the interpreter's prefix, the runtime script, the swiftlet binary and its shared libraries).
    public var readOnlyPaths: [String]

    public init(executable: String, arguments: [String], readOnlyPaths: [String] = []) {
        self.executable = executable
        self.arguments = arguments
        self.readOnlyPaths = readOnlyPaths
    }
}

/// Everything a backend needs to create one sandbox.
public struct SandboxSpec: Sendable {
    /// Unique id, also the name of the sandbox's cgroup and scratch directory.
    public var id: String
    public var lambda: String
    /// Host directory with the lambda's code, bound read-only at `/handler`; nil for built-in Swift apps.
    public var codeDirectory: String?
    public var runtime: RuntimeCommand
    /// The sandbox's whole environment (nothing is inherited from the worker).
    public var environment: [String: String]
    public var limits: SandboxLimits
    /// Give the sandbox the host's network; by default it gets an empty network namespace.
    public var network: Bool
    /// Host file that receives the sandbox's stdout and stderr (appended).
    public var logPath: String
    /// Run the sandbox's processes under SCHED_BATCH: a sandbox woken by a request then waits for the worker's event
    /// loop to yield the CPU instead of preempting it (no cross-CPU reschedule interrupt per request).
    public var batchScheduling: Bool = false

    public init(
        id: String, lambda: String, codeDirectory: String?, runtime: RuntimeCommand,
        environment: [String: String], limits: SandboxLimits, network: Bool, logPath: String
    ) {
        self.id = id
        self.lambda = lambda
        self.codeDirectory = codeDirectory
        self.runtime = runtime
        self.environment = environment
        self.limits = limits
        self.network = network
        self.logPath = logPath
    }
}

/// Creates sandboxes of one kind. One instance per worker.
public protocol SandboxBackend: Sendable {
    var kind: SandboxKind { get }
    /// One line for `/status` and the startup log, naming what is and is not in force.
    var summary: String { get }
    /// Starts the runtime inside a new sandbox and returns once it reported ready.
    func create(_ spec: SandboxSpec) async throws -> any Sandbox
    /// Removes everything the backend made (parent cgroups, sandbox root directories). Sandboxes are destroyed first.
    func shutdown() async
}

/// One running sandbox: a runtime process behind a Unix socket, serving one request at a time.
public protocol Sandbox: AnyObject, Sendable {
    var id: String { get }
    /// Host pid of the sandbox's first process.
    var pid: Int32 { get }
    /// Milliseconds from the start of `create` until the runtime reported ready.
    var initMilliseconds: Double { get }
    var limits: SandboxLimits { get }
    /// The event loop that serves the sandbox's connection. The lambda layer prefers a sandbox on the caller's
    /// own loop, so a request never hops between threads on its way to the runtime and back.
    var eventLoop: any EventLoop { get }
    /// Sends one request to the runtime. Throws `SandboxError.timedOut` (the sandbox is then killed)
    /// or `SandboxError.died` (with the cause, e.g. out of memory).
    nonisolated(nonsending) func invoke(_ request: WireRequest, body: ByteBuffer, timeout: Duration) async throws -> WireResponse
    /// Freezes every process of the sandbox (cgroup freezer); a no-op where no freezer is available.
    func pause() async throws
    func unpause() async throws
    /// Kills the sandbox, reaps its processes, removes its cgroups, mounts and directories. Idempotent.
    func destroy() async
}

public enum SandboxError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The runtime could not start (bad interpreter, syntax error at import is *not* this: it is reported per request).
    case startFailed(String)
    /// The handler ran longer than its limit; the sandbox was killed.
    case timedOut(seconds: Double)
    /// The sandbox died while handling a request; `cause` is human readable, e.g. "out of memory (limit 50 MB)".
    case died(cause: String)

    public var description: String {
        switch self {
        case .startFailed(let why): return "sandbox failed to start: \(why)"
        case .timedOut(let seconds): return "handler exceeded its timeout of \(SandboxError.format(seconds)) s"
        case .died(let cause): return "sandbox died: \(cause)"
        }
    }

    static func format(_ value: Double) -> String {
        value == value.rounded() ? String(Int(value)) : String(value)
    }
}
