import Histogram
import NIOCore
import Synchronization

/// One lambda's queue and instances. Requests wait in FIFO order for an idle instance; new sandboxes are
/// started while requests wait (see `ScalingDecision`), bounded by the per-lambda maximum and the memory pool.
///
/// State lives behind one lock rather than in an actor: a warm request takes and returns an instance with two short
/// critical sections instead of two executor hops. Nothing inside the lock suspends or calls back into this function
/// synchronously (sandbox starts, destroys and memory requests run in tasks of their own).
final class LambdaFunction: Sendable {
    struct Waiter {
        let continuation: UnsafeContinuation<(LambdaInstance, Bool), any Error>
    }

    let name: String
    private let environment: LambdaManager
    private let state: Mutex<State>

    private struct State {
        var version = ""
        var source: LambdaSource?
        var limits = SandboxLimits()
        var idle: [LambdaInstance] = []
        var waiters = CircularBuffer<Waiter>()
        var busy = 0
        var starting = 0
        var reservedMB = 0
        var shuttingDown = false
        var stats = LambdaStats()
        var latency = Histogram<UInt64>(highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: .two)
        var destroying = 0
    }

    init(name: String, environment: LambdaManager) {
        self.name = name
        self.environment = environment
        self.state = Mutex(State())
    }

    /// Returns an instance for one request (and whether it was started for it). Throws `InvocationError`.
    /// An idle instance whose connection is served by `loop` (the caller's event loop) is preferred.
    nonisolated(nonsending) func acquire(
        source: LambdaSource, limits: SandboxLimits, loop: ObjectIdentifier?
    ) async throws -> (LambdaInstance, Bool) {
        let warm = try state.withLock { state -> LambdaInstance? in
            guard !state.shuttingDown else { throw InvocationError.shuttingDown }
            if source.version != state.version || state.source == nil {
                retireAll(except: source.version, &state)
                state.version = source.version
                state.source = source
                state.limits = limits
            }
            state.stats.invocations += 1
            return takeIdle(reuse: source.config.reuseSandbox, loop: loop, &state)
        }
        if let warm { return (warm, false) }
        return try await withUnsafeThrowingContinuation { continuation in
            state.withLock { state in
                // An instance may have come back since the first look.
                if let instance = takeIdle(reuse: source.config.reuseSandbox, loop: loop, &state) {
                    continuation.resume(returning: (instance, false))
                } else if state.shuttingDown {
                    state.stats.invocations -= 1
                    continuation.resume(throwing: InvocationError.shuttingDown)
                } else if state.waiters.count >= environment.maxQueue {
                    state.stats.invocations -= 1
                    continuation.resume(throwing: InvocationError.queueFull(limit: environment.maxQueue))
                } else {
                    state.waiters.append(Waiter(continuation: continuation))
                    scale(&state)
                }
            }
        }
    }

    /// Gives the instance back after a request; `healthy: false` destroys it (timeout, crash).
    func release(_ instance: LambdaInstance, healthy: Bool, latencyMs: Double, failed: Bool) {
        state.withLock { state in
            state.busy -= 1
            state.latency.record(UInt64(max(0, latencyMs * 1000)))
            if failed { state.stats.errors += 1 }
            let reuse = state.source?.config.reuseSandbox ?? true
            if !healthy || instance.version != state.version || !reuse || state.shuttingDown {
                destroy(instance, &state)
                scale(&state)
                return
            }
            hand(instance, cold: false, &state)
        }
    }

    /// Counts a request that failed before reaching an instance (e.g. start failure already counted elsewhere).
    func recordFailure(latencyMs: Double) {
        state.withLock { state in
            state.latency.record(UInt64(max(0, latencyMs * 1000)))
            state.stats.errors += 1
        }
    }

    /// Periodic housekeeping: freeze instances idle longer than `pauseAfter`, destroy those past their keep-alive.
    func tick(now: ContinuousClock.Instant) {
        state.withLock { state in
            var kept: [LambdaInstance] = []
            for var instance in state.idle {
                if now >= instance.expiresAt {
                    destroy(instance, &state)
                    continue
                }
                if let pauseAfter = environment.pauseAfter, !instance.paused, now - instance.idleSince >= pauseAfter {
                    instance.paused = true
                    let sandbox = instance.sandbox
                    instance.pauseTask = Task { try? await sandbox.pause() }
                }
                kept.append(instance)
            }
            state.idle = kept
            if !state.waiters.isEmpty { scale(&state) }
        }
    }

    /// The code changed or was removed: destroy idle instances now, busy ones when they finish.
    func retire() {
        state.withLock { state in
            for instance in state.idle { destroy(instance, &state) }
            state.idle.removeAll()
            state.version = ""
            state.source = nil
        }
    }

    /// Called when memory was freed elsewhere: waiting requests may now get a sandbox.
    func memoryFreed() {
        state.withLock { state in
            if !state.waiters.isEmpty { scale(&state) }
        }
    }

    /// Destroys one idle instance (oldest first) to free memory for another lambda; returns the MB freed.
    func evictIdle() -> Int {
        state.withLock { state in
            guard !state.idle.isEmpty else { return 0 }
            let instance = state.idle.removeFirst()
            destroy(instance, &state)
            return instance.memoryMB
        }
    }

