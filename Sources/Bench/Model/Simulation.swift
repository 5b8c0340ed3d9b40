import Foundation
import Platform

public enum ModelKind: String, Sendable, CaseIterable {
    case container, lambda

    /// The run target name, e.g. "model:container".
    public var target: String { "model:\(rawValue)" }
}

public struct SimulationResult: Sendable {
    public var requests: [RequestRow]
    public var samples: [SampleRow]
    /// Resolved model parameters plus a `billing` object (`billed_cost_usd`, `billed_seconds`) and the scaling log.
    public var parametersJSON: String
    public var notes: String
    public var billedCostUSD: Double
    /// Instance-seconds (container) or billed invocation seconds (lambda).
    public var billedSeconds: Double
}

/// Runs a workload against a discrete-event model instead of a real worker, producing the same rows as a real run.
public enum Simulation {
    /// Runs the discrete-event model for the workload (arrivals from ArrivalSchedule; closed clients simulated), rows with runID.
    /// Model parameters: defaults, overridden by `<modelsDirectory>/<kind>.yaml` if present, overridden by the
    /// workload's `model:` section. Samples every 100 ms of simulated time.
    public static func run(
        _ workload: Workload, model: ModelKind, runID: Int64, baseDirectory: String, modelsDirectory: String,
        coldRows: [RequestRow] = []
    ) throws -> SimulationResult {
        let layers = try parameterLayers(for: workload, model: model, modelsDirectory: modelsDirectory)
        let arrivals = try ArrivalSchedule.openArrivals(for: workload, baseDirectory: baseDirectory)
        let segments = ArrivalSchedule.closedSegments(for: workload)
        return try run(
            workload, model: model, runID: runID, openArrivals: arrivals, closedSegments: segments, parameters: layers,
            coldRows: coldRows)
    }

    /// The same with explicit arrivals and parameter layers (applied in order over the defaults).
    /// `keepAlive` replaces the lambda model's `FixedKeepAlive(keep_alive_s)`.
    public static func run(
        _ workload: Workload, model: ModelKind, runID: Int64, openArrivals: [ScheduledArrival],
        closedSegments: [ClosedSegment], parameters: [ParameterLayer] = [], coldRows: [RequestRow] = [],
        keepAlive: (any KeepAlivePolicy)? = nil
    ) throws -> SimulationResult {
        guard !workload.targets.isEmpty else {
            throw ModelParameterError(location: "workload \(workload.name)", field: "targets", message: "no targets to simulate")
        }
        let origin = "workload \(workload.name)"
        let endNs = Int64(((workload.warmupSeconds + workload.durationSeconds) * 1e9).rounded())
        var input = EngineInput(
            runID: runID, workerName: model.target, pools: [], targets: [], responseBytes: 0,
            warmupNs: Int64((workload.warmupSeconds * 1e9).rounded()), endNs: endNs, seed: workload.seed,
            openArrivals: openArrivals, closedSegments: closedSegments,
            pickTarget: { rng in ArrivalSchedule.pickTarget(workload, using: &rng) })
        var parametersObject: [String: Any] = ["model": model.rawValue, "seed": String(workload.seed)]
        var notes: [String] = []
        let describeLambdas = Set(workload.targets.map(\.lambda)).sorted().joined(separator: ", ")

        switch model {
        case .container:
            var config = ContainerModelConfig()
            for layer in parameters { try config.apply(layer) }
            let initial = config.resolvedInitialInstances
            if initial > config.rule.maxInstances || initial < config.rule.minInstances {
                throw ModelParameterError(
                    location: origin, field: "initial_instances",
                    message: "\(initial) is outside autoscaling.min_instances…max_instances "
                        + "(\(config.rule.minInstances)…\(config.rule.maxInstances))")
            }
            input.responseBytes = config.responseBytes
            input.targets = try workload.targets.map { target in
                let service = try config.service.resolve(for: target, origin: origin)
                return TargetService(lambda: target.lambda, pool: 0, serviceMs: service.milliseconds, cpuBound: service.cpuBound)
            }
            input.pools = [
                PoolSpec(
                    name: "*", slots: config.slots, cores: config.cores, bootSeconds: config.bootSeconds,
                    initialInstances: config.resolvedInitialInstances, initialReady: config.startWarm,
                    maxInstances: config.rule.maxInstances, startOnDemand: false, marksColdStarts: false, keepAlive: nil,
                    autoscaler: config.autoscalingEnabled ? RuleBasedAutoscaler(rule: config.rule) : nil,
                    memoryMB: config.memoryMB, billingGranularityMs: nil)
            ]
            parametersObject["parameters"] = config.jsonObject
            let output = ServiceSimulator(input).run()
            let instanceSeconds = output.instanceSeconds.reduce(0, +)
            let cost = instanceSeconds / 3600 * config.pricePerInstanceHour
            let capacity = config.cores.map { "\(Self.format($0)) cores and \(config.slots) slot(s)" } ?? "\(config.slots) slot(s)"
            notes.append(
                "container model (\(describeLambdas)): \(config.resolvedInitialInstances) initial instance(s) with \(capacity) each, "
                    + "boot \(config.bootSeconds) s; \(output.scalingLog.count) scaling event(s); "
                    + "billed \(Self.format(instanceSeconds)) instance-s")
            return finish(
                output, parametersObject: parametersObject, notes: notes, cost: cost, billedSeconds: instanceSeconds,
                billingModel: "instance-seconds")

        case .lambda:
            var config = LambdaModelConfig()
            for layer in parameters { try config.apply(layer) }
            var coldStart = config.coldStartMs
            if !coldRows.isEmpty {
                let observed = coldRows.filter { $0.cold == true }.compactMap(\.initMs).filter { $0 >= 0 }
                guard !observed.isEmpty else {
                    throw ModelParameterError(
                        location: origin, field: "cold_start_ms",
                        message: "cannot fit cold starts: none of the \(coldRows.count) given rows is cold with an init time")
                }
                coldStart = .empirical(observed)
                notes.append("cold starts fitted from \(observed.count) cold rows (mean \(Self.format(coldStart.mean)) ms)")
            }
            let policy: any KeepAlivePolicy = keepAlive ?? FixedKeepAlive(seconds: config.keepAliveSeconds)
            input.responseBytes = config.responseBytes
            var poolIndex: [String: Int] = [:]
            for target in workload.targets where poolIndex[target.lambda] == nil {
                poolIndex[target.lambda] = input.pools.count
                input.pools.append(
                    PoolSpec(
                        name: target.lambda, slots: 1, cores: nil, bootSeconds: Self.milliseconds(toSeconds: coldStart),
                        initialInstances: 0, initialReady: false, maxInstances: config.concurrencyLimit,
                        startOnDemand: true, marksColdStarts: true, keepAlive: policy, autoscaler: nil,
                        memoryMB: config.memoryMB, billingGranularityMs: config.billingGranularityMs))
            }
            input.targets = try workload.targets.map { target in
                let service = try config.service.resolve(for: target, origin: origin)
                return TargetService(
                    lambda: target.lambda, pool: poolIndex[target.lambda]!, serviceMs: service.milliseconds,
                    cpuBound: service.cpuBound)
            }
            var object = config.jsonObject
            object["keep_alive_policy"] = policy.name
            if !coldRows.isEmpty { object["cold_start_ms"] = coldStart.jsonObject }
            parametersObject["parameters"] = object
            let output = ServiceSimulator(input).run()
            let billedSeconds = output.requests.reduce(0) { $0 + ($1.billedMs ?? 0) } / 1000
            let cost = billedSeconds * Double(config.memoryMB) / 1024 * config.pricePerGBSecond
                + Double(output.requests.count) * config.pricePerRequest
            let colds = output.requests.filter { $0.cold == true }.count
            notes.append(
                "lambda model (\(describeLambdas)): cold start \(coldStart) ms, keep-alive \(policy.name), "
                    + "\(colds) cold start(s); billed \(Self.format(billedSeconds)) s at \(config.memoryMB) MB")
            return finish(
                output, parametersObject: parametersObject, notes: notes, cost: cost, billedSeconds: billedSeconds,
                billingModel: "per-invocation")
        }
    }

