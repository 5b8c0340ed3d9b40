import Foundation
import Histogram

public enum ReportFormat: String, Sendable, CaseIterable {
    case table, csv, json
}

/// Summaries of runs and their side-by-side rendering. Every number comes from the run's rows.
public enum BenchReport {
    public struct RunSummary: Sendable, Codable, Equatable {
        public var runID: Int64?
        public var workload: String
        public var target: String
        public var status: String
        /// Requests with a 2xx/3xx response (warm-up excluded).
        public var completed: Int
        /// Completed requests per second over the measured span.
        public var throughput: Double
        /// Seconds from the first intended send to the last response (warm-up excluded).
        public var measuredSeconds: Double
        public var p50Ms: Double?
        public var p90Ms: Double?
        public var p99Ms: Double?
        public var maxMs: Double?
        /// Failed requests by HTTP status ("0" = no response).
        public var errorsByStatus: [String: Int]
        public var errors: Int
        public var coldStarts: Int
        /// Instances created over the whole run (from samples).
        public var instancesCreated: Int
        /// Largest number of instances alive at one sample (summed over lambdas).
        public var peakInstances: Int
        /// Seconds since the run's start when the peak was first reached.
        public var timeToPeakSeconds: Double?
        /// Instance-seconds (container model) or billed invocation seconds.
        public var billedSeconds: Double?
        public var billedCostUSD: Double?
        public var notes: String
    }

    /// Summarises one run; warm-up requests are excluded, samples cover the whole run.
    public static func summarize(run: RunRecord, requests: [RequestRow], samples: [SampleRow]) -> RunSummary {
        let measured = requests.filter { !$0.warmup }
        let succeeded = measured.filter { (200..<400).contains($0.status) }
        var errorsByStatus: [String: Int] = [:]
        for row in measured where !(200..<400).contains(row.status) { errorsByStatus[String(row.status), default: 0] += 1 }

        var span = 0.0
        if let first = measured.map(\.intendedNs).min(), let last = measured.map(\.endNs).max(), last > first {
            span = Double(last - first) / 1e9
        }
        let percentiles = latencyPercentiles(succeeded.map(\.latencyMs))

        var instancesAt: [Int64: Int] = [:]
        var createdByLambda: [String: Int] = [:]
        for sample in samples {
            instancesAt[sample.tNs, default: 0] += sample.instances
            createdByLambda[sample.lambda] = max(createdByLambda[sample.lambda] ?? 0, sample.created)
        }
        let peak = instancesAt.values.max() ?? 0
        let peakTime = instancesAt.filter { $0.value == peak }.keys.min()

        let billing = billingFromParameters(run.parameters)
        let billedMs = requests.compactMap(\.billedMs)
        return RunSummary(
            runID: run.id, workload: run.workload, target: run.target, status: run.status, completed: succeeded.count,
            throughput: span > 0 ? Double(succeeded.count) / span : 0, measuredSeconds: span,
            p50Ms: percentiles?.p50, p90Ms: percentiles?.p90, p99Ms: percentiles?.p99, maxMs: percentiles?.max,
            errorsByStatus: errorsByStatus, errors: measured.count - succeeded.count,
            coldStarts: measured.filter { $0.cold == true }.count, instancesCreated: createdByLambda.values.reduce(0, +),
            peakInstances: peak, timeToPeakSeconds: samples.isEmpty ? nil : peakTime.map { Double($0) / 1e9 },
            billedSeconds: billing.seconds ?? (billedMs.isEmpty ? nil : billedMs.reduce(0, +) / 1000),
            billedCostUSD: billing.cost, notes: run.notes)
    }

    /// p50/p90/p99/max from an HdrHistogram of microseconds (3 significant digits).
    static func latencyPercentiles(_ latenciesMs: [Double]) -> (p50: Double, p90: Double, p99: Double, max: Double)? {
        guard !latenciesMs.isEmpty else { return nil }
        var histogram = Histogram<UInt64>(
            lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: .three)
        histogram.autoResize = true
        for latency in latenciesMs { _ = histogram.record(UInt64(max(0, (latency * 1000).rounded()))) }
        func ms(_ micros: UInt64) -> Double { Double(micros) / 1000 }
        return (
            ms(histogram.valueAtPercentile(50)), ms(histogram.valueAtPercentile(90)), ms(histogram.valueAtPercentile(99)),
            ms(histogram.max)
        )
    }

    /// `billing.billed_cost_usd` / `billing.billed_seconds` anywhere in the run's parameters JSON (written by the models).
    static func billingFromParameters(_ json: String) -> (cost: Double?, seconds: Double?) {
        guard let data = json.data(using: .utf8), let object = try? JSONSerialization.jsonObject(with: data) else {
            return (nil, nil)
        }
        func search(_ value: Any) -> [String: Any]? {
            guard let dictionary = value as? [String: Any] else { return nil }
            if let billing = dictionary["billing"] as? [String: Any], billing["billed_cost_usd"] != nil { return billing }
            for key in dictionary.keys.sorted() { if let found = search(dictionary[key]!) { return found } }
            return nil
        }
        guard let billing = search(object) else { return (nil, nil) }
        return ((billing["billed_cost_usd"] as? NSNumber)?.doubleValue, (billing["billed_seconds"] as? NSNumber)?.doubleValue)
    }

