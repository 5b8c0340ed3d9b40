// Row types shared by real runs (load generator) and simulated runs (Model/): every report and plot
// reads these, so it works on both. Stored in SQLite by Results/ (tables `runs`, `requests`, `samples`).

/// One run: a workload against one target.
public struct RunRecord: Sendable, Equatable, Codable {
    public var id: Int64?
    public var workload: String
    /// SHA-256 (hex) of the workload file's bytes.
    public var workloadHash: String
    /// JSON of the resolved parameters (seed, duration, arrival model, model parameters ...).
    public var parameters: String
    /// "local", a URL, "model:container" or "model:lambda".
    public var target: String
    public var gitRevision: String
    public var swiftletVersion: String
    public var cpuModel: String
    public var cores: Int
    public var memoryBytes: Int64
    public var kernel: String
    /// Unix time, seconds.
    public var started: Double
    public var ended: Double?
    /// "running", "complete", "aborted" or "failed".
    public var status: String
    /// Free text shown by reports, e.g. "spin mode sleep: fewer cores than clients".
    public var notes: String

    public init(
        id: Int64? = nil, workload: String, workloadHash: String, parameters: String, target: String,
        gitRevision: String, swiftletVersion: String, cpuModel: String, cores: Int, memoryBytes: Int64,
        kernel: String, started: Double, ended: Double? = nil, status: String = "running", notes: String = ""
    ) {
        self.id = id
        self.workload = workload
        self.workloadHash = workloadHash
        self.parameters = parameters
        self.target = target
        self.gitRevision = gitRevision
        self.swiftletVersion = swiftletVersion
        self.cpuModel = cpuModel
        self.cores = cores
        self.memoryBytes = memoryBytes
        self.kernel = kernel
        self.started = started
        self.ended = ended
        self.status = status
        self.notes = notes
    }
}

/// One request. Times are nanoseconds since the run's start (t = 0 at the first intended send).
public struct RequestRow: Sendable, Equatable, Codable {
    public var runID: Int64
    public var seq: Int64
    public var lambda: String
    /// When the request should have been sent (open loop: the schedule; closed loop: when the client was ready).
    public var intendedNs: Int64
    public var sentNs: Int64
    public var endNs: Int64
    /// end − intended, in ms: coordinated-omission-correct.
    public var latencyMs: Double
    /// HTTP status; 0 when no response arrived (connection error, timeout).
    public var status: Int
    /// Response body bytes.
    public var bytes: Int
    /// Empty when none.
    public var error: String
    /// From the worker's X-Swiftlet-Start header; nil when the target does not say.
    public var cold: Bool?
    public var initMs: Double?
    public var runMs: Double?
    public var billedMs: Double?
    public var sandboxID: String?
    public var worker: String?
    /// True for requests sent during the warm-up (kept, excluded from summaries).
    public var warmup: Bool

    public init(
        runID: Int64, seq: Int64, lambda: String, intendedNs: Int64, sentNs: Int64, endNs: Int64,
        latencyMs: Double, status: Int, bytes: Int, error: String = "", cold: Bool? = nil, initMs: Double? = nil,
        runMs: Double? = nil, billedMs: Double? = nil, sandboxID: String? = nil, worker: String? = nil,
        warmup: Bool = false
    ) {
        self.runID = runID
        self.seq = seq
        self.lambda = lambda
        self.intendedNs = intendedNs
        self.sentNs = sentNs
        self.endNs = endNs
        self.latencyMs = latencyMs
        self.status = status
        self.bytes = bytes
        self.error = error
        self.cold = cold
        self.initMs = initMs
        self.runMs = runMs
        self.billedMs = billedMs
        self.sandboxID = sandboxID
        self.worker = worker
        self.warmup = warmup
    }
}

/// Elasticity sample of one lambda (or "*" for a whole container platform) at time `tNs` since the run's start.
public struct SampleRow: Sendable, Equatable, Codable {
    public var runID: Int64
    public var tNs: Int64
    public var lambda: String
    /// Instances handling a request now.
    public var running: Int
    /// Instances alive and idle (not frozen).
    public var idle: Int
    /// Instances frozen (cgroup freezer).
    public var paused: Int
    /// Instances booting (cold start or container boot in progress).
    public var starting: Int
    public var queued: Int
    /// Cumulative counts since the run (or worker) started.
    public var created: Int
    public var destroyed: Int
    public var memoryReservedMB: Int

    public init(
        runID: Int64, tNs: Int64, lambda: String, running: Int, idle: Int, paused: Int, starting: Int, queued: Int,
        created: Int, destroyed: Int, memoryReservedMB: Int
    ) {
        self.runID = runID
        self.tNs = tNs
        self.lambda = lambda
        self.running = running
        self.idle = idle
        self.paused = paused
        self.starting = starting
        self.queued = queued
        self.created = created
        self.destroyed = destroyed
        self.memoryReservedMB = memoryReservedMB
    }

    /// Instances alive in any state (what "instances over time" plots).
    public var instances: Int { running + idle + paused + starting }
}
