import Foundation
import Logging
import NIOCore
import NIOPosix
@testable import Platform
import Synchronization
import XCTest

/// The lambda layer hands a request the idle sandbox served by the caller's own event loop when there is one.
final class LoopAffinityTests: XCTestCase {
    func testIdleInstanceOnTheCallersLoopIsPreferred() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let loops = Array(group.makeIterator())
        let backend = LoopBackend(loops: loops)
        let manager = try Self.manager(backend: backend)
        let function = LambdaFunction(name: "noop", environment: manager)
        let source = LambdaSource(name: "noop", kind: .builtin(app: "noop"), config: .default, version: "v1")
        let limits = SandboxLimits()

        // Two requests at once start two sandboxes, one on each loop.
        async let first = function.acquire(source: source, limits: limits, loop: nil)
        async let second = function.acquire(source: source, limits: limits, loop: nil)
        let (a, b) = try await (first, second)
        XCTAssertTrue(a.1 && b.1, "both were started for these requests")
        let onFirst = a.0.loop == ObjectIdentifier(loops[0]) ? a.0 : b.0
        let onSecond = a.0.loop == ObjectIdentifier(loops[0]) ? b.0 : a.0
        XCTAssertEqual(onSecond.loop, ObjectIdentifier(loops[1]))

        // Idle in the order [second loop, first loop]: the most recently used is on the first loop.
        function.release(onSecond, healthy: true, latencyMs: 1, failed: false)
        function.release(onFirst, healthy: true, latencyMs: 1, failed: false)

        let picked = try await function.acquire(source: source, limits: limits, loop: ObjectIdentifier(loops[1]))
        XCTAssertFalse(picked.1, "a warm instance")
        XCTAssertTrue(picked.0.sandbox === onSecond.sandbox, "the instance on the caller's loop, not the most recent one")
        // A caller on no known loop gets the most recently used instance.
        let other = try await function.acquire(source: source, limits: limits, loop: nil)
        XCTAssertTrue(other.0.sandbox === onFirst.sandbox)
        XCTAssertEqual(backend.created, 2, "no sandbox started for warm requests")

        function.release(picked.0, healthy: true, latencyMs: 1, failed: false)
        function.release(other.0, healthy: true, latencyMs: 1, failed: false)
        await function.shutdown()
        try await group.shutdownGracefully()
    }

    static func manager(backend: any SandboxBackend, maxInstances: Int? = nil, maxQueue: Int? = nil) throws -> LambdaManager {
        let directory = NSTemporaryDirectory() + "affinity-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory + "/registry", withIntermediateDirectories: true)
        let registry = try Registry(directory: directory + "/registry", cacheMilliseconds: 0, builtins: ["noop"])
        var config = WorkerConfig()
        config.memoryPoolMb = 4096
        if let maxInstances { config.maxInstancesPerLambda = maxInstances }
        if let maxQueue { config.maxQueuePerLambda = maxQueue }
        return LambdaManager(
            config: config, workerDirectory: directory, registry: registry, backend: backend,
            keepAlive: FixedKeepAlive(seconds: 600), logger: Logger(label: "test"))
    }
}

/// Hands out sandboxes on the given loops in turn; they answer 200 at once (shared with `LambdaFunctionTests`).
final class LoopBackend: SandboxBackend {
    let loops: [any EventLoop]
    private let count = Mutex(0)

    init(loops: [any EventLoop]) {
        self.loops = loops
    }

    var created: Int { count.withLock { $0 } }
    var kind: SandboxKind { .process }
    var summary: String { "test backend" }

    func create(_ spec: SandboxSpec) async throws -> any Sandbox {
        let index = count.withLock { value -> Int in
            defer { value += 1 }
            return value
        }
        return LoopSandbox(id: spec.id, limits: spec.limits, eventLoop: loops[index % loops.count])
    }

    func shutdown() async {}
}

final class LoopSandbox: Sandbox {
    let id: String
    let pid: Int32 = 0
    let initMilliseconds = 0.0
    let limits: SandboxLimits
    let eventLoop: any EventLoop

    init(id: String, limits: SandboxLimits, eventLoop: any EventLoop) {
        self.id = id
        self.limits = limits
        self.eventLoop = eventLoop
    }

    nonisolated(nonsending) func invoke(_ request: WireRequest, body: ByteBuffer, timeout: Duration) async throws -> WireResponse {
        WireResponse(status: 200, headers: [])
    }

    func pause() async throws {}
    func unpause() async throws {}
    func destroy() async {}
}
