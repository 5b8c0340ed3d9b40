import Foundation
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// The lambda layer: resolves names through the registry, keeps one `LambdaFunction` per lambda,
/// creates sandboxes through the backend and enforces the memory pool.
public final class LambdaManager: Sendable {
    public let registry: Registry
    public let backend: any SandboxBackend
    public let pool: MemoryPool
    let logger: Logger
    let maxQueue: Int
    let maxInstances: Int
    let pauseAfter: Duration?
    let defaults: SandboxLimits
    let billingGranularityMs: Int
    private let workerDirectory: String
    private let baseEnvironment: [String: String]
    private let network: Bool
    private let batchScheduling: Bool
    private let python: Result<RuntimeCommand, SandboxError>
    private let swiftBinary: String
    private let functions = Mutex<[String: LambdaFunction]>([:])
    private let keepAlive: Mutex<any KeepAlivePolicy>
    private let counter = Atomic<Int>(0)
    private let started = ContinuousClock.now

    public init(config: WorkerConfig, workerDirectory: String, registry: Registry, backend: any SandboxBackend,
                keepAlive: any KeepAlivePolicy, logger: Logger) {
        self.registry = registry
        self.backend = backend
        self.logger = logger
        self.pool = MemoryPool(capacityMB: config.resolvedMemoryPoolMb())
        self.maxQueue = config.maxQueuePerLambda
        self.maxInstances = config.maxInstancesPerLambda
        self.pauseAfter = config.pauseAfterMs >= 0 ? .milliseconds(config.pauseAfterMs) : nil
        self.defaults = config.limits
        self.billingGranularityMs = config.billingGranularityMs
        self.workerDirectory = workerDirectory
        self.baseEnvironment = config.environment
        self.network = config.sandboxNetwork
        self.batchScheduling = config.sandboxScheduling == "batch"
        self.keepAlive = Mutex(keepAlive)
        self.swiftBinary = config.swiftRuntime.isEmpty ? SwiftRuntime.defaultBinary() : config.swiftRuntime
        do {
            let interpreter = try PythonRuntime.resolveInterpreter(config.python)
            let command = try PythonRuntime.command(
                interpreter: interpreter, runtimeDirectory: (workerDirectory as NSString).appendingPathComponent("runtime"))
            self.python = .success(command)
        } catch {
            self.python = .failure(.startFailed("Python runtime unavailable: \(error)"))
        }
        try? FileManager.default.createDirectory(
            atPath: (workerDirectory as NSString).appendingPathComponent("logs"), withIntermediateDirectories: true)
    }

    /// Runs one invocation end to end. Throws `InvocationError`.
    public nonisolated(nonsending) func invoke(_ invocation: Invocation) async throws -> InvocationResult {
        let name = invocation.lambda
        let found: LambdaSource?
        do {
            found = try registry.lookup(name)  // validates the name first
        } catch {
            if case .invalidName(_, let reason) = error { throw InvocationError.invalidName(name, reason: reason) }
            throw InvocationError.lambdaInvalid(error.description)
        }
        guard let source = found else { throw InvocationError.notFound(name) }
        if let allowed = source.config.httpMethods, !allowed.contains(invocation.method.uppercased()) {
            throw InvocationError.methodNotAllowed(method: invocation.method, allowed: allowed)
        }
        let limits = source.config.limits.applied(to: defaults)
        guard limits.memoryMB <= pool.capacityMB else {
            throw InvocationError.insufficientMemory(neededMB: limits.memoryMB, poolMB: pool.capacityMB)
        }
        let function = self.function(named: name)
        let loop = MultiThreadedEventLoopGroup.currentEventLoop.map { ObjectIdentifier($0) }
        let begin = ContinuousClock.now
        keepAlive.withLock { $0.recordInvocation(of: name, at: self.seconds(begin)) }

        var (instance, cold): (LambdaInstance, Bool)
        do {
            (instance, cold) = try await function.acquire(source: source, limits: limits, loop: loop)
        } catch {
            function.recordFailure(latencyMs: Self.ms(ContinuousClock.now - begin))
            throw error
        }
        if let pending = instance.pauseTask { await pending.value }
        if instance.paused {
            do {
                try await instance.sandbox.unpause()
                instance.paused = false
                instance.pauseTask = nil
            } catch {
                function.release(instance, healthy: false, latencyMs: Self.ms(ContinuousClock.now - begin), failed: true)
                throw InvocationError.sandboxDied("could not thaw the paused sandbox: \(error)")
            }
        }
        let request = WireRequest(
            id: invocation.requestID, method: invocation.method, path: invocation.path, query: invocation.query,
            headers: invocation.headers)
        let runStart = ContinuousClock.now
        let response: WireResponse
        do {
            response = try await instance.sandbox.invoke(
                request, body: invocation.body, timeout: .nanoseconds(Int64(limits.timeoutSeconds * 1e9)))
        } catch let error as SandboxError {
            function.release(instance, healthy: false, latencyMs: Self.ms(ContinuousClock.now - begin), failed: true)
            switch error {
            case .timedOut(let seconds): throw InvocationError.timedOut(seconds: seconds)
            case .died(let cause): throw InvocationError.sandboxDied(cause)
            case .startFailed(let why): throw InvocationError.startFailed(why)
            }
        } catch {
            function.release(instance, healthy: false, latencyMs: Self.ms(ContinuousClock.now - begin), failed: true)
            throw InvocationError.sandboxDied("\(error)")
        }
        let end = ContinuousClock.now
        let runMs = Self.ms(end - runStart)
        function.release(instance, healthy: true, latencyMs: Self.ms(end - begin), failed: response.status >= 500)
        let granule = Double(billingGranularityMs)
        return InvocationResult(
            response: response, cold: cold, initMs: cold ? instance.sandbox.initMilliseconds : 0, runMs: runMs,
            billedMs: max(1, (runMs / granule).rounded(.up)) * granule, memoryMB: limits.memoryMB,
            sandboxID: instance.sandbox.id)
    }

