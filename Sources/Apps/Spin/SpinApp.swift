import Foundation
import Platform

/// Busy-loops (`"mode":"cpu"`) or waits (`"mode":"sleep"`, like a handler blocked on I/O) for `ms` milliseconds.
/// Body: `{"ms": 200, "mode": "cpu"}`; both fields optional (defaults 200 and cpu).
public struct SpinApp: SwiftApp {
    public static let name = "spin"
    public init() {}

    public struct Parameters: Decodable, Sendable {
        public var ms: Double?
        public var mode: String?
    }

    public func handle(_ request: AppRequest) async throws -> AppResponse {
        var parameters = Parameters(ms: nil, mode: nil)
        if !request.body.isEmpty {
            do {
                parameters = try JSONDecoder().decode(Parameters.self, from: Data(request.body))
            } catch {
                throw AppError(status: 400, "spin: body must be JSON like {\"ms\":200,\"mode\":\"cpu\"|\"sleep\"}: \(error)")
            }
        }
        let ms = parameters.ms ?? 200
        let mode = parameters.mode ?? "cpu"
        guard ms >= 0, ms <= 600_000 else { throw AppError(status: 400, "spin: ms must be between 0 and 600000, got \(ms)") }
        let start = ContinuousClock.now
        switch mode {
        case "cpu":
            let end = start + .nanoseconds(Int64(ms * 1_000_000))
            var x: UInt64 = 1
            while ContinuousClock.now < end {
                for _ in 0..<1000 { x = x &* 6364136223846793005 &+ 1442695040888963407 }
            }
            if x == 42 { print("") }  // keep the loop from being optimised away
        case "sleep":
            try await Task.sleep(for: .nanoseconds(Int64(ms * 1_000_000)))
        default:
            throw AppError(status: 400, "spin: mode must be \"cpu\" or \"sleep\", got \"\(mode)\"")
        }
        let elapsed = ContinuousClock.now - start
        let elapsedMs = Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
        let json = "{\"ms\":\(ms),\"mode\":\"\(mode)\",\"elapsed_ms\":\(String(format: "%.3f", elapsedMs))}"
        return AppResponse(status: 200, headers: [("Content-Type", "application/json")], body: Array(json.utf8))
    }
}
