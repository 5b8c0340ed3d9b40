/// The metric a scaling trigger watches (Elastic Beanstalk `aws:autoscaling:trigger` MeasureName).
public enum ScalingMetric: String, Sendable, CaseIterable {
    /// Requests completed by an instance during the period.
    case requestCount = "request_count"
    /// Mean latency (seconds) of the requests an instance completed during the period.
    case latency
    /// Busy share of an instance's cores (or slots) during the period, in percent.
    case cpu
    /// Response bytes an instance sent during the period.
    case networkOut = "network_out"
}

/// How per-instance values are combined into the one datapoint compared with the thresholds.
public enum ScalingStatistic: String, Sendable, CaseIterable {
    case average, minimum, maximum, sum
}

/// What one instance did during one evaluation period.
public struct InstancePeriodMetrics: Sendable, Equatable {
    public var requestCount: Int
    public var latencySumSeconds: Double
    public var cpuPercent: Double
    public var networkOutBytes: Double

    public init(requestCount: Int = 0, latencySumSeconds: Double = 0, cpuPercent: Double = 0, networkOutBytes: Double = 0) {
        self.requestCount = requestCount
        self.latencySumSeconds = latencySumSeconds
        self.cpuPercent = cpuPercent
        self.networkOutBytes = networkOutBytes
    }

    public func value(of metric: ScalingMetric) -> Double {
        switch metric {
        case .requestCount: return Double(requestCount)
        case .latency: return requestCount == 0 ? 0 : latencySumSeconds / Double(requestCount)
        case .cpu: return cpuPercent
        case .networkOut: return networkOutBytes
        }
    }
}

/// Input to an autoscaler at the end of an evaluation period.
public struct ScalingObservation: Sendable, Equatable {
    public var nowSeconds: Double
    /// Instances counted against min/max: running plus booting.
    public var capacity: Int
    /// One entry per instance that was in service during the period (booting instances report nothing).
    public var instances: [InstancePeriodMetrics]

    public init(nowSeconds: Double, capacity: Int, instances: [InstancePeriodMetrics]) {
        self.nowSeconds = nowSeconds
        self.capacity = capacity
        self.instances = instances
    }
}

public struct AutoscalerDecision: Sendable, Equatable {
    public var desiredCapacity: Int
    public var reason: String
}

/// Decides the number of instances from periodic observations. One protocol for the container model's
/// Elastic-Beanstalk-style triggers and for a worker-count autoscaler.
public protocol Autoscaler: Sendable {
    var name: String { get }
    /// Seconds between evaluations.
    var periodSeconds: Double { get }
    var minInstances: Int { get }
    var maxInstances: Int { get }
    /// Called at the end of each period; nil keeps the current capacity.
    mutating func evaluate(_ observation: ScalingObservation) -> AutoscalerDecision?
}

/// An Elastic Beanstalk trigger (`aws:autoscaling:trigger`) with its Auto Scaling group limits (`aws:autoscaling:asg`).
/// Defaults are the documented Elastic Beanstalk defaults (see Workloads/models/README.md).
public struct ScalingRule: Sendable, Equatable {
    public var metric: ScalingMetric = .networkOut
    public var statistic: ScalingStatistic = .average
    public var periodSeconds: Double = 300
    /// How long the datapoint must stay beyond a threshold before the trigger fires.
    public var breachDurationSeconds: Double = 300
    public var upperThreshold: Double = 6_000_000
    public var lowerThreshold: Double = 2_000_000
    public var upperIncrement: Int = 1
    public var lowerIncrement: Int = -1
    public var minInstances: Int = 1
    public var maxInstances: Int = 4
    /// No scaling activity within this many seconds of the previous one.
    public var cooldownSeconds: Double = 360

    public init() {}
}

/// Fires a rule's increments when its datapoint stays above the upper (below the lower) threshold for the breach duration.
public struct RuleBasedAutoscaler: Autoscaler {
    public var rule: ScalingRule
    private var upperBreachSince: Double?
    private var lowerBreachSince: Double?
    private var lastActivity: Double?

    public init(rule: ScalingRule) { self.rule = rule }

    public var name: String {
        "rule(\(rule.metric.rawValue) \(rule.statistic.rawValue) > \(rule.upperThreshold) ⇒ \(rule.upperIncrement), "
            + "< \(rule.lowerThreshold) ⇒ \(rule.lowerIncrement), period \(rule.periodSeconds)s, breach \(rule.breachDurationSeconds)s)"
    }
    public var periodSeconds: Double { rule.periodSeconds }
    public var minInstances: Int { rule.minInstances }
    public var maxInstances: Int { rule.maxInstances }

    /// The datapoint of a period, nil when no instance reported (no data).
    public func datapoint(_ instances: [InstancePeriodMetrics]) -> Double? {
        let values = instances.map { $0.value(of: rule.metric) }
        guard !values.isEmpty else { return nil }
        switch rule.statistic {
        case .average: return values.reduce(0, +) / Double(values.count)
        case .minimum: return values.min()
        case .maximum: return values.max()
        case .sum: return values.reduce(0, +)
        }
    }

    public mutating func evaluate(_ observation: ScalingObservation) -> AutoscalerDecision? {
        let now = observation.nowSeconds
        let periodStart = now - rule.periodSeconds
        guard let value = datapoint(observation.instances) else { return nil }
        if value > rule.upperThreshold {
            upperBreachSince = upperBreachSince ?? periodStart
        } else {
            upperBreachSince = nil
        }
        if value < rule.lowerThreshold {
            lowerBreachSince = lowerBreachSince ?? periodStart
        } else {
            lowerBreachSince = nil
        }
        if let last = lastActivity, now - last < rule.cooldownSeconds - 1e-9 { return nil }
        // A tiny tolerance absorbs floating-point error in period arithmetic.
        let breachDuration = rule.breachDurationSeconds
        func breached(_ since: Double?) -> Bool { since.map { now - $0 >= breachDuration - 1e-9 } ?? false }
        var increment = 0
        var reason = ""
        if breached(upperBreachSince) {
            increment = rule.upperIncrement
            reason = "\(rule.metric.rawValue) \(rule.statistic.rawValue) \(value) > \(rule.upperThreshold)"
        } else if breached(lowerBreachSince) {
            increment = rule.lowerIncrement
            reason = "\(rule.metric.rawValue) \(rule.statistic.rawValue) \(value) < \(rule.lowerThreshold)"
        }
        guard increment != 0 else { return nil }
        let desired = min(rule.maxInstances, max(rule.minInstances, observation.capacity + increment))
        guard desired != observation.capacity else { return nil }
        lastActivity = now
        upperBreachSince = nil
        lowerBreachSince = nil
        return AutoscalerDecision(desiredCapacity: desired, reason: reason)
    }
}
