import Platform

import Foundation

/// One pool of interchangeable instances: the whole platform in the container model, one lambda in the lambda model.
/// The engine is the same for both; a pool's behaviour is data (slots, boot, on-demand start, keep-alive, autoscaler).
struct PoolSpec {
    var name: String
    var slots: Int
    /// Processor sharing among CPU-bound requests when set.
    var cores: Double?
    /// Seconds from launch to ready.
    var bootSeconds: Distribution
    var initialInstances: Int
    var initialReady: Bool
    var maxInstances: Int
    /// Starts an instance for each request that cannot be served or covered by a booting instance (lambda semantics).
    var startOnDemand: Bool
    /// Records requests that waited for their instance's boot as cold starts.
    var marksColdStarts: Bool
    var keepAlive: (any KeepAlivePolicy)?
    var autoscaler: (any Autoscaler)?
    var memoryMB: Int
    /// Per-invocation billing: run time rounded up to this many ms; nil bills instance time only.
    var billingGranularityMs: Double?
}

struct TargetService {
    var lambda: String
    var pool: Int
    var serviceMs: Distribution
    var cpuBound: Bool
}

struct EngineInput {
    var runID: Int64
    var workerName: String
    var pools: [PoolSpec]
    var targets: [TargetService]
    var responseBytes: Int
    var warmupNs: Int64
    var endNs: Int64
    var sampleIntervalNs: Int64 = 100_000_000
    /// Requests still unanswered this long after the end are recorded as failed (status 0) and the model stops.
    var drainLimitNs: Int64 = 3_600_000_000_000
    var seed: UInt64
    var openArrivals: [ScheduledArrival]
    var closedSegments: [ClosedSegment]
    /// Picks a target for a closed-loop client's next request.
    var pickTarget: (inout SeededGenerator) -> Int
}

struct EngineOutput {
    var requests: [RequestRow]
    var samples: [SampleRow]
    /// Per pool: seconds instances were alive (booting, busy or idle) until the end of the simulation.
    var instanceSeconds: [Double]
    var scalingLog: [String]
    var endNs: Int64
}

/// The discrete-event engine shared by the container and lambda models.
/// Requests queue per pool (at the load balancer / front end) and are dispatched to the least-loaded ready instance.
final class ServiceSimulator {
    private enum Event {
        case openArrival(target: Int)
        case clientSend(client: Int)
        case bootDone(instance: Int)
        /// Processor sharing: the soonest completion on an instance, superseded when its version changes.
        case completion(instance: Int, version: Int)
        /// Fixed-rate slots: one request finishes.
        case requestDone(instance: Int, request: Int)
        case idleExpiry(instance: Int, token: Int)
        case sample
        case autoscale(pool: Int)
    }

    private struct Active {
        var request: Int
        var remainingNs: Double
        var cpuBound: Bool
    }

    private struct Instance {
        var id: Int
        var pool: Int
        var createdNs: Int64
        var readyNs: Int64?
        var destroyedNs: Int64?
        var bootMs: Double
        /// Launched cold (not pre-provisioned): its first request pays the boot.
        var booted: Bool
        var draining = false
        var active: [Active] = []
        var cpuActive = 0
        var lastUpdateNs: Int64
        var version = 0
        var served = 0
        var idleToken = 0
        var period = InstancePeriodMetrics()
        var periodBusyNs: Double = 0
        var periodStartNs: Int64
    }

    private struct Request {
        var seq: Int64
        var target: Int
        var client: Int?
        var intendedNs: Int64
        var workNs: Double
        var startNs: Int64 = 0
        var instance = -1
        var cold = false
        var initMs: Double = 0
    }

    private struct Pool {
        var spec: PoolSpec
        var queue: [Int] = []
        var queueHead = 0
        var alive: [Int] = []
        var created = 0
        var destroyed = 0
        var booting = 0
        var bootRNG: SeededGenerator
        var waiting: Int { queue.count - queueHead }
    }

    private struct Client {
        var segment: ClosedSegment
        var rng: SeededGenerator
    }

    private var input: EngineInput
    private var events = EventQueue<Event>()
    private var pools: [Pool]
    private var instances: [Instance] = []
    private var requests: [Request] = []
    private var clients: [Client] = []
    private var serviceRNG: SeededGenerator
    private var rows: [RequestRow] = []
    private var samples: [SampleRow] = []
    private var scalingLog: [String] = []
    private var now: Int64 = 0
    private var inSystem = 0
    private var pendingSends = 0
    private var lastEndNs: Int64 = 0

