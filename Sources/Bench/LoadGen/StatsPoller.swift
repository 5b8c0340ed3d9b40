import Foundation
import NIOCore

/// Polls the target's `GET /stats` every sample interval and records one `SampleRow` per lambda.
/// Stops polling for the run when the target answers with anything but JSON stats (e.g. 404 from a plain OpenLambda worker).
final class StatsPoller {
    let loop: EventLoop
    let context: GeneratorContext
    var connection: HTTPConnection?
    var connecting = false
    var inFlight = false
    var disabled = false
    var task: Scheduled<Void>?
    var failures = 0

    init(loop: EventLoop, context: GeneratorContext) {
        self.loop = loop
        self.context = context
    }

    func start(uptimeStart: UInt64) {
        tick()
    }

    func stop() {
        disabled = true
        task?.cancel()
        task = nil
        connection?.handler.onClose = nil
        connection?.channel.close(promise: nil)
        connection = nil
    }

    private func tick() {
        guard !disabled else { return }
        poll()
        let interval = Int64(context.config.sampleIntervalSeconds * 1e9)
        task = loop.assumeIsolated().scheduleTask(in: .nanoseconds(interval)) { [self] in tick() }
    }

    private func poll() {
        guard !inFlight, !connecting else { return }
        guard let connection else {
            connecting = true
            HTTPConnection.connect(on: loop, to: context.target) { [self] result in
                connecting = false
                switch result {
                case .success(let http):
                    if disabled {
                        http.channel.close(promise: nil)
                        return
                    }
                    http.handler.collectBody = true
                    http.handler.onResponse = { [self] response in received(response) }
                    http.handler.onClose = { [self] _ in
                        connection = nil
                        inFlight = false
                    }
                    connection = http
                    poll()
                case .failure:
                    failed()
                }
            }
            return
        }
        inFlight = true
        connection.handler.send(
            EncodedRequest(method: "GET", uri: "\(context.target.prefix)/stats", host: context.target.hostHeader, body: nil))
    }

    private func failed() {
        failures += 1
        if failures >= 50 { disabled = true }
    }

    private func received(_ response: HTTPResult) {
        inFlight = false
        let now = context.nowNs()
        guard response.status == 200, let body = response.body,
            let samples = Self.parse(body: Data(body.readableBytesView), runID: context.runID, tNs: now)
        else {
            // No usable /stats on this target: sample nothing rather than guess.
            if response.status == 404 || response.status == 405 || response.status == 200 { stop() } else { failed() }
            return
        }
        context.writer.add(samples)
        let instances = samples.reduce(0) { $0 + $1.instances }
        context.stats.withLock { $0.instances = instances }
    }

    /// Samples from a Swiftlet `/stats` body; nil when the body is not in that format.
    static func parse(body: Data, runID: Int64, tNs: Int64) -> [SampleRow]? {
        guard let object = try? JSONSerialization.jsonObject(with: body) as? [String: Any],
            let lambdas = object["lambdas"] as? [String: Any]
        else { return nil }
        func int(_ value: Any?) -> Int {
            if let number = value as? NSNumber { return number.intValue }
            if let number = value as? Int { return number }
            if let number = value as? Double { return Int(number) }
            return 0
        }
        return lambdas.keys.sorted().compactMap { name in
            guard let stats = lambdas[name] as? [String: Any] else { return nil }
            return SampleRow(
                runID: runID, tNs: tNs, lambda: name, running: int(stats["running"]), idle: int(stats["idle"]),
                paused: int(stats["paused"]), starting: int(stats["starting"]), queued: int(stats["queued"]),
                created: int(stats["sandboxes_created"]), destroyed: int(stats["sandboxes_destroyed"]),
                memoryReservedMB: int(stats["memory_reserved_mb"]))
        }
    }
}
