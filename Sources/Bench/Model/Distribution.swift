import Foundation

/// A non-negative random quantity (a boot time, a cold start, a service time), in the unit of the
/// parameter that holds it. Sampling uses the caller's `SeededGenerator`, so runs are reproducible.
public enum Distribution: Sendable, Equatable, CustomStringConvertible {
    case constant(Double)
    case uniform(min: Double, max: Double)
    /// exp(N(ln median, sigma²)).
    case lognormal(median: Double, sigma: Double)
    case exponential(mean: Double)
    /// Draws one of the observed values uniformly (e.g. cold-start times of a real run).
    case empirical([Double])

    public func sample(using rng: inout SeededGenerator) -> Double {
        switch self {
        case .constant(let value):
            return value
        case .uniform(let low, let high):
            return low + (high - low) * rng.nextUnit()
        case .lognormal(let median, let sigma):
            return median * exp(sigma * Self.standardNormal(using: &rng))
        case .exponential(let mean):
            return rng.nextExponential(mean: mean)
        case .empirical(let values):
            return values[Int(rng.nextUnit() * Double(values.count))]
        }
    }

    public var mean: Double {
        switch self {
        case .constant(let value): return value
        case .uniform(let low, let high): return (low + high) / 2
        case .lognormal(let median, let sigma): return median * exp(sigma * sigma / 2)
        case .exponential(let mean): return mean
        case .empirical(let values): return values.reduce(0, +) / Double(values.count)
        }
    }

    public var description: String {
        switch self {
        case .constant(let value): return "constant(\(value))"
        case .uniform(let low, let high): return "uniform(\(low), \(high))"
        case .lognormal(let median, let sigma): return "lognormal(median \(median), sigma \(sigma))"
        case .exponential(let mean): return "exponential(mean \(mean))"
        case .empirical(let values): return "empirical(\(values.count) values, mean \(mean))"
        }
    }

    /// JSON-ready form, recorded with a run's parameters.
    var jsonObject: [String: Any] {
        switch self {
        case .constant(let value): return ["distribution": "constant", "value": value]
        case .uniform(let low, let high): return ["distribution": "uniform", "min": low, "max": high]
        case .lognormal(let median, let sigma): return ["distribution": "lognormal", "median": median, "sigma": sigma]
        case .exponential(let mean): return ["distribution": "exponential", "mean": mean]
        case .empirical(let values): return ["distribution": "empirical", "count": values.count, "mean": mean]
        }
    }

    /// Box–Muller transform.
    static func standardNormal(using rng: inout SeededGenerator) -> Double {
        let u1 = max(rng.nextUnit(), Double.leastNonzeroMagnitude)
        let u2 = rng.nextUnit()
        return sqrt(-2 * log(u1)) * cos(2 * Double.pi * u2)
    }
}
