import Dispatch
import Foundation
import Histogram
import NIOCore
import NIOPosix
import Synchronization

public struct LoadGeneratorConfig: Sendable {
    /// Base URL of an OpenLambda-compatible endpoint; requests go to `POST {url}/run/NAME[/path]`.
    public var url: String
    /// A request without a response after this long is recorded as an error (status 0).
    public var requestTimeoutSeconds: Double = 120
    /// Most open-loop connections (over all event loops); when all are busy, requests wait (still timed from their intended time).
    public var maxConnections: Int = 2048
    /// Open-loop connections opened per event loop before t = 0.
    public var preconnectPerLoop: Int = 8
    /// Event-loop threads; default: `SWIFTLET_LOADGEN_THREADS` from the environment, else one per core.
    public var threads: Int = LoadGeneratorConfig.defaultThreads()
    /// Poll `{url}/stats` every `sampleInterval` seconds and store samples (stops when the target has no /stats).
    public var sampleStats: Bool = true
    public var sampleIntervalSeconds: Double = 0.1
    /// After `stop()`, requests in flight get this long to finish before they are recorded as aborted.
    public var abortGraceSeconds: Double = 2
    /// Fractional delay after a failed closed-loop request before the client retries (avoids spinning on a dead target).
    public var closedErrorBackoffSeconds: Double = 0.01

    public init(url: String) { self.url = url }

    public static func defaultThreads(environment: [String: String] = ProcessInfo.processInfo.environment) -> Int {
        if let text = environment["SWIFTLET_LOADGEN_THREADS"], let count = Int(text), count >= 1 { return count }
        return System.coreCount
    }
}

/// Live counters for the progress line.
public struct LoadGenProgress: Sendable {
    public var elapsedSeconds: Double
    public var completed: Int
    public var errors: Int
    public var inFlight: Int
    public var p50Ms: Double
    public var p99Ms: Double
    /// Instances summed over lambdas in the latest `/stats` sample; nil when the target has none.
    public var instances: Int?
}

/// Drives a workload against a URL: open-loop arrivals at their intended times and closed-loop clients, recording
/// one `RequestRow` per request (latency from the intended time) and `/stats` samples through a `ResultsWriter`.
public final class LoadGenerator: Sendable {
    let context: GeneratorContext
    let drivers = Mutex<[(EventLoop, NIOLoopBound<LoopDriver>)]>([])
    let stopped = Mutex(false)

    public init(
        workload: Workload, arrivals: [ScheduledArrival], segments: [ClosedSegment], runID: Int64,
        config: LoadGeneratorConfig, writer: ResultsWriter
    ) throws {
        context = try GeneratorContext(
            workload: workload, arrivals: arrivals, segments: segments, runID: runID, config: config, writer: writer)
    }

    public var isStopped: Bool { stopped.withLock { $0 } }