    func snapshot() -> LambdaStats {
        state.withLock { state in
            var s = state.stats
            s.running = state.busy
            s.idle = state.idle.filter { !$0.paused }.count
            s.paused = state.idle.filter(\.paused).count
            s.starting = state.starting
            s.queued = state.waiters.count
            s.memoryReservedMB = state.reservedMB
            if state.latency.totalCount > 0 {
                s.latencyP50Ms = Double(state.latency.valueAtPercentile(50)) / 1000
                s.latencyP99Ms = Double(state.latency.valueAtPercentile(99)) / 1000
            }
            return s
        }
    }

    /// Fails waiting requests, destroys every instance and waits until all sandboxes are gone.
    func shutdown() async {
        state.withLock { state in
            state.shuttingDown = true
            while let waiter = state.waiters.popFirst() {
                waiter.continuation.resume(throwing: InvocationError.shuttingDown)
            }
            for instance in state.idle { destroy(instance, &state) }
            state.idle.removeAll()
        }
        // Starting sandboxes are destroyed as they arrive; busy ones when released.
        var rounds = 0
        while state.withLock({ $0.starting > 0 || $0.busy > 0 || $0.destroying > 0 }) && rounds < 6000 {
            try? await Task.sleep(for: .milliseconds(5))
            rounds += 1
        }
    }

    // MARK: - Internals (called with the lock held)

    /// An idle instance for a new request (counted busy), on the caller's loop when possible; most recently used
    /// first, so the rest age towards their keep-alive.
    private func takeIdle(reuse: Bool, loop: ObjectIdentifier?, _ state: inout State) -> LambdaInstance? {
        guard reuse, !state.idle.isEmpty else { return nil }
        state.busy += 1
        if let loop, let index = state.idle.lastIndex(where: { $0.loop == loop }) {
            return state.idle.remove(at: index)
        }
        return state.idle.removeLast()
    }

    private func hand(_ instance: LambdaInstance, cold: Bool, _ state: inout State) {
        if let waiter = state.waiters.popFirst() {
            state.busy += 1
            waiter.continuation.resume(returning: (instance, cold))
            return
        }
        if state.source?.config.reuseSandbox == false {
            destroy(instance, &state)
            return
        }
        var instance = instance
        let now = ContinuousClock.now
        instance.idleSince = now
        let seconds = environment.keepAliveSeconds(name)
        instance.expiresAt = now + .nanoseconds(Int64(seconds * 1e9))
        state.idle.append(instance)
    }

    private func retireAll(except newVersion: String, _ state: inout State) {
        for instance in state.idle where instance.version != newVersion { destroy(instance, &state) }
        state.idle.removeAll { $0.version != newVersion }
    }

    private func scale(_ state: inout State) {
        guard let source = state.source, !state.shuttingDown else { return }
        let reuse = source.config.reuseSandbox
        let limits = state.limits
        let available = environment.pool.capacityMB - environment.pool.reservedMB
        var count = ScalingDecision.sandboxesToStart(
            queued: state.waiters.count, starting: state.starting, busy: state.busy, idle: reuse ? state.idle.count : 0,
            maxInstances: environment.maxInstances, memoryAvailableMB: available, sandboxMemoryMB: limits.memoryMB)
        if count == 0 && state.starting == 0 && state.waiters.count > 0 && state.busy == 0 && available < limits.memoryMB {
            // Nothing of ours will free memory: ask other lambdas to give up idle sandboxes.
            environment.requestMemory(limits.memoryMB, for: name)
        }
        while count > 0 {
            guard environment.pool.tryReserve(limits.memoryMB) else { break }
            state.reservedMB += limits.memoryMB
            startSandbox(source: source, limits: limits, &state)
            count -= 1
        }
    }

    private func startSandbox(source: LambdaSource, limits: SandboxLimits, _ state: inout State) {
        state.starting += 1
        state.stats.sandboxesCreated += 1
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
        state.withLock { state in
            state.starting -= 1
            let instance = LambdaInstance(sandbox: sandbox, version: version, memoryMB: memoryMB, now: .now)
            if state.shuttingDown || version != state.version {
                destroy(instance, &state)
                scale(&state)
                return
            }
            if !state.waiters.isEmpty { state.stats.coldStarts += 1 }
            hand(instance, cold: true, &state)
        }
    }

    private func startFailed(_ error: any Error, memoryMB: Int) {
        let reason: String
        if case SandboxError.startFailed(let why) = error { reason = why } else { reason = "\(error)" }
        environment.logger.error("lambda \(name): sandbox failed to start: \(reason)")
        state.withLock { state in
            state.starting -= 1
            state.stats.sandboxesDestroyed += 1
            state.reservedMB -= memoryMB
            environment.pool.release(memoryMB)
            if let waiter = state.waiters.popFirst() {
                waiter.continuation.resume(throwing: InvocationError.startFailed(reason))
            }
        }
        environment.memoryFreed(by: name)
    }

    private func destroy(_ instance: LambdaInstance, _ state: inout State) {
        let environment = self.environment
        let name = self.name
        state.reservedMB -= instance.memoryMB
        state.stats.sandboxesDestroyed += 1
        state.destroying += 1
        Task {
            await instance.pauseTask?.value
            await instance.sandbox.destroy()
            environment.pool.release(instance.memoryMB)
            self.state.withLock { $0.destroying -= 1 }
            environment.memoryFreed(by: name)
        }
    }
}
