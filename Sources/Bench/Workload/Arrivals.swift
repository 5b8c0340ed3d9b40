import Foundation

/// One open-loop request: when it should be sent and to which target.
public struct ScheduledArrival: Sendable, Equatable {
    /// Nanoseconds since the run's start.
    public var intendedNs: Int64
    /// Index into `Workload.targets`.
    public var targetIndex: Int
    /// The closed-loop client, nil for open-loop arrivals.
    public var client: Int?

    public init(intendedNs: Int64, targetIndex: Int, client: Int? = nil) {
        self.intendedNs = intendedNs
        self.targetIndex = targetIndex
        self.client = client
    }
}

/// A stretch of time during which `clients` closed-loop clients are active.
public struct ClosedSegment: Sendable, Equatable {
    public var startNs: Int64
    public var endNs: Int64
    public var clients: Int
    public var thinkSeconds: Double

    public init(startNs: Int64, endNs: Int64, clients: Int, thinkSeconds: Double) {
        self.startNs = startNs
        self.endNs = endNs
        self.clients = clients
        self.thinkSeconds = thinkSeconds
    }
}

/// Turns a workload's arrival model into a schedule. Same workload + same seed ⇒ same schedule.
public enum ArrivalSchedule {
    /// RNG streams, so arrival times do not depend on how targets are picked and vice versa.
    static let timeStream: UInt64 = 1
    static let targetStream: UInt64 = 2

    /// Warm-up + duration, in nanoseconds.
    public static func totalNs(_ workload: Workload) -> Int64 {
        seconds(workload.warmupSeconds + workload.durationSeconds)
    }

    /// Open-loop arrivals (open, open phases incl. ramps, trace) over warm-up + duration, sorted. Deterministic per workload seed.
    public static func openArrivals(for workload: Workload, baseDirectory: String) throws -> [ScheduledArrival] {
        let end = workload.warmupSeconds + workload.durationSeconds
        var rng = SeededGenerator(seed: workload.seed, stream: timeStream)
        var times: [Double] = []
        switch workload.arrival {
        case .closed:
            return []
        case .open(let rate, let process):
            appendRamp(from: 0, duration: end, rate: rate, toRate: rate, process: process, limit: end, rng: &rng, into: &times)
        case .phases(let phases):
            var start = 0.0
            for (index, phase) in phases.enumerated() where start < end {
                // The last phase continues until the end of the run.
                let isLast = index == phases.count - 1
                let duration = isLast ? max(phase.durationSeconds, end - start) : phase.durationSeconds
                if let rate = phase.rate {
                    let toRate = phase.toRate ?? rate
                    if isLast && duration > phase.durationSeconds {
                        appendRamp(
                            from: start, duration: phase.durationSeconds, rate: rate, toRate: toRate,
                            process: phase.process, limit: end, rng: &rng, into: &times)
                        let tail = start + phase.durationSeconds
                        appendRamp(
                            from: tail, duration: end - tail, rate: toRate, toRate: toRate, process: phase.process,
                            limit: end, rng: &rng, into: &times)
                    } else {
                        appendRamp(
                            from: start, duration: duration, rate: rate, toRate: toRate, process: phase.process,
                            limit: end, rng: &rng, into: &times)
                    }
                }
                start += phase.durationSeconds
            }
        case .trace(let spec):
            let path = spec.file.hasPrefix("/") ? spec.file : (baseDirectory as NSString).appendingPathComponent(spec.file)
            let trace = try AzureTrace.load(path: path)
            let counts = try trace.perMinuteCounts(functions: spec.functions, file: path)
            var minute = spec.startMinute - 1
            var start = 0.0
            while minute < counts.count && start < end {
                let expected = Double(counts[minute]) * spec.scale
                var n = Int(expected.rounded(.down))
                if rng.nextUnit() < expected - Double(n) { n += 1 }
                var offsets = (0..<n).map { _ in rng.nextUnit() * 60 }
                offsets.sort()
                for offset in offsets where start + offset < end { times.append(start + offset) }
                minute += 1
                start += 60
            }
        }
        times.sort()
        var picker = SeededGenerator(seed: workload.seed, stream: targetStream)
        return times.map { ScheduledArrival(intendedNs: seconds($0), targetIndex: pickTarget(workload, using: &picker)) }
    }

    /// Closed-loop segments (closed model, closed phases) in time order.
    public static func closedSegments(for workload: Workload) -> [ClosedSegment] {
        let end = workload.warmupSeconds + workload.durationSeconds
        switch workload.arrival {
        case .closed(let clients, let think):
            return [ClosedSegment(startNs: 0, endNs: seconds(end), clients: clients, thinkSeconds: think)]
        case .phases(let phases):
            var segments: [ClosedSegment] = []
            var start = 0.0
            for (index, phase) in phases.enumerated() where start < end {
                let isLast = index == phases.count - 1
                let phaseEnd = isLast ? end : min(end, start + phase.durationSeconds)
                if let clients = phase.clients {
                    segments.append(
                        ClosedSegment(
                            startNs: seconds(start), endNs: seconds(phaseEnd), clients: clients,
                            thinkSeconds: phase.thinkSeconds))
                }
                start += phase.durationSeconds
            }
            return segments
        case .open, .trace:
            return []
        }
    }