    /// Runs to the end of the schedule (or until `stop()`), then waits for requests in flight.
    public func run() async throws {
        let config = context.config
        let group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, config.threads))
        do {
            try await runOn(group)
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
        try await group.shutdownGracefully()
    }

    private func runOn(_ group: MultiThreadedEventLoopGroup) async throws {
        let loops = Array(group.makeIterator())
        let context = self.context
        var created: [(EventLoop, NIOLoopBound<LoopDriver>)] = []
        for (index, loop) in loops.enumerated() {
            let bound = try await loop.submit {
                NIOLoopBound(LoopDriver(index: index, loopCount: loops.count, loop: loop, context: context), eventLoop: loop)
            }.get()
            created.append((loop, bound))
        }
        drivers.withLock { $0 = created }
        // Warm connections before t = 0 so the first arrivals do not pay for connects.
        var ready: [EventLoopFuture<Void>] = []
        for (loop, bound) in created {
            ready.append(loop.flatSubmit { bound.value.preconnect() })
        }
        for future in ready { try? await future.get() }

        let start = DispatchTime.now().uptimeNanoseconds + 20_000_000
        context.startUptimeNs.store(start, ordering: .releasing)
        var done: [EventLoopFuture<Void>] = []
        let poller = context.config.sampleStats
            ? try await loops[0].submit { NIOLoopBound(StatsPoller(loop: loops[0], context: context), eventLoop: loops[0]) }.get()
            : nil
        if let poller { loops[0].execute { poller.value.start(uptimeStart: start) } }
        for (loop, bound) in created {
            done.append(loop.flatSubmit { bound.value.start(uptimeStart: start) })
        }
        if isStopped { stop() }
        for future in done { try await future.get() }
        if let poller {
            try await loops[0].submit { poller.value.stop() }.get()
        }
    }

    /// Stops sending; requests in flight get `abortGraceSeconds`, then are recorded as aborted.
    public func stop() {
        stopped.withLock { $0 = true }
        for (loop, bound) in drivers.withLock({ $0 }) {
            loop.execute { bound.value.stop() }
        }
    }

    public func progress() -> LoadGenProgress {
        let start = context.startUptimeNs.load(ordering: .acquiring)
        let now = DispatchTime.now().uptimeNanoseconds
        let elapsed = start == 0 || now < start ? 0 : Double(now - start) / 1e9
        return context.stats.withLock { stats in
            LoadGenProgress(
                elapsedSeconds: elapsed, completed: stats.completed, errors: stats.errors,
                inFlight: max(0, stats.sent - stats.completed),
                p50Ms: stats.histogram.totalCount == 0 ? 0 : Double(stats.histogram.valueAtPercentile(50)) / 1000,
                p99Ms: stats.histogram.totalCount == 0 ? 0 : Double(stats.histogram.valueAtPercentile(99)) / 1000,
                instances: stats.instances)
        }
    }
}

/// A prepared request per workload target.
struct PreparedTarget: Sendable {
    var lambda: String
    var method: String
    var uri: String
    var payload: String
    /// The encoded request, reused for every request when the payload has no placeholders.
    var fixedRequest: EncodedRequest?
}

/// Counters for the progress line; event loops add to them in batches (see `LoopDriver.flushRows`).
struct LiveStats: Sendable {
    var sent = 0
    var completed = 0
    var errors = 0
    /// Latency in microseconds.
    var histogram = Histogram<UInt64>(highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: .two)
    var instances: Int?
}

/// Read-only run description plus the few shared counters, used from every event loop.
final class GeneratorContext: Sendable {
    let workload: Workload
    let arrivals: [ScheduledArrival]
    let segments: [ClosedSegment]
    let runID: Int64
    let config: LoadGeneratorConfig
    let target: TargetURL
    let writer: ResultsWriter
    let targets: [PreparedTarget]
    let warmupNs: Int64
    let stats = Mutex(LiveStats())
    let nextClosedSeq: Atomic<Int64>
    /// Uptime of t = 0 (set once before any request).
    let startUptimeNs = Atomic<UInt64>(0)

    init(
        workload: Workload, arrivals: [ScheduledArrival], segments: [ClosedSegment], runID: Int64,
        config: LoadGeneratorConfig, writer: ResultsWriter
    ) throws {
        self.workload = workload
        self.arrivals = arrivals
        self.segments = segments
        self.runID = runID
        self.config = config
        self.writer = writer
        target = try TargetURL(parsing: config.url)
        warmupNs = ArrivalSchedule.seconds(workload.warmupSeconds)
        nextClosedSeq = Atomic(Int64(arrivals.count))
        let prefix = target.prefix
        let host = target.hostHeader
        targets = workload.targets.map { t in
            let templated = t.payload.contains("{{seq}}") || t.payload.contains("{{client}}")
            // A GET with the default payload carries no body.
            let payload = t.method == "GET" && t.payload == "{}" ? "" : t.payload
            let uri = "\(prefix)/run/\(t.lambda)\(t.path)"
            return PreparedTarget(
                lambda: t.lambda, method: t.method, uri: uri, payload: payload,
                fixedRequest: templated
                    ? nil : EncodedRequest(method: t.method, uri: uri, host: host, body: ByteBuffer(string: payload)))
        }
    }

