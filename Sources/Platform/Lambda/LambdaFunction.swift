import Histogram
import NIOCore

/// One lambda's queue and instances. Requests wait in FIFO order for an idle instance; new sandboxes are
/// started while requests wait (see `ScalingDecision`), bounded by the per-lambda maximum and the memory pool.
actor LambdaFunction {
    struct Waiter {
        let continuation: CheckedContinuation<(LambdaInstance, Bool), any Error>
    }

    let name: String
    private let environment: LambdaManager
    private var version = ""
    private var source: LambdaSource?
    private var limits = SandboxLimits()
    private var idle: [LambdaInstance] = []
    private var waiters = CircularBuffer<Waiter>()
    private var busy = 0
    private var starting = 0
    private var reservedMB = 0
    private var shuttingDown = false
    private var stats = LambdaStats()
    private var latency = Histogram<UInt64>(highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: .two)
    private var destroying = 0

    init(name: String, environment: LambdaManager) {
        self.name = name
        self.environment = environment
    }

    /// Returns an instance for one request (and whether it was started for it). Throws `InvocationError`.
    /// An idle instance whose connection is served by `loop` (the caller's event loop) is preferred.
    func acquire(source: LambdaSource, limits: SandboxLimits, loop: ObjectIdentifier?) async throws -> (LambdaInstance, Bool) {
        guard !shuttingDown else { throw InvocationError.shuttingDown }
        if source.version != version || self.source == nil {
            retireAll(except: source.version)
            version = source.version
            self.source = source
            self.limits = limits
        }
        stats.invocations += 1
        if source.config.reuseSandbox, !idle.isEmpty {
            busy += 1
            // Most recently used first: the rest age towards their keep-alive.
            if let loop, let index = idle.lastIndex(where: { $0.loop == loop }) {
                return (idle.remove(at: index), false)
            }
            return (idle.removeLast(), false)
        }
        guard waiters.count < environment.maxQueue else {
            stats.invocations -= 1
            throw InvocationError.queueFull(limit: environment.maxQueue)
        }
        return try await withCheckedThrowingContinuation { continuation in
            waiters.append(Waiter(continuation: continuation))
            scale()
        }
    }

    /// Gives the instance back after a request; `healthy: false` destroys it (timeout, crash).
    func release(_ instance: LambdaInstance, healthy: Bool, latencyMs: Double, failed: Bool) {
        busy -= 1
        latency.record(UInt64(max(0, latencyMs * 1000)))
        if failed { stats.errors += 1 }
        let reuse = source?.config.reuseSandbox ?? true
        if !healthy || instance.version != version || !reuse || shuttingDown {
            destroy(instance)
            scale()
            return
        }
        hand(instance, cold: false)
    }

    /// Counts a request that failed before reaching an instance (e.g. start failure already counted elsewhere).
    func recordFailure(latencyMs: Double) {
        latency.record(UInt64(max(0, latencyMs * 1000)))
        stats.errors += 1
    }

    /// Periodic housekeeping: freeze instances idle longer than `pauseAfter`, destroy those past their keep-alive.
    func tick(now: ContinuousClock.Instant) {
        var kept: [LambdaInstance] = []
        for var instance in idle {
            if now >= instance.expiresAt {
                destroy(instance)
                continue
            }
            if let pauseAfter = environment.pauseAfter, !instance.paused, now - instance.idleSince >= pauseAfter {
                instance.paused = true
                let sandbox = instance.sandbox
                instance.pauseTask = Task { try? await sandbox.pause() }
            }
            kept.append(instance)
        }
        idle = kept
        if !waiters.isEmpty { scale() }
    }

    /// The code changed or was removed: destroy idle instances now, busy ones when they finish.
    func retire() {
        for instance in idle { destroy(instance) }
        idle.removeAll()
        version = ""
        source = nil
    }

    /// Called when memory was freed elsewhere: waiting requests may now get a sandbox.
    func memoryFreed() {
        if !waiters.isEmpty { scale() }
    }

    /// Destroys one idle instance (oldest first) to free memory for another lambda; returns the MB freed.
    func evictIdle() -> Int {
        guard !idle.isEmpty else { return 0 }
        let instance = idle.removeFirst()
        destroy(instance)
        return instance.memoryMB
    }

    var idleCount: Int { idle.count }
    var hasWaiters: Bool { !waiters.isEmpty }

    func snapshot() -> LambdaStats {
        var s = stats
        s.running = busy
        s.idle = idle.filter { !$0.paused }.count
        s.paused = idle.filter(\.paused).count
        s.starting = starting
        s.queued = waiters.count
        s.memoryReservedMB = reservedMB
        if latency.totalCount > 0 {
            s.latencyP50Ms = Double(latency.valueAtPercentile(50)) / 1000
            s.latencyP99Ms = Double(latency.valueAtPercentile(99)) / 1000
        }
        return s
    }

    /// Fails waiting requests, destroys every instance and waits until all sandboxes are gone.
    func shutdown() async {
        shuttingDown = true
        while let waiter = waiters.popFirst() {
            waiter.continuation.resume(throwing: InvocationError.shuttingDown)
        }
        for instance in idle { destroy(instance) }
        idle.removeAll()
        // Starting sandboxes are destroyed as they arrive; busy ones when released.
        var rounds = 0
        while (starting > 0 || busy > 0 || destroying > 0) && rounds < 6000 {
            try? await Task.sleep(for: .milliseconds(5))
            rounds += 1
        }
    }

    // MARK: - Internals

    private func hand(_ instance: LambdaInstance, cold: Bool) {
        if let waiter = waiters.popFirst() {
            busy += 1
            waiter.continuation.resume(returning: (instance, cold))
            return
        }
        if source?.config.reuseSandbox == false {
            destroy(instance)
            return
        }
        var instance = instance
        let now = ContinuousClock.now
        instance.idleSince = now
        let seconds = environment.keepAliveSeconds(name)
        instance.expiresAt = now + .nanoseconds(Int64(seconds * 1e9))
        idle.append(instance)
    }

    private func retireAll(except newVersion: String) {
        for instance in idle where instance.version != newVersion { destroy(instance) }
        idle.removeAll { $0.version != newVersion }
    }

    private func scale() {
        guard let source, !shuttingDown else { return }
        let reuse = source.config.reuseSandbox
        let available = environment.pool.capacityMB - environment.pool.reservedMB
        var count = ScalingDecision.sandboxesToStart(
            queued: waiters.count, starting: starting, busy: busy, idle: reuse ? idle.count : 0,
            maxInstances: environment.maxInstances, memoryAvailableMB: available, sandboxMemoryMB: limits.memoryMB)
        if count == 0 && starting == 0 && waiters.count > 0 && busy == 0 && available < limits.memoryMB {
            // Nothing of ours will free memory: ask other lambdas to give up idle sandboxes.
            environment.requestMemory(limits.memoryMB, for: name)
        }
        while count > 0 {
            guard environment.pool.tryReserve(limits.memoryMB) else { break }
            reservedMB += limits.memoryMB
            startSandbox(source: source, limits: limits)
            count -= 1
        }
    }

    private func startSandbox(source: LambdaSource, limits: SandboxLimits) {
        starting += 1
        stats.sandboxesCreated += 1
        let environment = self.environment
        let version = source.version
        Task {
            do {
                let sandbox = try await environment.createSandbox(source: source, limits: limits)
                self.started(sandbox, version: version, memoryMB: limits.memoryMB)
            } catch {
                self.startFailed(error, memoryMB: limits.memoryMB)
            }
        }
    }

    private func started(_ sandbox: any Sandbox, version: String, memoryMB: Int) {
        starting -= 1
        let instance = LambdaInstance(sandbox: sandbox, version: version, memoryMB: memoryMB, now: .now)
        if shuttingDown || version != self.version {
            destroy(instance)
            scale()
            return
        }
        if !waiters.isEmpty { stats.coldStarts += 1 }
        hand(instance, cold: true)
    }

    private func startFailed(_ error: any Error, memoryMB: Int) {
        starting -= 1
        stats.sandboxesDestroyed += 1
        reservedMB -= memoryMB
        environment.pool.release(memoryMB)
        environment.memoryFreed(by: name)
        let reason: String
        if case SandboxError.startFailed(let why) = error { reason = why } else { reason = "\(error)" }
        environment.logger.error("lambda \(name): sandbox failed to start: \(reason)")
        if let waiter = waiters.popFirst() {
            waiter.continuation.resume(throwing: InvocationError.startFailed(reason))
        }
    }

    private func destroy(_ instance: LambdaInstance) {
        let environment = self.environment
        let name = self.name
        reservedMB -= instance.memoryMB
        stats.sandboxesDestroyed += 1
        destroying += 1
        Task {
            await instance.pauseTask?.value
            await instance.sandbox.destroy()
            environment.pool.release(instance.memoryMB)
            await self.destroyFinished()
            environment.memoryFreed(by: name)
        }
    }

    private func destroyFinished() {
        destroying -= 1
    }
}