    /// Per-lambda statistics, sorted by name.
    public func stats() async -> [(String, LambdaStats)] {
        let all = functions.withLock { $0 }
        var result: [(String, LambdaStats)] = []
        for (name, function) in all { result.append((name, function.snapshot())) }
        return result.sorted { $0.0 < $1.0 }
    }

    /// Housekeeping, called periodically by the worker service.
    public func tick() async {
        let now = ContinuousClock.now
        for function in functions.withLock({ Array($0.values) }) { function.tick(now: now) }
    }

    /// Retires sandboxes of `name` at once (after an install or delete through the registry API).
    public func codeChanged(_ name: String) async {
        guard let function = functions.withLock({ $0[name] }) else { return }
        function.retire()
    }

    /// Destroys every sandbox and waits until they are gone, then shuts the backend down.
    public func shutdown() async {
        let all = functions.withLock { Array($0.values) }
        await withTaskGroup(of: Void.self) { group in
            for function in all { group.addTask { await function.shutdown() } }
        }
        await backend.shutdown()
    }

    // MARK: - For LambdaFunction

    func keepAliveSeconds(_ name: String) -> Double {
        let now = seconds(.now)
        return keepAlive.withLock { $0.keepAlive(for: name, idleSince: now) }
    }

    func createSandbox(source: LambdaSource, limits: SandboxLimits) async throws -> any Sandbox {
        let id = "\(source.name.prefix(48))-\(counter.wrappingAdd(1, ordering: .relaxed).newValue)"
        let runtime: RuntimeCommand
        var codeDirectory: String? = nil
        switch source.kind {
        case .python(let directory):
            runtime = try python.get()
            codeDirectory = directory
        case .builtin(let app):
            runtime = SwiftRuntime.command(binary: swiftBinary, app: app)
        }
        var environment = [
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": "/tmp",
            "LANG": "C.UTF-8",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONUNBUFFERED": "1",
        ]
        environment.merge(baseEnvironment) { _, new in new }
        environment.merge(source.config.environment) { _, new in new }
        environment["SWIFTLET_LAMBDA"] = source.name
        environment["SWIFTLET_SANDBOX"] = id
        var spec = SandboxSpec(
            id: id, lambda: source.name, codeDirectory: codeDirectory, runtime: runtime, environment: environment,
            limits: limits, network: network,
            logPath: (workerDirectory as NSString).appendingPathComponent("logs/\(source.name).log"))
        spec.batchScheduling = batchScheduling
        return try await backend.create(spec)
    }

    func memoryFreed(by name: String) {
        let others = functions.withLock { Array($0.values) }
        for function in others {
            Task { function.memoryFreed() }
        }
    }

    func requestMemory(_ mb: Int, for name: String) {
        let others = functions.withLock { $0.filter { $0.key != name }.map(\.value) }
        Task {
            var freed = 0
            for function in others where freed < mb {
                while freed < mb {
                    let got = function.evictIdle()
                    if got == 0 { break }
                    freed += got
                }
            }
        }
    }

    // MARK: - Helpers

    private func function(named name: String) -> LambdaFunction {
        functions.withLock { table in
            if let existing = table[name] { return existing }
            let created = LambdaFunction(name: name, environment: self)
            table[name] = created
            return created
        }
    }

    private func seconds(_ instant: ContinuousClock.Instant) -> Double {
        let d = instant - started
        return Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }

    static func ms(_ duration: Duration) -> Double {
        Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15
    }
}