    /// Parameter layers for a model: `<modelsDirectory>/<kind>.yaml` (if present), then the workload's `model.<kind>` section.
    public static func parameterLayers(for workload: Workload, model: ModelKind, modelsDirectory: String) throws
        -> [ParameterLayer]
    {
        var layers: [ParameterLayer] = []
        let path = (modelsDirectory as NSString).appendingPathComponent("\(model.rawValue).yaml")
        if let file = try ParameterLayer.load(path: path) { layers.append(file) }
        if let section = workload.modelParameters[model.rawValue] {
            let origin = "workload \(workload.name): model.\(model.rawValue)"
            guard case .mapping(let values) = section else {
                throw ModelParameterError(location: origin, field: "", message: "expected a mapping of parameters")
            }
            layers.append(ParameterLayer(origin: origin, values: values))
        }
        return layers
    }

    private static func finish(
        _ output: EngineOutput, parametersObject: [String: Any], notes: [String], cost: Double, billedSeconds: Double,
        billingModel: String
    ) -> SimulationResult {
        var object = parametersObject
        object["billing"] = ["model": billingModel, "billed_seconds": billedSeconds, "billed_cost_usd": cost]
        object["scaling_events"] = output.scalingLog
        object["simulated_end_s"] = Double(output.endNs) / 1e9
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
        var allNotes = notes
        allNotes.append(String(format: "billed cost $%.6f", cost))
        return SimulationResult(
            requests: output.requests, samples: output.samples, parametersJSON: String(decoding: data, as: UTF8.self),
            notes: allNotes.joined(separator: "; "), billedCostUSD: cost, billedSeconds: billedSeconds)
    }

    private static func milliseconds(toSeconds distribution: Distribution) -> Distribution {
        switch distribution {
        case .constant(let value): return .constant(value / 1000)
        case .uniform(let low, let high): return .uniform(min: low / 1000, max: high / 1000)
        case .lognormal(let median, let sigma): return .lognormal(median: median / 1000, sigma: sigma)
        case .exponential(let mean): return .exponential(mean: mean / 1000)
        case .empirical(let values): return .empirical(values.map { $0 / 1000 })
        }
    }

    static func format(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(format: "%.3f", value)
    }
}
