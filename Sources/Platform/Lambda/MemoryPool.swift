import Synchronization

/// Admission control: the sum of the memory limits of live sandboxes stays within the pool.
public final class MemoryPool: Sendable {
    public let capacityMB: Int
    private let reserved = Mutex(0)

    public init(capacityMB: Int) { self.capacityMB = capacityMB }

    /// Reserves `mb` if it fits; returns false otherwise.
    public func tryReserve(_ mb: Int) -> Bool {
        reserved.withLock { value in
            guard value + mb <= capacityMB else { return false }
            value += mb
            return true
        }
    }

    public func release(_ mb: Int) {
        reserved.withLock { $0 = max(0, $0 - mb) }
    }

    public var reservedMB: Int { reserved.withLock { $0 } }
}
