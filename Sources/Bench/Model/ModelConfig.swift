import Foundation

/// Parameters of the container model (`model:container`). Defaults and their sources: Workloads/models/README.md.
public struct ContainerModelConfig: Sendable, Equatable {
    /// Concurrent requests per instance (C).
    public var slots = 1
    /// When set, the instance has this many cores shared by its CPU-bound requests (processor sharing);
    /// `slots` still caps concurrency.
    public var cores: Double?
    /// Instance boot time, seconds (launch to first request served).
    public var bootSeconds: Distribution = .lognormal(median: 120, sigma: 0.25)
    /// Initial instances are up at t = 0 (an environment deployed before the run); false boots them at t = 0.
    public var startWarm = true
    /// Instances at t = 0; nil means the rule's min_instances.
    public var initialInstances: Int?
    public var memoryMB = 1024
    public var pricePerInstanceHour = 0.0104
    public var responseBytes = 200
    public var service = ServiceParameters()
    public var autoscalingEnabled = true
    public var rule = ScalingRule()

    public init() {}

    static let keys = [
        "slots", "cores", "boot_s", "start_warm", "initial_instances", "memory_mb", "price_per_instance_hour",
        "response_bytes", "service_ms", "cpu_bound", "autoscaling",
    ]
    static let autoscalingKeys = [
        "enabled", "metric", "statistic", "period_s", "breach_duration_s", "upper_threshold", "lower_threshold",
        "upper_increment", "lower_increment", "min_instances", "max_instances", "cooldown_s",
    ]

    /// Applies one layer's fields over the current values.
    mutating func apply(_ layer: ParameterLayer) throws {
        let reader = layer.reader()
        try reader.requireKnown(Self.keys)
        if let value = try reader.integer("slots", min: 1) { slots = value }
        if let value = try reader.number("cores", positive: true) { cores = value }
        if let value = try reader.distribution("boot_s") { bootSeconds = value }
        if let value = try reader.bool("start_warm") { startWarm = value }
        if let value = try reader.integer("initial_instances", min: 0) { initialInstances = value }
        if let value = try reader.integer("memory_mb", min: 0) { memoryMB = value }
        if let value = try reader.number("price_per_instance_hour", min: 0) { pricePerInstanceHour = value }
        if let value = try reader.integer("response_bytes", min: 0) { responseBytes = value }
        try service.apply(reader)
        guard let scaling = try reader.mapping("autoscaling") else { return }
        try scaling.requireKnown(Self.autoscalingKeys)
        if let value = try scaling.bool("enabled") { autoscalingEnabled = value }
        if let value = try scaling.string("metric", oneOf: ScalingMetric.allCases.map(\.rawValue)) {
            rule.metric = ScalingMetric(rawValue: value)!
        }
        if let value = try scaling.string("statistic", oneOf: ScalingStatistic.allCases.map(\.rawValue)) {
            rule.statistic = ScalingStatistic(rawValue: value)!
        }
        if let value = try scaling.number("period_s", positive: true) { rule.periodSeconds = value }
        if let value = try scaling.number("breach_duration_s", min: 0) { rule.breachDurationSeconds = value }
        if let value = try scaling.number("upper_threshold") { rule.upperThreshold = value }
        if let value = try scaling.number("lower_threshold") { rule.lowerThreshold = value }
        if let value = try scaling.integer("upper_increment") { rule.upperIncrement = value }
        if let value = try scaling.integer("lower_increment") { rule.lowerIncrement = value }
        if let value = try scaling.integer("min_instances", min: 0) { rule.minInstances = value }
        if let value = try scaling.integer("max_instances", min: 1) { rule.maxInstances = value }
        if let value = try scaling.number("cooldown_s", min: 0) { rule.cooldownSeconds = value }
        if rule.minInstances > rule.maxInstances {
            let field = scaling.has("min_instances") ? "min_instances" : "max_instances"
            throw scaling.error(field, "min_instances (\(rule.minInstances)) exceeds max_instances (\(rule.maxInstances))")
        }
        if rule.lowerThreshold > rule.upperThreshold {
            let field = scaling.has("lower_threshold") ? "lower_threshold" : "upper_threshold"
            throw scaling.error(field, "lower_threshold (\(rule.lowerThreshold)) exceeds upper_threshold (\(rule.upperThreshold))")
        }
    }

    var resolvedInitialInstances: Int { initialInstances ?? rule.minInstances }

    var jsonObject: [String: Any] {
        var object: [String: Any] = [
            "slots": slots, "boot_s": bootSeconds.jsonObject, "start_warm": startWarm,
            "initial_instances": resolvedInitialInstances, "memory_mb": memoryMB,
            "price_per_instance_hour": pricePerInstanceHour, "response_bytes": responseBytes,
            "autoscaling": [
                "enabled": autoscalingEnabled, "metric": rule.metric.rawValue, "statistic": rule.statistic.rawValue,
                "period_s": rule.periodSeconds, "breach_duration_s": rule.breachDurationSeconds,
                "upper_threshold": rule.upperThreshold, "lower_threshold": rule.lowerThreshold,
                "upper_increment": rule.upperIncrement, "lower_increment": rule.lowerIncrement,
                "min_instances": rule.minInstances, "max_instances": rule.maxInstances, "cooldown_s": rule.cooldownSeconds,
            ] as [String: Any],
        ]
        if let cores { object["cores"] = cores }
        service.addJSON(to: &object)
        return object
    }
}