    init(_ input: EngineInput) {
        self.input = input
        pools = input.pools.enumerated().map { index, spec in
            Pool(spec: spec, bootRNG: SeededGenerator(seed: input.seed, stream: 100 + UInt64(index)))
        }
        serviceRNG = SeededGenerator(seed: input.seed, stream: 90)
    }

    func run() -> EngineOutput {
        for index in pools.indices {
            for _ in 0..<pools[index].spec.initialInstances {
                launch(pool: index, ready: pools[index].spec.initialReady)
            }
            if let scaler = pools[index].spec.autoscaler {
                events.schedule(.autoscale(pool: index), atNs: Self.ns(seconds: scaler.periodSeconds))
            }
        }
        // Open arrivals are merged from the sorted list rather than heaped, keeping the heap small.
        var arrivals = input.openArrivals
        if zip(arrivals, arrivals.dropFirst()).contains(where: { $0.intendedNs > $1.intendedNs }) {
            arrivals = arrivals.enumerated().sorted { ($0.element.intendedNs, $0.offset) < ($1.element.intendedNs, $1.offset) }
                .map(\.element)
        }
        var nextArrival = 0
        pendingSends += arrivals.count
        for segment in input.closedSegments where segment.clients > 0 && segment.startNs < segment.endNs {
            for _ in 0..<segment.clients {
                let id = clients.count
                clients.append(Client(segment: segment, rng: SeededGenerator(seed: input.seed, stream: 10_000 + UInt64(id))))
                events.schedule(.clientSend(client: id), atNs: segment.startNs)
                pendingSends += 1
            }
        }
        events.schedule(.sample, atNs: 0)
        var finalSampleTaken = false
        let stopNs = input.endNs + input.drainLimitNs
        while true {
            let time: Int64
            let event: Event
            if nextArrival < arrivals.count, arrivals[nextArrival].intendedNs <= events.nextTimeNs ?? .max {
                time = arrivals[nextArrival].intendedNs
                event = .openArrival(target: arrivals[nextArrival].targetIndex)
                nextArrival += 1
            } else if let (heapTime, heapEvent) = events.pop() {
                time = heapTime
                event = heapEvent
            } else {
                break
            }
            if time > stopNs {
                now = stopNs
                recordUnfinished()
                takeSample()
                break
            }
            let drained = time > input.endNs && !busy
            if drained {
                guard case .sample = event, !finalSampleTaken else { break }
                finalSampleTaken = true
            }
            now = time
            handle(event)
            if drained { break }
        }
        let simulationEnd = max(input.endNs, lastEndNs)
        var instanceSeconds = Array(repeating: 0.0, count: pools.count)
        for instance in instances {
            let end = min(instance.destroyedNs ?? simulationEnd, simulationEnd)
            instanceSeconds[instance.pool] += Double(max(0, end - instance.createdNs)) / 1e9
        }
        rows.sort { $0.seq < $1.seq }
        return EngineOutput(
            requests: rows, samples: samples, instanceSeconds: instanceSeconds, scalingLog: scalingLog, endNs: simulationEnd)
    }

    private var busy: Bool { inSystem > 0 || pendingSends > 0 }

    /// Rows (status 0) for requests still queued or in service when the drain limit stops the model.
    private func recordUnfinished() {
        var unfinished: [(request: Int, instance: Int?)] = []
        for pool in pools { for index in pool.queueHead..<pool.queue.count { unfinished.append((pool.queue[index], nil)) } }
        for instance in instances where instance.destroyedNs == nil {
            for active in instance.active { unfinished.append((active.request, instance.id)) }
        }
        let limitSeconds = Double(input.drainLimitNs) / 1e9
        for (id, instance) in unfinished {
            let request = requests[id]
            let target = input.targets[request.target]
            let state = instance == nil ? "queued" : "in service"
            rows.append(
                RequestRow(
                    runID: input.runID, seq: request.seq, lambda: target.lambda, intendedNs: request.intendedNs,
                    sentNs: request.intendedNs, endNs: now, latencyMs: Double(now - request.intendedNs) / 1e6, status: 0,
                    bytes: 0, error: "model: still \(state) \(Int(limitSeconds)) s after the end of the run",
                    sandboxID: instance.map { "i-\($0)" }, worker: input.workerName,
                    warmup: request.intendedNs < input.warmupNs))
            lastEndNs = max(lastEndNs, now)
        }
        inSystem = 0
    }

