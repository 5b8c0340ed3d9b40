import Foundation
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle

/// The swiftlet version reported by `/status` and recorded with benchmark runs.
public let swiftletVersion = "0.1.0"

/// One worker: event layer (HTTP) over the lambda layer over a sandbox backend.
public final class Worker: Sendable {
    public let directory: String
    public let config: WorkerConfig
    public let id: String
    public let manager: LambdaManager
    let logger: Logger

    /// Prepares the worker from its directory and config; `builtins` are the names of built-in Swift apps.
    public init(directory: String, config: WorkerConfig, builtins: [String], logger: Logger) throws {
        self.directory = directory
        self.config = config
        self.logger = logger
        self.id = String(format: "w%05x", UInt32.random(in: 0..<0xFFFFF))
        let registryPath = config.registry.hasPrefix("/")
            ? config.registry : (directory as NSString).appendingPathComponent(config.registry)
        let registry = try Registry(directory: registryPath, cacheMilliseconds: config.registryCacheMs, builtins: builtins)
        let backend = try SandboxBackends.make(
            mode: config.sandbox, workerDirectory: directory, extraReadOnlyPaths: config.sandboxReadOnlyPaths, logger: logger)
        self.manager = LambdaManager(
            config: config, workerDirectory: directory, registry: registry, backend: backend,
            keepAlive: FixedKeepAlive(seconds: config.keepAliveS), logger: logger)
    }

    /// Builds the HTTP application; `onRunning` receives the bound port.
    func application(onRunning: @escaping @Sendable (Int) async -> Void) -> some ApplicationProtocol {
        let router = Router(context: BasicRequestContext.self)
        AdminRoutes(manager: manager, workerID: id, version: swiftletVersion, maxBodyBytes: config.maxBodyBytes)
            .register(on: router)
        let responder = WorkerResponder(
            run: RunHandler(manager: manager, workerID: id, maxBodyBytes: config.maxBodyBytes),
            admin: router.buildResponder())
        return Application(
            responder: responder,
            configuration: .init(address: .hostname(config.host, port: config.port), serverName: nil),
            onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? 0) },
            logger: logger)
    }

    /// The worker's services: the lambda layer first, the HTTP server last, so that on shutdown the server stops
    /// accepting and finishes in-flight requests before every sandbox is destroyed.
    public func serviceGroup(handleSignals: Bool, onRunning: @escaping @Sendable (Int) async -> Void = { _ in }) -> ServiceGroup {
        let logger = self.logger
        let backend = manager.backend
        let id = self.id
        let host = config.host
        let app = application { port in
            logger.info("swiftlet worker \(id) listening on \(host):\(port)")
            if backend.kind == .process {
                logger.warning("sandbox backend: \(backend.summary)")
            } else {
                logger.info("sandbox backend: \(backend.summary)")
            }
            await onRunning(port)
        }
        return ServiceGroup(
            services: [LambdaService(manager: manager), app],
            gracefulShutdownSignals: handleSignals ? [.sigterm, .sigint] : [],
            logger: logger)
    }

    /// Serves until SIGTERM/SIGINT, then shuts down gracefully.
    public func run(onRunning: @escaping @Sendable (Int) async -> Void = { _ in }) async throws {
        try await serviceGroup(handleSignals: true, onRunning: onRunning).run()
    }
}

/// Runs the lambda layer's housekeeping (pause, keep-alive) and tears every sandbox down on shutdown.
struct LambdaService: Service {
    let manager: LambdaManager

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(100))
                await manager.tick()
            }
        }
        await manager.shutdown()
    }
}

/// A worker running inside this process (tests, `swiftlet bench run --target local`).
public final class RunningWorker: Sendable {
    public let worker: Worker
    public let port: Int
    private let task: Task<Void, any Error>
    private let shutdown: @Sendable () async -> Void

    init(worker: Worker, port: Int, task: Task<Void, any Error>, shutdown: @escaping @Sendable () async -> Void) {
        self.worker = worker
        self.port = port
        self.task = task
        self.shutdown = shutdown
    }

    public var url: String { "http://127.0.0.1:\(port)" }

    /// Graceful stop: waits for in-flight requests and for every sandbox to be destroyed.
    public func stop() async {
        await shutdown()
        _ = try? await task.value
    }
}

public enum EmbeddedWorker {
    /// Starts a worker in `directory` (created if missing); `config.port` 0 picks a free port.
    public static func start(
        directory: String, config: WorkerConfig, apps: [any SwiftApp.Type], logger: Logger? = nil
    ) async throws -> RunningWorker {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var log = logger ?? Logger(label: "swiftlet.worker")
        if logger == nil { log.logLevel = Logger.Level(rawValue: config.logLevel) ?? .info }
        let worker = try Worker(directory: directory, config: config, builtins: apps.map { $0.name }, logger: log)
        let (portStream, portContinuation) = AsyncStream.makeStream(of: Int.self)
        let group = worker.serviceGroup(handleSignals: false) { port in portContinuation.yield(port) }
        let task = Task {
            defer { portContinuation.finish() }
            try await group.run()
        }
        var iterator = portStream.makeAsyncIterator()
        guard let port = await iterator.next() else {
            do { try await task.value } catch { throw error }
            throw WorkerStartError("worker stopped before it listened")
        }
        return RunningWorker(worker: worker, port: port, task: task) {
            await group.triggerGracefulShutdown()
        }
    }
}

