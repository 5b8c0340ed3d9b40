/// A lambda instance: backed by one sandbox, serving one request at a time.
struct LambdaInstance: Sendable {
    let sandbox: any Sandbox
    /// The code version the sandbox was started with; instances of an older version are retired.
    let version: String
    let memoryMB: Int
    /// The event loop of the sandbox's connection (see `Sandbox.eventLoop`).
    let loop: ObjectIdentifier
    var idleSince: ContinuousClock.Instant
    var expiresAt: ContinuousClock.Instant
    var paused = false
    /// A freeze in progress; awaited before the instance is thawed for a request.
    var pauseTask: Task<Void, Never>?

    init(sandbox: any Sandbox, version: String, memoryMB: Int, now: ContinuousClock.Instant) {
        self.sandbox = sandbox
        self.version = version
        self.memoryMB = memoryMB
        self.loop = ObjectIdentifier(sandbox.eventLoop)
        self.idleSince = now
        self.expiresAt = now
    }
}

/// Counters and gauges of one lambda, as `/stats` and `/metrics` report them.
public struct LambdaStats: Sendable, Codable, Equatable {
    public var invocations = 0
    public var coldStarts = 0
    public var errors = 0
    public var running = 0
    public var idle = 0
    public var paused = 0
    public var starting = 0
    public var queued = 0
    public var sandboxesCreated = 0
    public var sandboxesDestroyed = 0
    public var memoryReservedMB = 0
    public var latencyP50Ms = 0.0
    public var latencyP99Ms = 0.0

    public init() {}

    public var instances: Int { running + idle + paused + starting }
}