    private static func ns(seconds: Double) -> Int64 { Int64((seconds * 1e9).rounded()) }

    // MARK: Events

    private func handle(_ event: Event) {
        switch event {
        case .openArrival(let target):
            pendingSends -= 1
            admit(target: target, client: nil)
        case .clientSend(let client):
            pendingSends -= 1
            let target = input.pickTarget(&clients[client].rng)
            admit(target: target, client: client)
        case .bootDone(let id):
            guard instances[id].destroyedNs == nil else { return }
            pools[instances[id].pool].booting -= 1
            instances[id].readyNs = now
            instances[id].lastUpdateNs = now
            instances[id].periodStartNs = now
            let pool = instances[id].pool
            dispatch(pool: pool)
            if instances[id].active.isEmpty { becameIdle(id) }
        case .completion(let id, let version):
            guard instances[id].version == version, instances[id].destroyedNs == nil else { return }
            complete(instance: id)
        case .requestDone(let id, let request):
            advance(id)
            guard let index = instances[id].active.firstIndex(where: { $0.request == request }) else { return }
            let done = instances[id].active.remove(at: index)
            if done.cpuBound { instances[id].cpuActive -= 1 }
            finish(request: request, instance: id)
            afterCompletion(id)
        case .idleExpiry(let id, let token):
            let instance = instances[id]
            guard instance.destroyedNs == nil, instance.active.isEmpty, instance.idleToken == token else { return }
            destroy(id)
        case .sample:
            takeSample()
            if now < input.endNs || busy { events.schedule(.sample, atNs: now + input.sampleIntervalNs) }
        case .autoscale(let pool):
            evaluateScaling(pool: pool)
            if now < input.endNs || busy, let scaler = pools[pool].spec.autoscaler {
                events.schedule(.autoscale(pool: pool), atNs: now + Self.ns(seconds: scaler.periodSeconds))
            }
        }
    }

    private func admit(target: Int, client: Int?) {
        let service = input.targets[target]
        let workMs = service.serviceMs.sample(using: &serviceRNG)
        let id = requests.count
        requests.append(
            Request(seq: Int64(id), target: target, client: client, intendedNs: now, workNs: (workMs * 1e6).rounded()))
        inSystem += 1
        let pool = service.pool
        pools[pool].spec.keepAlive?.recordInvocation(of: service.lambda, at: Double(now) / 1e9)
        pools[pool].queue.append(id)
        dispatch(pool: pool)
    }

    // MARK: Instances

    @discardableResult
    private func launch(pool: Int, ready: Bool) -> Int {
        let id = instances.count
        let bootMs = ready ? 0 : pools[pool].spec.bootSeconds.sample(using: &pools[pool].bootRNG) * 1000
        instances.append(
            Instance(
                id: id, pool: pool, createdNs: now, readyNs: ready ? now : nil, bootMs: bootMs, booted: !ready, lastUpdateNs: now,
                periodStartNs: now))
        pools[pool].alive.append(id)
        pools[pool].created += 1
        if !ready {
            pools[pool].booting += 1
            events.schedule(.bootDone(instance: id), atNs: now + Int64((bootMs * 1e6).rounded()))
        }
        return id
    }

    private func destroy(_ id: Int) {
        instances[id].destroyedNs = now
        instances[id].version += 1
        let pool = instances[id].pool
        if instances[id].readyNs == nil { pools[pool].booting -= 1 }
        pools[pool].alive.removeAll { $0 == id }
        pools[pool].destroyed += 1
    }

    private func becameIdle(_ id: Int) {
        let pool = instances[id].pool
        if instances[id].draining {
            destroy(id)
            return
        }
        guard let policy = pools[pool].spec.keepAlive else { return }
        let ttl = policy.keepAlive(for: pools[pool].spec.name, idleSince: Double(now) / 1e9)
        if ttl <= 0 {
            destroy(id)
            return
        }
        instances[id].idleToken += 1
        events.schedule(.idleExpiry(instance: id, token: instances[id].idleToken), atNs: now + Self.ns(seconds: ttl))
    }

    /// Rate at which each active request progresses, and the busy share of the instance.
    private func rates(_ instance: Instance) -> (cpuRate: Double, utilisation: Double) {
        let cpuBusy = Double(instance.cpuActive)
        if let cores = pools[instance.pool].spec.cores {
            return (cpuBusy > cores ? cores / cpuBusy : 1, min(cpuBusy, cores) / cores)
        }
        let slots = Double(pools[instance.pool].spec.slots)
        return (1, min(cpuBusy, slots) / slots)
    }