    /// Picks a target index by weight (deterministic given the generator).
    public static func pickTarget(_ workload: Workload, using rng: inout SeededGenerator) -> Int {
        let targets = workload.targets
        guard targets.count > 1 else { return 0 }
        let total = targets.reduce(0) { $0 + $1.weight }
        var point = rng.nextUnit() * total
        for (index, target) in targets.enumerated() {
            point -= target.weight
            if point < 0 { return index }
        }
        return targets.count - 1
    }

    static func seconds(_ value: Double) -> Int64 { Int64((value * 1e9).rounded()) }

    /// Arrivals of a rate ramping linearly from `rate` to `toRate` over `duration`, starting at `from`.
    /// Poisson: unit-rate events in cumulative-intensity space mapped back through the inverse of Λ(t) = r0·t + (r1−r0)·t²/(2D).
    static func appendRamp(
        from: Double, duration: Double, rate: Double, toRate: Double, process: ArrivalProcess, limit: Double,
        rng: inout SeededGenerator, into times: inout [Double]
    ) {
        guard duration > 0, rate > 0 || toRate > 0 else { return }
        let a = (toRate - rate) / (2 * duration)
        let b = rate
        let total = b * duration + a * duration * duration
        func inverse(_ lambda: Double) -> Double {
            if abs(a) < 1e-12 { return lambda / b }
            return (-b + (b * b + 4 * a * lambda).squareRoot()) / (2 * a)
        }
        var cumulative = process == .constant ? 0.0 : rng.nextExponential(mean: 1)
        while cumulative < total {
            let t = from + inverse(cumulative)
            if t >= limit { break }
            times.append(t)
            cumulative += process == .constant ? 1 : rng.nextExponential(mean: 1)
        }
    }
}

/// An Azure Functions 2019 invocation trace: `HashOwner,HashApp,HashFunction,Trigger,1,2,...,1440`,
/// one row per function, one column per minute of the day with that minute's invocation count.
public struct AzureTrace: Sendable, Equatable {
    public struct Row: Sendable, Equatable {
        public var owner: String
        public var app: String
        public var function: String
        public var trigger: String
        public var counts: [Int]
    }

    public var rows: [Row]

    public static func load(path: String) throws -> AzureTrace {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw WorkloadError(file: path, line: nil, field: "", message: "cannot read trace file")
        }
        return try parse(String(decoding: data, as: UTF8.self), file: path)
    }

    public static func parse(_ text: String, file: String) throws -> AzureTrace {
        var lines = text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).map(String.init)
        while lines.last?.isEmpty == true { lines.removeLast() }
        guard let header = lines.first else {
            throw WorkloadError(file: file, line: 1, field: "header", message: "empty trace file")
        }
        let columns = header.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        let fixed = ["HashOwner", "HashApp", "HashFunction", "Trigger"]
        guard columns.count > 4, Array(columns.prefix(4)) == fixed else {
            throw WorkloadError(
                file: file, line: 1, field: "header", message: "expected HashOwner,HashApp,HashFunction,Trigger,1,2,...")
        }
        for (offset, column) in columns.dropFirst(4).enumerated() where column != String(offset + 1) {
            throw WorkloadError(
                file: file, line: 1, field: "header", message: "expected minute column \(offset + 1), found '\(column)'")
        }
        let minutes = columns.count - 4
        var rows: [Row] = []
        for (index, line) in lines.enumerated().dropFirst() where !line.isEmpty {
            let fields = line.split(separator: ",", omittingEmptySubsequences: false).map {
                $0.trimmingCharacters(in: .whitespaces)
            }
            guard fields.count == columns.count else {
                throw WorkloadError(
                    file: file, line: index + 1, field: "",
                    message: "expected \(columns.count) comma-separated fields, found \(fields.count)")
            }
            var counts: [Int] = []
            counts.reserveCapacity(minutes)
            for (offset, field) in fields.dropFirst(4).enumerated() {
                guard let count = Int(field), count >= 0 else {
                    throw WorkloadError(
                        file: file, line: index + 1, field: "minute \(offset + 1)",
                        message: "expected a non-negative integer, found '\(field)'")
                }
                counts.append(count)
            }
            rows.append(Row(owner: fields[0], app: fields[1], function: fields[2], trigger: fields[3], counts: counts))
        }
        return AzureTrace(rows: rows)
    }

    /// Summed counts per minute over the selected functions (all when `functions` is empty).
    public func perMinuteCounts(functions: [String], file: String) throws -> [Int] {
        let selected = functions.isEmpty ? rows : rows.filter { functions.contains($0.function) }
        if let missing = functions.first(where: { name in !rows.contains { $0.function == name } }) {
            throw WorkloadError(file: file, line: nil, field: "trace.functions", message: "no row with HashFunction '\(missing)'")
        }
        let minutes = rows.first?.counts.count ?? 0
        var sums = [Int](repeating: 0, count: minutes)
        for row in selected {
            for (minute, count) in row.counts.enumerated() { sums[minute] += count }
        }
        return sums
    }
}
