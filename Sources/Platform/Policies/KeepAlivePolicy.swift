/// Decides how long an idle lambda instance stays alive before it is destroyed.
///
/// One protocol for the real worker and for the lambda model (`Bench/Model`): time is
/// passed in as seconds on the caller's clock (wall clock in the worker, simulated time in the model),
/// so a policy never reads a clock itself and stays deterministic.
public protocol KeepAlivePolicy: Sendable {
    /// A short name recorded with runs, e.g. `fixed(600s)`.
    var name: String { get }
    /// Called for every invocation of `lambda` at time `now` (seconds).
    mutating func recordInvocation(of lambda: String, at now: Double)
    /// Seconds an instance of `lambda` that became idle at `now` may stay idle; `0` destroys it at once.
    func keepAlive(for lambda: String, idleSince now: Double) -> Double
}

/// A fixed time-to-live after the last use (OpenLambda's and most providers' default behaviour).
public struct FixedKeepAlive: KeepAlivePolicy {
    public var seconds: Double
    public init(seconds: Double) { self.seconds = seconds }
    public var name: String { "fixed(\(Self.format(seconds))s)" }
    public mutating func recordInvocation(of lambda: String, at now: Double) {}
    public func keepAlive(for lambda: String, idleSince now: Double) -> Double { seconds }

    static func format(_ value: Double) -> String {
        value == value.rounded() ? String(Int(value)) : String(value)
    }
}