    private func advance(_ id: Int) {
        let elapsed = Double(now - instances[id].lastUpdateNs)
        instances[id].lastUpdateNs = now
        guard elapsed > 0, !instances[id].active.isEmpty else { return }
        let (cpuRate, utilisation) = rates(instances[id])
        instances[id].periodBusyNs += elapsed * utilisation
        // Slots run at a fixed rate: their completions are scheduled once, nothing to update.
        guard pools[instances[id].pool].spec.cores != nil else { return }
        for index in instances[id].active.indices {
            let rate = instances[id].active[index].cpuBound ? cpuRate : 1
            instances[id].active[index].remainingNs -= elapsed * rate
        }
    }

    private func scheduleCompletion(_ id: Int) {
        instances[id].version += 1
        guard !instances[id].active.isEmpty else { return }
        let (cpuRate, _) = rates(instances[id])
        var soonest = Double.infinity
        for active in instances[id].active {
            soonest = min(soonest, max(0, active.remainingNs) / (active.cpuBound ? cpuRate : 1))
        }
        let delay = Int64((soonest - 1e-6).rounded(.up))
        events.schedule(.completion(instance: id, version: instances[id].version), atNs: now + max(0, delay))
    }

    // MARK: Dispatch and completion

    private func dispatch(pool: Int) {
        while pools[pool].waiting > 0, let id = freeInstance(pool: pool) {
            let request = pools[pool].queue[pools[pool].queueHead]
            pools[pool].queueHead += 1
            start(request: request, on: id)
        }
        if pools[pool].queueHead > 1024 && pools[pool].queueHead * 2 > pools[pool].queue.count {
            pools[pool].queue.removeFirst(pools[pool].queueHead)
            pools[pool].queueHead = 0
        }
        guard pools[pool].spec.startOnDemand else { return }
        while pools[pool].waiting > pools[pool].booting && pools[pool].alive.count < pools[pool].spec.maxInstances {
            launch(pool: pool, ready: false)
        }
    }

    /// The ready instance with a free slot and the fewest active requests (lowest id on ties).
    private func freeInstance(pool: Int) -> Int? {
        let slots = pools[pool].spec.slots
        var best: Int?
        var bestLoad = Int.max
        for id in pools[pool].alive {
            let load = instances[id].active.count
            guard load < slots, load < bestLoad, instances[id].readyNs != nil, !instances[id].draining else { continue }
            best = id
            bestLoad = load
            if load == 0 { break }
        }
        return best
    }

    private func start(request id: Int, on instanceID: Int) {
        advance(instanceID)
        requests[id].startNs = now
        requests[id].instance = instanceID
        if instances[instanceID].served == 0, instances[instanceID].booted,
            pools[instances[instanceID].pool].spec.marksColdStarts
        {
            requests[id].cold = true
            requests[id].initMs = instances[instanceID].bootMs
        }
        instances[instanceID].served += 1
        instances[instanceID].idleToken += 1
        let cpuBound = input.targets[requests[id].target].cpuBound
        instances[instanceID].active.append(Active(request: id, remainingNs: requests[id].workNs, cpuBound: cpuBound))
        if cpuBound { instances[instanceID].cpuActive += 1 }
        if pools[instances[instanceID].pool].spec.cores == nil {
            let delay = Int64(requests[id].workNs.rounded(.up))
            events.schedule(.requestDone(instance: instanceID, request: id), atNs: now + delay)
        } else {
            scheduleCompletion(instanceID)
        }
    }

    private func complete(instance id: Int) {
        advance(id)
        let finished = instances[id].active.filter { $0.remainingNs <= 1e-3 }
        instances[id].active.removeAll { $0.remainingNs <= 1e-3 }
        instances[id].cpuActive -= finished.lazy.filter(\.cpuBound).count
        for active in finished { finish(request: active.request, instance: id) }
        scheduleCompletion(id)
        afterCompletion(id)
    }

    private func afterCompletion(_ id: Int) {
        dispatch(pool: instances[id].pool)
        if instances[id].active.isEmpty && instances[id].destroyedNs == nil { becameIdle(id) }
    }