    public static func render(_ summaries: [RunSummary], format: ReportFormat) -> String {
        switch format {
        case .table: return table(summaries)
        case .csv: return csv(summaries)
        case .json:
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            let data = (try? encoder.encode(summaries)) ?? Data("[]".utf8)
            return String(decoding: data, as: UTF8.self) + "\n"
        }
    }

    /// Metric name and one formatted value per run, in display order.
    static func fields(_ summary: RunSummary) -> [(String, String)] {
        [
            ("run", summary.runID.map(String.init) ?? "-"),
            ("workload", summary.workload),
            ("target", summary.target),
            ("status", summary.status),
            ("completed", String(summary.completed)),
            ("throughput (req/s)", number(summary.throughput, digits: 1)),
            ("p50 (ms)", optional(summary.p50Ms, digits: 2)),
            ("p90 (ms)", optional(summary.p90Ms, digits: 2)),
            ("p99 (ms)", optional(summary.p99Ms, digits: 2)),
            ("max (ms)", optional(summary.maxMs, digits: 2)),
            ("errors", String(summary.errors)),
            ("errors by status", summary.errorsByStatus.isEmpty
                ? "-" : summary.errorsByStatus.keys.sorted().map { "\($0):\(summary.errorsByStatus[$0]!)" }.joined(separator: " ")),
            ("cold starts", String(summary.coldStarts)),
            ("instances created", String(summary.instancesCreated)),
            ("peak instances", String(summary.peakInstances)),
            ("time to peak (s)", optional(summary.timeToPeakSeconds, digits: 1)),
            ("billed (s)", optional(summary.billedSeconds, digits: 1)),
            ("billed cost (USD)", optional(summary.billedCostUSD, digits: 6)),
        ]
    }

    static func table(_ summaries: [RunSummary]) -> String {
        guard !summaries.isEmpty else { return "no runs\n" }
        let columns = summaries.map(fields)
        let names = columns[0].map(\.0)
        let nameWidth = names.map(\.count).max() ?? 0
        let widths = columns.map { column in column.map(\.1.count).max() ?? 0 }
        var lines: [String] = []
        for (row, name) in names.enumerated() {
            var line = pad(name, nameWidth)
            for (index, column) in columns.enumerated() { line += "  " + pad(column[row].1, widths[index], right: row > 3) }
            lines.append(line)
        }
        let notes = summaries.filter { !$0.notes.isEmpty }
        if !notes.isEmpty {
            lines.append("")
            for summary in notes { lines.append("notes, run \(summary.runID.map(String.init) ?? "-"): \(summary.notes)") }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    static func csv(_ summaries: [RunSummary]) -> String {
        let header = [
            "run_id", "workload", "target", "status", "completed", "throughput", "p50_ms", "p90_ms", "p99_ms", "max_ms",
            "errors", "errors_by_status", "cold_starts", "instances_created", "peak_instances", "time_to_peak_s",
            "billed_s", "billed_cost_usd", "notes",
        ]
        var lines = [header.joined(separator: ",")]
        for summary in summaries {
            let values: [String] = [
                summary.runID.map(String.init) ?? "", summary.workload, summary.target, summary.status,
                String(summary.completed), number(summary.throughput, digits: 3), csvNumber(summary.p50Ms),
                csvNumber(summary.p90Ms), csvNumber(summary.p99Ms), csvNumber(summary.maxMs), String(summary.errors),
                summary.errorsByStatus.keys.sorted().map { "\($0):\(summary.errorsByStatus[$0]!)" }.joined(separator: " "),
                String(summary.coldStarts), String(summary.instancesCreated), String(summary.peakInstances),
                csvNumber(summary.timeToPeakSeconds), csvNumber(summary.billedSeconds), csvNumber(summary.billedCostUSD),
                summary.notes,
            ]
            lines.append(values.map(csvField).joined(separator: ","))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    private static func csvField(_ text: String) -> String {
        guard text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" }) else { return text }
        return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    private static func csvNumber(_ value: Double?) -> String { value.map { number($0, digits: 6) } ?? "" }

    private static func optional(_ value: Double?, digits: Int) -> String { value.map { number($0, digits: digits) } ?? "-" }

    static func number(_ value: Double, digits: Int) -> String { String(format: "%.\(digits)f", value) }

    private static func pad(_ text: String, _ width: Int, right: Bool = false) -> String {
        let padding = String(repeating: " ", count: max(0, width - text.count))
        return right ? padding + text : text + padding
    }
}