    func request(_ target: PreparedTarget, seq: Int64, client: Int?) -> EncodedRequest {
        if let fixed = target.fixedRequest { return fixed }
        let text = target.payload
            .replacingOccurrences(of: "{{seq}}", with: String(seq))
            .replacingOccurrences(of: "{{client}}", with: client.map(String.init) ?? "")
        return EncodedRequest(method: target.method, uri: target.uri, host: self.target.hostHeader, body: ByteBuffer(string: text))
    }

    func nowNs() -> Int64 {
        Int64(bitPattern: DispatchTime.now().uptimeNanoseconds &- startUptimeNs.load(ordering: .relaxed))
    }

    /// The row for a finished request (latency from its intended time).
    func row(_ request: InFlightRequest, endNs: Int64, result: HTTPResult?, error: String) -> RequestRow {
        let target = targets[request.targetIndex]
        let latencyMs = Double(endNs - request.intendedNs) / 1e6
        var row = RequestRow(
            runID: runID, seq: request.seq, lambda: target.lambda, intendedNs: request.intendedNs,
            sentNs: request.sentNs, endNs: endNs, latencyMs: latencyMs, status: result?.status ?? 0,
            bytes: result?.bytes ?? 0, error: error, warmup: request.intendedNs < warmupNs)
        if let worker = result?.worker {
            if let start = worker.start { row.cold = start == "cold" }
            row.initMs = worker.initMs.flatMap(Double.init)
            row.runMs = worker.runMs.flatMap(Double.init)
            row.billedMs = worker.billedMs.flatMap(Double.init)
            row.sandboxID = worker.sandbox
            row.worker = worker.worker
        }
        if row.error.isEmpty, let status = result?.status, status >= 400 { row.error = "HTTP \(status)" }
        return row
    }

    /// Hands finished rows to the writer and the progress counters (one lock each per batch).
    func commit(_ rows: [RequestRow], sent: Int) {
        if !rows.isEmpty { writer.add(rows) }
        stats.withLock { stats in
            stats.sent += sent
            stats.completed += rows.count
            for row in rows {
                if row.status == 0 || row.status >= 400 { stats.errors += 1 }
                _ = stats.histogram.record(UInt64(max(0, row.latencyMs * 1000)))
            }
        }
    }
}

struct InFlightRequest {
    var seq: Int64
    var targetIndex: Int
    var intendedNs: Int64
    var sentNs: Int64
    var client: Int?
}

/// Everything one event loop does: its share of open-loop arrivals (pool of keep-alive connections)
/// and its share of closed-loop clients (one connection each). Only touched on `loop`.
final class LoopDriver {
    let index: Int
    let loopCount: Int
    let loop: EventLoop
    let context: GeneratorContext

    // Open loop.
    var arrivalIndex: Int
    var pending: [InFlightRequest] = []
    var pendingHead = 0
    var idle: [PooledConnection] = []
    var poolSize = 0
    var connecting = 0
    var arrivalTask: Scheduled<Void>?
    let maxPool: Int
    /// Connects in progress at once are capped, so a short backlog (e.g. a descheduled moment) does not turn into
    /// a burst of connects that slows the generator and the target further; the pool still grows while demand lasts.
    static let maxConcurrentConnects = 4

    // Shared.
    var busy: [ObjectIdentifier: PooledConnection] = [:]
    var clients: [ClosedClient] = []
    var activeClients = 0
    var stopping = false
    var finished: EventLoopPromise<Void>?
    var sweepTask: Scheduled<Void>?
    var graceTask: Scheduled<Void>?
    /// Uptime of t = 0, cached from the context.
    var startUptimeNs: UInt64 = 0
    /// Finished rows not yet handed to the writer: flushed on every sweep tick (100 ms) and when `flushEvery` are
    /// waiting, so the writer commits few large transactions instead of waking for every few rows.
    var rows: [RequestRow] = []
    var sentSinceFlush = 0

    init(index: Int, loopCount: Int, loop: EventLoop, context: GeneratorContext) {
        self.index = index
        self.loopCount = loopCount
        self.loop = loop
        self.context = context
        arrivalIndex = index
        maxPool = max(1, context.config.maxConnections / loopCount)
    }

