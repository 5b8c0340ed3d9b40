import Dispatch
import Foundation
import Synchronization

/// Batches rows off the hot path: `add` only appends under a lock; a background thread commits a batch every
/// `interval` or as soon as `batchSize` rows are waiting. Each batch is one transaction.
public final class ResultsWriter: Sendable {
    struct Pending {
        var requests: [RequestRow] = []
        var samples: [SampleRow] = []
        var closing = false
        var committedRequests = 0
        var committedSamples = 0
        var batches = 0
        var firstError: String?
    }

    let database: ResultsDatabase
    let batchSize: Int
    let interval: Double
    let state = Mutex(Pending())
    let wake = DispatchSemaphore(value: 0)
    let finished = DispatchSemaphore(value: 0)

    public init(database: ResultsDatabase, batchSize: Int = 1000, interval: Double = 0.1) {
        self.database = database
        self.batchSize = batchSize
        self.interval = interval
        let thread = Thread { [self] in self.loop() }
        thread.name = "results-writer"
        thread.start()
    }

    public func add(_ row: RequestRow) {
        let full = state.withLock { pending -> Bool in
            pending.requests.append(row)
            return pending.requests.count == batchSize
        }
        if full { wake.signal() }
    }

    public func add(_ rows: [RequestRow]) {
        state.withLock { $0.requests.append(contentsOf: rows) }
        wake.signal()
    }

    public func add(_ samples: [SampleRow]) {
        state.withLock { $0.samples.append(contentsOf: samples) }
    }

    /// Rows committed so far.
    public var committed: (requests: Int, samples: Int, batches: Int) {
        state.withLock { ($0.committedRequests, $0.committedSamples, $0.batches) }
    }

    /// Commits what is pending and stops the thread. Throws the first write error, if any happened.
    public func close() async throws {
        state.withLock { $0.closing = true }
        wake.signal()
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().async {
                self.finished.wait()
                continuation.resume()
            }
        }
        if let error = state.withLock({ $0.firstError }) {
            throw ResultsWriterError(message: error)
        }
    }

    private func loop() {
        while true {
            _ = wake.wait(timeout: .now() + interval)
            let (requests, samples, closing) = state.withLock { pending in
                let taken = (pending.requests, pending.samples, pending.closing)
                pending.requests = []
                pending.samples = []
                return taken
            }
            var error: String?
            do {
                // Oversized bursts are split so a transaction stays short.
                var start = 0
                while start < requests.count {
                    let end = min(requests.count, start + max(batchSize, 1) * 4)
                    try database.insert(requests: Array(requests[start..<end]))
                    start = end
                }
                try database.insert(samples: samples)
            } catch let failure {
                error = "\(failure)"
            }
            state.withLock { pending in
                if let error {
                    if pending.firstError == nil { pending.firstError = "writing results failed: \(error)" }
                } else {
                    pending.committedRequests += requests.count
                    pending.committedSamples += samples.count
                    if !requests.isEmpty || !samples.isEmpty { pending.batches += 1 }
                }
            }
            if closing {
                finished.signal()
                return
            }
        }
    }
}

public struct ResultsWriterError: Error, CustomStringConvertible, LocalizedError {
    public var message: String
    public var description: String { message }
    public var errorDescription: String? { message }
}