    private func finish(request id: Int, instance instanceID: Int) {
        let request = requests[id]
        let target = input.targets[request.target]
        let spec = pools[target.pool].spec
        let latencyMs = Double(now - request.intendedNs) / 1e6
        let runMs = Double(now - request.startNs) / 1e6
        var billedMs: Double?
        if let granularity = spec.billingGranularityMs {
            billedMs = max(1, (runMs / granularity - 1e-9).rounded(.up)) * granularity
        }
        rows.append(
            RequestRow(
                runID: input.runID, seq: request.seq, lambda: target.lambda, intendedNs: request.intendedNs,
                sentNs: request.intendedNs, endNs: now, latencyMs: latencyMs, status: 200, bytes: input.responseBytes,
                cold: spec.marksColdStarts ? request.cold : nil, initMs: spec.marksColdStarts ? request.initMs : nil,
                runMs: runMs, billedMs: billedMs, sandboxID: "i-\(instanceID)", worker: input.workerName,
                warmup: request.intendedNs < input.warmupNs))
        instances[instanceID].period.requestCount += 1
        instances[instanceID].period.latencySumSeconds += latencyMs / 1000
        instances[instanceID].period.networkOutBytes += Double(input.responseBytes)
        inSystem -= 1
        lastEndNs = max(lastEndNs, now)
        if let client = request.client {
            let segment = clients[client].segment
            let next = now + Self.ns(seconds: segment.thinkSeconds)
            if next < segment.endNs {
                events.schedule(.clientSend(client: client), atNs: next)
                pendingSends += 1
            }
        }
    }

    // MARK: Samples and scaling

    private func takeSample() {
        for pool in pools {
            var running = 0, idle = 0, starting = 0
            for id in pool.alive {
                let instance = instances[id]
                if instance.readyNs == nil {
                    starting += 1
                } else if instance.active.isEmpty {
                    idle += 1
                } else {
                    running += 1
                }
            }
            samples.append(
                SampleRow(
                    runID: input.runID, tNs: now, lambda: pool.spec.name, running: running, idle: idle, paused: 0,
                    starting: starting, queued: pool.waiting, created: pool.created, destroyed: pool.destroyed,
                    memoryReservedMB: pool.alive.count * pool.spec.memoryMB))
        }
    }

    private func evaluateScaling(pool: Int) {
        guard var scaler = pools[pool].spec.autoscaler else { return }
        var observed: [InstancePeriodMetrics] = []
        for id in pools[pool].alive where instances[id].readyNs != nil {
            advance(id)
            let span = Double(now - instances[id].periodStartNs)
            var metrics = instances[id].period
            metrics.cpuPercent = span > 0 ? instances[id].periodBusyNs / span * 100 : 0
            if span > 0 { observed.append(metrics) }
            instances[id].period = InstancePeriodMetrics()
            instances[id].periodBusyNs = 0
            instances[id].periodStartNs = now
        }
        let capacity = pools[pool].alive.lazy.filter { !self.instances[$0].draining }.count
        let decision = scaler.evaluate(ScalingObservation(nowSeconds: Double(now) / 1e9, capacity: capacity, instances: observed))
        pools[pool].spec.autoscaler = scaler
        guard let decision else { return }
        let seconds = (Double(now) / 1e8).rounded() / 10
        scalingLog.append(
            "t=\(seconds)s \(pools[pool].spec.name): \(capacity) → \(decision.desiredCapacity) instances (\(decision.reason))")
        if decision.desiredCapacity > capacity {
            for _ in capacity..<decision.desiredCapacity { launch(pool: pool, ready: false) }
        } else {
            removeInstances(pool: pool, count: capacity - decision.desiredCapacity)
        }
    }

    /// Scale-in: idle instances first (newest first), then booting ones, then busy ones drain and stop when done.
    private func removeInstances(pool: Int, count: Int) {
        var remaining = count
        let candidates = pools[pool].alive.filter { !instances[$0].draining }.sorted { lhs, rhs in
            func rank(_ id: Int) -> Int {
                let instance = instances[id]
                if instance.readyNs == nil { return 1 }
                return instance.active.isEmpty ? 0 : 2
            }
            return rank(lhs) != rank(rhs) ? rank(lhs) < rank(rhs) : lhs > rhs
        }
        for id in candidates where remaining > 0 {
            remaining -= 1
            if instances[id].readyNs == nil || instances[id].active.isEmpty {
                destroy(id)
            } else {
                instances[id].draining = true
            }
        }
    }
}
