import NIOCore
import NIOPosix
import Synchronization
@testable import Platform
import XCTest

/// The lambda queue under contention: requests from many tasks, fewer instances than requests.
final class LambdaFunctionTests: XCTestCase {
    func testConcurrentRequestsAreAllServedAndCountedOnce() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let backend = LoopBackend(loops: Array(group.makeIterator()))
        let manager = try LoopAffinityTests.manager(backend: backend, maxInstances: 3)
        let function = LambdaFunction(name: "noop", environment: manager)
        let source = LambdaSource(name: "noop", kind: .builtin(app: "noop"), config: .default, version: "v1")
        let limits = SandboxLimits()
        let tasks = 16, rounds = 200

        // A lost wake-up would leave a request waiting forever: fail after a bound instead of hanging.
        let served = try await Self.within(.seconds(30)) {
          try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<tasks {
                group.addTask {
                    var count = 0
                    for _ in 0..<rounds {
                        let (instance, _) = try await function.acquire(source: source, limits: limits, loop: nil)
                        await Task.yield()
                        function.release(instance, healthy: true, latencyMs: 1, failed: false)
                        count += 1
                    }
                    return count
                }
            }
            return try await group.reduce(0, +)
          }
        }

        XCTAssertEqual(served, tasks * rounds)
        let stats = function.snapshot()
        XCTAssertEqual(stats.invocations, tasks * rounds)
        XCTAssertEqual(stats.running, 0, "every instance came back")
        XCTAssertEqual(stats.queued, 0, "no request left waiting")
        XCTAssertLessThanOrEqual(backend.created, 3, "the per-lambda maximum holds under contention")
        XCTAssertEqual(stats.idle, backend.created)
        await function.shutdown()
        try await group.shutdownGracefully()
    }

    func testQueueBeyondItsLimitIsRefusedAndNotCounted() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let backend = LoopBackend(loops: Array(group.makeIterator()))
        let manager = try LoopAffinityTests.manager(backend: backend, maxInstances: 1, maxQueue: 8)
        let function = LambdaFunction(name: "noop", environment: manager)
        let source = LambdaSource(name: "noop", kind: .builtin(app: "noop"), config: .default, version: "v1")
        let (held, _) = try await function.acquire(source: source, limits: SandboxLimits(), loop: nil)

        // The one instance is busy: requests queue up to the limit, the next is refused with 429.
        let waiting = Task {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<manager.maxQueue {
                    group.addTask {
                        let (instance, _) = try await function.acquire(source: source, limits: SandboxLimits(), loop: nil)
                        function.release(instance, healthy: true, latencyMs: 1, failed: false)
                    }
                }
                try await group.waitForAll()
            }
        }
        while function.snapshot().queued < manager.maxQueue { try await Task.sleep(for: .milliseconds(1)) }
        do {
            _ = try await function.acquire(source: source, limits: SandboxLimits(), loop: nil)
            XCTFail("a request beyond the queue limit must be refused")
        } catch InvocationError.queueFull(let limit) {
            XCTAssertEqual(limit, manager.maxQueue)
        }
        function.release(held, healthy: true, latencyMs: 1, failed: false)
        try await Self.within(.seconds(30)) { try await waiting.value }
        let stats = function.snapshot()
        XCTAssertEqual(stats.invocations, 1 + manager.maxQueue, "the refused request is not counted")
        XCTAssertEqual(stats.queued, 0)
        XCTAssertEqual(stats.running, 0)
        await function.shutdown()
        try await group.shutdownGracefully()
    }

    struct TimedOut: Error, CustomStringConvertible {
        var description: String { "requests were still waiting when the time bound passed" }
    }

    /// Runs `body`, throwing `TimedOut` if it has not finished within `limit`. The body runs in a task of its own, so
    /// a body stuck on a continuation nobody resumes cannot hold the test up.
    static func within<T: Sendable>(_ limit: Duration, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
        let settled = Mutex(false)
        return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            let first: @Sendable (Result<T, any Error>) -> Void = { result in
                if settled.withLock({ done in defer { done = true }; return !done }) { continuation.resume(with: result) }
            }
            Task {
                do { first(.success(try await body())) } catch { first(.failure(error)) }
            }
            Task {
                try? await Task.sleep(for: limit)
                first(.failure(TimedOut()))
            }
        }
    }
}