    var hasOpenWork: Bool { arrivalIndex < context.arrivals.count }

    func preconnect() -> EventLoopFuture<Void> {
        guard hasOpenWork else { return loop.makeSucceededFuture(()) }
        let promise = loop.makePromise(of: Void.self)
        let count = min(context.config.preconnectPerLoop, maxPool)
        var remaining = count
        guard count > 0 else { return loop.makeSucceededFuture(()) }
        for _ in 0..<count {
            openConnection {
                remaining -= 1
                if remaining == 0 { promise.succeed(()) }
            }
        }
        return promise.futureResult
    }

    func start(uptimeStart: UInt64) -> EventLoopFuture<Void> {
        let promise = loop.makePromise(of: Void.self)
        finished = promise
        startUptimeNs = uptimeStart
        scheduleSweep()
        // Closed-loop clients: client k of a segment lives on loop k % loopCount.
        var clientID = 0
        for segment in context.segments {
            for k in 0..<segment.clients {
                defer { clientID += 1 }
                guard k % loopCount == index else { continue }
                let client = ClosedClient(id: clientID, segment: segment, driver: self)
                clients.append(client)
                activeClients += 1
                client.schedule(at: segment.startNs)
            }
        }
        scheduleNextArrival()
        checkFinished()
        return promise.futureResult
    }

    func deadline(_ ns: Int64) -> NIODeadline {
        NIODeadline.uptimeNanoseconds(UInt64(Int64(startUptimeNs) + max(0, ns)))
    }

    func nowNs() -> Int64 {
        Int64(bitPattern: DispatchTime.now().uptimeNanoseconds &- startUptimeNs)
    }

    // MARK: Recording

    static let flushEvery = 8192

    func markSent() { sentSinceFlush += 1 }

    func record(_ request: InFlightRequest, endNs: Int64, result: HTTPResult?, error: String) {
        rows.append(context.row(request, endNs: endNs, result: result, error: error))
        if rows.count >= Self.flushEvery { flushRows() }
    }

    func flushRows() {
        guard !rows.isEmpty || sentSinceFlush > 0 else { return }
        context.commit(rows, sent: sentSinceFlush)
        rows.removeAll(keepingCapacity: true)
        sentSinceFlush = 0
    }

    // MARK: Open loop

    func scheduleNextArrival() {
        guard !stopping, hasOpenWork else { return }
        let next = context.arrivals[arrivalIndex].intendedNs
        arrivalTask = loop.assumeIsolated().scheduleTask(deadline: deadline(next)) { [self] in
            arrivalTask = nil
            releaseDueArrivals()
        }
    }

    func releaseDueArrivals() {
        let now = nowNs()
        let arrivals = context.arrivals
        while arrivalIndex < arrivals.count && arrivals[arrivalIndex].intendedNs <= now {
            let arrival = arrivals[arrivalIndex]
            pending.append(
                InFlightRequest(
                    seq: Int64(arrivalIndex), targetIndex: arrival.targetIndex, intendedNs: arrival.intendedNs, sentNs: 0,
                    client: nil))
            arrivalIndex += loopCount
        }
        dispatchPending()
        scheduleNextArrival()
        checkFinished()
    }

    var pendingCount: Int { pending.count - pendingHead }

    func popPending() -> InFlightRequest? {
        guard pendingHead < pending.count else { return nil }
        let request = pending[pendingHead]
        pendingHead += 1
        if pendingHead > 1024 && pendingHead * 2 > pending.count {
            pending.removeFirst(pendingHead)
            pendingHead = 0
        }
        return request
    }

    func dispatchPending() {
        while pendingCount > 0, let connection = idle.popLast() {
            if let request = popPending() { send(request, on: connection) }
        }
        // Grow the pool to demand, bounded.
        let wanted = min(pendingCount - connecting, maxPool - poolSize, Self.maxConcurrentConnects - connecting)
        if wanted > 0 {
            for _ in 0..<wanted { openConnection(onReady: nil) }
        }
    }