/// Parameters of the lambda model (`model:lambda`). Defaults and their sources: Workloads/models/README.md.
public struct LambdaModelConfig: Sendable, Equatable {
    /// Instances per lambda at most (concurrent executions); requests beyond wait at the front end.
    public var concurrencyLimit = 1000
    /// Cold-start (sandbox + runtime init) time, milliseconds.
    public var coldStartMs: Distribution = .lognormal(median: 250, sigma: 0.5)
    /// Idle time-to-live of an instance (`FixedKeepAlive`), seconds.
    public var keepAliveSeconds: Double = 600
    public var memoryMB = 128
    public var billingGranularityMs: Double = 100
    public var pricePerGBSecond = 0.0000166667
    public var pricePerRequest = 0.0000002
    public var responseBytes = 200
    public var service = ServiceParameters()

    public init() {}

    static let keys = [
        "concurrency_limit", "cold_start_ms", "keep_alive_s", "memory_mb", "billing_granularity_ms",
        "price_per_gb_second", "price_per_request", "response_bytes", "service_ms", "cpu_bound",
    ]

    mutating func apply(_ layer: ParameterLayer) throws {
        let reader = layer.reader()
        try reader.requireKnown(Self.keys)
        if let value = try reader.integer("concurrency_limit", min: 1) { concurrencyLimit = value }
        if let value = try reader.distribution("cold_start_ms") { coldStartMs = value }
        if let value = try reader.number("keep_alive_s", min: 0) { keepAliveSeconds = value }
        if let value = try reader.integer("memory_mb", min: 1) { memoryMB = value }
        if let value = try reader.number("billing_granularity_ms", positive: true) { billingGranularityMs = value }
        if let value = try reader.number("price_per_gb_second", min: 0) { pricePerGBSecond = value }
        if let value = try reader.number("price_per_request", min: 0) { pricePerRequest = value }
        if let value = try reader.integer("response_bytes", min: 0) { responseBytes = value }
        try service.apply(reader)
    }

    var jsonObject: [String: Any] {
        var object: [String: Any] = [
            "concurrency_limit": concurrencyLimit, "cold_start_ms": coldStartMs.jsonObject, "keep_alive_s": keepAliveSeconds,
            "memory_mb": memoryMB, "billing_granularity_ms": billingGranularityMs,
            "price_per_gb_second": pricePerGBSecond, "price_per_request": pricePerRequest, "response_bytes": responseBytes,
        ]
        service.addJSON(to: &object)
        return object
    }
}

/// How long a request needs a processor (or a slot), shared by both models.
public struct ServiceParameters: Sendable, Equatable {
    /// Overrides the per-target service time, milliseconds; nil uses the `spin` payload's "ms".
    public var serviceMs: Distribution?
    /// Overrides whether requests use the CPU (matters with `cores`); nil uses the `spin` payload's mode.
    public var cpuBound: Bool?

    public init(serviceMs: Distribution? = nil, cpuBound: Bool? = nil) {
        self.serviceMs = serviceMs
        self.cpuBound = cpuBound
    }

    mutating func apply(_ reader: ParameterReader) throws {
        if let value = try reader.distribution("service_ms") { serviceMs = value }
        if let value = try reader.bool("cpu_bound") { cpuBound = value }
    }

    func addJSON(to object: inout [String: Any]) {
        if let serviceMs { object["service_ms"] = serviceMs.jsonObject }
        if let cpuBound { object["cpu_bound"] = cpuBound }
    }

    /// Service time and CPU use of one workload target.
    func resolve(for target: WorkloadTarget, origin: String) throws -> (milliseconds: Distribution, cpuBound: Bool) {
        let spin = Self.spinPayload(target.payload)
        guard let time = serviceMs ?? spin?.ms.map(Distribution.constant) else {
            throw ModelParameterError(
                location: origin, field: "service_ms",
                message: "no service time for lambda '\(target.lambda)': set service_ms (only spin payloads carry \"ms\")")
        }
        let usesCPU = (spin?.mode ?? "cpu") != "sleep"
        return (time, cpuBound ?? usesCPU)
    }

    /// `{"ms": 200, "mode": "cpu"|"sleep"}` from a payload template (placeholders read as 0).
    static func spinPayload(_ payload: String) -> (ms: Double?, mode: String?)? {
        let text = payload.replacingOccurrences(of: "{{seq}}", with: "0").replacingOccurrences(of: "{{client}}", with: "0")
        guard let data = text.data(using: .utf8),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        else { return nil }
        let ms = (object["ms"] as? NSNumber)?.doubleValue
        let mode = object["mode"] as? String
        if ms == nil && mode == nil { return nil }
        return (ms, mode)
    }
}
