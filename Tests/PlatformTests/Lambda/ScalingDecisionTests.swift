import Platform
import XCTest

final class ScalingDecisionTests: XCTestCase {
    func testStartsOneSandboxPerQueuedRequestNotAlreadyServed() {
        XCTAssertEqual(ScalingDecision.sandboxesToStart(
            queued: 5, starting: 2, busy: 3, idle: 0, maxInstances: 100, memoryAvailableMB: 10_000, sandboxMemoryMB: 128), 3)
    }

    func testNothingQueuedOrIdleInstanceMeansNoNewSandbox() {
        XCTAssertEqual(ScalingDecision.sandboxesToStart(
            queued: 0, starting: 0, busy: 3, idle: 0, maxInstances: 100, memoryAvailableMB: 10_000, sandboxMemoryMB: 128), 0)
        XCTAssertEqual(ScalingDecision.sandboxesToStart(
            queued: 2, starting: 0, busy: 0, idle: 1, maxInstances: 100, memoryAvailableMB: 10_000, sandboxMemoryMB: 128), 0)
    }

    func testBoundedByMaximumInstances() {
        XCTAssertEqual(ScalingDecision.sandboxesToStart(
            queued: 50, starting: 1, busy: 7, idle: 0, maxInstances: 10, memoryAvailableMB: 10_000, sandboxMemoryMB: 128), 2)
        XCTAssertEqual(ScalingDecision.sandboxesToStart(
            queued: 50, starting: 0, busy: 10, idle: 0, maxInstances: 10, memoryAvailableMB: 10_000, sandboxMemoryMB: 128), 0)
    }

    func testBoundedByMemoryPool() {
        XCTAssertEqual(ScalingDecision.sandboxesToStart(
            queued: 50, starting: 0, busy: 0, idle: 0, maxInstances: 100, memoryAvailableMB: 300, sandboxMemoryMB: 128), 2)
        XCTAssertEqual(ScalingDecision.sandboxesToStart(
            queued: 50, starting: 0, busy: 0, idle: 0, maxInstances: 100, memoryAvailableMB: 100, sandboxMemoryMB: 128), 0)
    }

    func testMemoryPoolAdmission() {
        let pool = MemoryPool(capacityMB: 300)
        XCTAssertTrue(pool.tryReserve(128))
        XCTAssertTrue(pool.tryReserve(128))
        XCTAssertFalse(pool.tryReserve(128))
        XCTAssertEqual(pool.reservedMB, 256)
        pool.release(128)
        XCTAssertTrue(pool.tryReserve(128))
    }

    func testFixedKeepAlive() {
        var policy: any KeepAlivePolicy = FixedKeepAlive(seconds: 600)
        policy.recordInvocation(of: "a", at: 1)
        XCTAssertEqual(policy.keepAlive(for: "a", idleSince: 2), 600)
        XCTAssertEqual(policy.name, "fixed(600s)")
    }
}
