/// A discrete-event queue: a binary min-heap ordered by time, then by insertion sequence, so events
/// scheduled for the same instant run in the order they were scheduled (deterministic runs).
public struct EventQueue<Event> {
    private struct Entry {
        var timeNs: Int64
        var sequence: UInt64
        var event: Event

        func precedes(_ other: Entry) -> Bool {
            timeNs != other.timeNs ? timeNs < other.timeNs : sequence < other.sequence
        }
    }

    private var heap: [Entry] = []
    private var nextSequence: UInt64 = 0

    public init() {}

    public var count: Int { heap.count }
    public var isEmpty: Bool { heap.isEmpty }
    /// Time of the earliest event, nil when empty.
    public var nextTimeNs: Int64? { heap.first?.timeNs }

    public mutating func schedule(_ event: Event, atNs timeNs: Int64) {
        heap.append(Entry(timeNs: timeNs, sequence: nextSequence, event: event))
        nextSequence += 1
        siftUp(from: heap.count - 1)
    }

    /// Removes and returns the earliest event.
    public mutating func pop() -> (timeNs: Int64, event: Event)? {
        guard !heap.isEmpty else { return nil }
        heap.swapAt(0, heap.count - 1)
        let entry = heap.removeLast()
        if !heap.isEmpty { siftDown(from: 0) }
        return (entry.timeNs, entry.event)
    }

    private mutating func siftUp(from start: Int) {
        var child = start
        while child > 0 {
            let parent = (child - 1) / 2
            guard heap[child].precedes(heap[parent]) else { return }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    private mutating func siftDown(from start: Int) {
        var parent = start
        while true {
            let left = 2 * parent + 1
            let right = left + 1
            var first = parent
            if left < heap.count && heap[left].precedes(heap[first]) { first = left }
            if right < heap.count && heap[right].precedes(heap[first]) { first = right }
            if first == parent { return }
            heap.swapAt(parent, first)
            parent = first
        }
    }
}