    func openConnection(onReady: (() -> Void)?) {
        poolSize += 1
        connecting += 1
        HTTPConnection.connect(on: loop, to: context.target) { [self] result in
            connecting -= 1
            switch result {
            case .success(let connection):
                let pooled = PooledConnection(connection: connection)
                connection.handler.onClose = { [self] reason in connectionClosed(pooled, reason: reason) }
                connection.handler.onResponse = { [self] response in responseArrived(pooled, response) }
                if stopping {
                    connection.channel.close(promise: nil)
                } else {
                    idle.append(pooled)
                    dispatchPending()
                }
            case .failure(let error):
                poolSize -= 1
                // The connect failure is charged to the oldest waiting request so a dead target cannot stall the run.
                if let request = popPending() {
                    markSent()
                    record(request, endNs: nowNs(), result: nil, error: "connect: \(error)")
                    dispatchPending()
                }
            }
            onReady?()
            checkFinished()
        }
    }

    func send(_ request: InFlightRequest, on pooled: PooledConnection) {
        var request = request
        let encoded = context.request(context.targets[request.targetIndex], seq: request.seq, client: request.client)
        request.sentNs = nowNs()
        pooled.request = request
        busy[ObjectIdentifier(pooled)] = pooled
        markSent()
        pooled.connection.handler.send(encoded)
    }

    func responseArrived(_ pooled: PooledConnection, _ response: HTTPResult) {
        guard let request = pooled.request else { return }
        let end = nowNs()
        pooled.request = nil
        busy[ObjectIdentifier(pooled)] = nil
        record(request, endNs: end, result: response, error: "")
        if let client = pooled.client {
            if !response.keepAlive { pooled.connection.channel.close(promise: nil) }
            client.finished(
                request: request, endNs: end, failed: response.status >= 500, on: pooled, keepAlive: response.keepAlive)
            return
        }
        if !response.keepAlive {
            pooled.closing = true
            pooled.connection.channel.close(promise: nil)
        } else if !stopping, let next = popPending() {
            send(next, on: pooled)
        } else {
            idle.append(pooled)
        }
        checkFinished()
    }

    func connectionClosed(_ pooled: PooledConnection, reason: String) {
        busy[ObjectIdentifier(pooled)] = nil
        if let request = pooled.request {
            pooled.request = nil
            let error = pooled.timedOut ? "timeout after \(FieldReader.format(context.config.requestTimeoutSeconds)) s" : reason
            let end = nowNs()
            record(request, endNs: end, result: nil, error: stopping && !pooled.timedOut ? "aborted" : error)
            if let client = pooled.client {
                client.finished(request: request, endNs: end, failed: true, on: nil, keepAlive: false)
                checkFinished()
                return
            }
        }
        if pooled.client != nil { return }
        poolSize -= 1
        idle.removeAll { $0 === pooled }
        if !stopping { dispatchPending() }
        checkFinished()
    }

    // MARK: Timeouts, stop, completion

    func scheduleSweep() {
        sweepTask = loop.assumeIsolated().scheduleTask(in: .milliseconds(100)) { [self] in
            flushRows()
            let limit = Int64(context.config.requestTimeoutSeconds * 1e9)
            let now = nowNs()
            for pooled in busy.values where !pooled.timedOut {
                if let request = pooled.request, now - request.sentNs > limit {
                    pooled.timedOut = true
                    pooled.connection.handler.close(reason: "timeout")
                }
            }
            scheduleSweep()
        }
    }

    func stop() {
        guard !stopping else { return }
        stopping = true
        arrivalTask?.cancel()
        arrivalTask = nil
        pending.removeAll()
        pendingHead = 0
        for client in clients { client.stop() }
        for pooled in idle { pooled.connection.channel.close(promise: nil) }
        idle.removeAll()
        graceTask = loop.assumeIsolated().scheduleTask(in: .milliseconds(Int64(context.config.abortGraceSeconds * 1000))) {
            [self] in
            for pooled in busy.values { pooled.connection.handler.close(reason: "aborted") }
        }
        checkFinished()
    }

    func clientDone() {
        activeClients -= 1
        checkFinished()
    }

    func checkFinished() {
        guard let promise = finished else { return }
        let openDone = stopping || (!hasOpenWork && pendingCount == 0)
        guard openDone, busy.isEmpty, activeClients == 0, connecting == 0 || stopping else { return }
        finished = nil
        flushRows()
        sweepTask?.cancel()
        graceTask?.cancel()
        for pooled in idle { pooled.connection.channel.close(promise: nil) }
        idle.removeAll()
        promise.succeed(())
    }
}

/// A connection with the request it is serving (open-loop pool, or owned by one closed-loop client).
final class PooledConnection {
    let connection: HTTPConnection
    var request: InFlightRequest?
    var timedOut = false
    var closing = false
    var client: ClosedClient?

    init(connection: HTTPConnection) { self.connection = connection }
}

/// One closed-loop client: send, wait for the response, think, repeat until the segment ends.
final class ClosedClient {
    let id: Int
    let segment: ClosedSegment
    unowned let driver: LoopDriver
    var rng: SeededGenerator
    var connection: PooledConnection?
    var task: Scheduled<Void>?
    var done = false

    init(id: Int, segment: ClosedSegment, driver: LoopDriver) {
        self.id = id
        self.segment = segment
        self.driver = driver
        rng = SeededGenerator(seed: driver.context.workload.seed, stream: 1000 + UInt64(id))
    }

    func schedule(at ns: Int64) {
        guard !done else { return }
        if ns >= segment.endNs || driver.stopping {
            finish()
            return
        }
        task = driver.loop.assumeIsolated().scheduleTask(deadline: driver.deadline(ns)) { [self] in
            task = nil
            fire(intendedNs: ns)
        }
    }

    func fire(intendedNs: Int64) {
        guard !done, !driver.stopping else {
            finish()
            return
        }
        let context = driver.context
        let targetIndex = ArrivalSchedule.pickTarget(context.workload, using: &rng)
        let seq = context.nextClosedSeq.wrappingAdd(1, ordering: .relaxed).oldValue
        let request = InFlightRequest(seq: seq, targetIndex: targetIndex, intendedNs: intendedNs, sentNs: 0, client: id)
        if let connection, connection.request == nil {
            driver.send(request, on: connection)
            return
        }
        HTTPConnection.connect(on: driver.loop, to: context.target) { [self] result in
            switch result {
            case .success(let http):
                let pooled = PooledConnection(connection: http)
                pooled.client = self
                http.handler.onClose = { [unowned driver] reason in driver.connectionClosed(pooled, reason: reason) }
                http.handler.onResponse = { [unowned driver] response in driver.responseArrived(pooled, response) }
                connection = pooled
                if done || driver.stopping {
                    http.channel.close(promise: nil)
                    finish()
                } else {
                    driver.send(request, on: pooled)
                }
            case .failure(let error):
                let end = driver.nowNs()
                driver.markSent()
                driver.record(request, endNs: end, result: nil, error: "connect: \(error)")
                finished(request: request, endNs: end, failed: true, on: nil, keepAlive: false)
            }
        }
    }

    /// The client is ready again at `endNs` (when the response arrived): that is the next request's intended time
    /// with zero think time, so the generator's own bookkeeping between requests counts against it, as in wrk.
    func finished(request: InFlightRequest, endNs now: Int64, failed: Bool, on pooled: PooledConnection?, keepAlive: Bool) {
        if pooled == nil || !keepAlive { connection = nil }
        var next = now + Int64(segment.thinkSeconds * 1e9)
        if failed { next = max(next, now + Int64(driver.context.config.closedErrorBackoffSeconds * 1e9)) }
        if done || driver.stopping || next >= segment.endNs {
            finish()
        } else if next <= now {
            fire(intendedNs: now)
        } else {
            schedule(at: next)
        }
    }

    func stop() {
        task?.cancel()
        task = nil
        if connection?.request == nil { finish() }
    }

    func finish() {
        guard !done else { return }
        done = true
        task?.cancel()
        if let connection, connection.request == nil {
            connection.connection.handler.onClose = nil
            connection.connection.channel.close(promise: nil)
        }
        connection = nil
        driver.clientDone()
    }
}
