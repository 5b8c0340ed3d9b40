import Dispatch
import Foundation
import Synchronization

/// Where a run sends its load.
public enum BenchTarget: Sendable, Equatable, CustomStringConvertible {
    /// An embedded worker with the built-in apps, started for the run.
    case local
    /// Any OpenLambda-compatible endpoint.
    case url(String)
    /// A discrete-event model: "container" or "lambda".
    case model(String)

    public init(parsing text: String) throws {
        switch text {
        case "local": self = .local
        case "model:container": self = .model("container")
        case "model:lambda": self = .model("lambda")
        default:
            if text.hasPrefix("http://") {
                _ = try TargetURL(parsing: text)
                self = .url(text)
            } else {
                throw BenchRunError(
                    message: "--target '\(text)': expected local, http://HOST:PORT, model:container or model:lambda")
            }
        }
    }

    public var description: String {
        switch self {
        case .local: return "local"
        case .url(let url): return url
        case .model(let kind): return "model:\(kind)"
        }
    }

    public var isReal: Bool {
        if case .model = self { return false }
        return true
    }
}

public struct BenchRunError: Error, CustomStringConvertible, LocalizedError {
    public var message: String
    public init(message: String) { self.message = message }
    public var description: String { message }
    public var errorDescription: String? { message }
}

/// A running worker the harness started for a `local` run.
public struct LocalWorkerHandle: Sendable {
    public var url: String
    public var stop: @Sendable () async -> Void
    public init(url: String, stop: @escaping @Sendable () async -> Void) {
        self.url = url
        self.stop = stop
    }
}

/// How `spin` targets run on the real platform.
public enum SpinMode: String, Sendable, CaseIterable {
    /// `sleep` when the machine has fewer cores than the workload's clients, else as written.
    case auto
    /// As written in the workload file.
    case asWritten = "as-written"
    case cpu, sleep
}

public struct BenchRunOptions: Sendable {
    public var workloadPath: String
    public var target: BenchTarget
    public var databasePath: String
    /// Model parameter files (`container.yaml`, `lambda.yaml`); default `models/` beside the workload file.
    public var modelsDirectory: String?
    public var spinMode: SpinMode = .auto
    /// Print a live progress line on stderr.
    public var showProgress: Bool = true
    /// For `model:lambda`: fit cold-start times from this earlier real run's cold rows.
    public var coldStartsFromRun: Int64?
    /// Starts the embedded worker for `local`.
    public var localWorker: (@Sendable () async throws -> LocalWorkerHandle)?
    /// Load generator event-loop threads (default: one per core).
    public var generatorThreads: Int?
    /// Handle SIGINT/SIGTERM by stopping the run and marking it aborted.
    public var handleSignals: Bool = true

    public init(workloadPath: String, target: BenchTarget, databasePath: String) {
        self.workloadPath = workloadPath
        self.target = target
        self.databasePath = databasePath
    }
}

public struct BenchRunResult: Sendable {
    public var runID: Int64
    /// "complete", "aborted" or "failed".
    public var status: String
    public var notes: String
    public var requests: Int
}

/// Runs a workload against a target and records everything in the results database.
public enum BenchRunner {
    public static func run(_ options: BenchRunOptions) async throws -> BenchRunResult {
        var workload = try WorkloadParser.load(path: options.workloadPath)
        guard let bytes = FileManager.default.contents(atPath: options.workloadPath) else {
            throw BenchRunError(message: "\(options.workloadPath): cannot read file")
        }
        let baseDirectory = URL(fileURLWithPath: options.workloadPath).deletingLastPathComponent().path
        var notes: [String] = []
        let machine = MachineInfo.current()
        if options.target.isReal {
            if let note = applySpinMode(options.spinMode, to: &workload, cores: machine.cores) { notes.append(note) }
        }
        // Validate the schedule before touching the database (a bad trace must not leave a run behind).
        let arrivals = try ArrivalSchedule.openArrivals(for: workload, baseDirectory: baseDirectory)
        let segments = ArrivalSchedule.closedSegments(for: workload)
        let database = try ResultsDatabase(path: options.databasePath)
        var coldRows: [RequestRow] = []
        if let source = options.coldStartsFromRun {
            guard try database.run(id: source) != nil else { throw ResultsError.noSuchRun(source) }
            coldRows = try database.requests(runID: source).filter { $0.cold == true }
        }
        let record = RunRecord(
            workload: workload.name, workloadHash: SHA256Digest.hex(bytes),
            parameters: parametersJSON(workload, target: options.target, extra: [:]), target: options.target.description,
            gitRevision: machine.gitRevision, swiftletVersion: machine.swiftletVersion, cpuModel: machine.cpuModel,
            cores: machine.cores, memoryBytes: machine.memoryBytes, kernel: machine.kernel,
            started: Date().timeIntervalSince1970, notes: notes.joined(separator: "; "))
        let runID = try database.createRun(record)

        let signals = options.handleSignals ? SignalTrap() : nil
        defer { signals?.restore() }
        let status: String
        var requestCount = 0
        do {
            switch options.target {
            case .model(let kind):
                let outcome = try ModelRun.simulate(
                    workload, kind: kind, runID: runID, baseDirectory: baseDirectory,
                    modelsDirectory: options.modelsDirectory ?? (baseDirectory as NSString).appendingPathComponent("models"),
                    coldRows: coldRows)
                try database.insert(requests: outcome.requests)
                try database.insert(samples: outcome.samples)
                requestCount = outcome.requests.count
                if !outcome.notes.isEmpty { notes.append(outcome.notes) }
                try updateParameters(database, runID: runID, parameters: outcome.parametersJSON, workload: workload,
                    target: options.target)
                status = signals?.fired == true ? "aborted" : "complete"
            case .local, .url:
                var worker: LocalWorkerHandle?
                let url: String
                if case .url(let given) = options.target {
                    url = given
                } else {
                    guard let starter = options.localWorker else {
                        throw BenchRunError(message: "--target local: no embedded worker is available in this build")
                    }
                    worker = try await starter()
                    url = worker!.url
                }
                let outcome: (String, Int)
                do {
                    outcome = try await drive(
                        workload, arrivals: arrivals, segments: segments, runID: runID, url: url, database: database,
                        options: options, signals: signals)
                } catch {
                    await worker?.stop()
                    throw error
                }
                await worker?.stop()
                (status, requestCount) = outcome
            }
        } catch {
            let message = "\(error)"
            notes.append("failed: \(message)")
            try? database.finishRun(
                id: runID, status: "failed", ended: Date().timeIntervalSince1970, notes: notes.joined(separator: "; "))
            throw error
        }
        if status == "aborted" { notes.append("aborted by signal") }
        let joined = notes.joined(separator: "; ")
        try database.finishRun(id: runID, status: status, ended: Date().timeIntervalSince1970, notes: joined)
        return BenchRunResult(runID: runID, status: status, notes: joined, requests: requestCount)
    }

    static func drive(
        _ workload: Workload, arrivals: [ScheduledArrival], segments: [ClosedSegment], runID: Int64, url: String,
        database: ResultsDatabase, options: BenchRunOptions, signals: SignalTrap?
    ) async throws -> (String, Int) {
        let writer = ResultsWriter(database: database)
        var config = LoadGeneratorConfig(url: url)
        if let threads = options.generatorThreads { config.threads = threads }
        let generator = try LoadGenerator(
            workload: workload, arrivals: arrivals, segments: segments, runID: runID, config: config, writer: writer)
        signals?.onSignal { generator.stop() }
        let total = workload.warmupSeconds + workload.durationSeconds
        let progressTask = options.showProgress
            ? Task {
                var last = 0
                var lastTime = 0.0
                // A redrawn line on a terminal; a line every 5 s in logs.
                let period: UInt64 = isatty(2) != 0 ? 500_000_000 : 5_000_000_000
                while !Task.isCancelled {
                    try? await Task.sleep(nanoseconds: period)
                    if Task.isCancelled { break }
                    let progress = generator.progress()
                    let interval = progress.elapsedSeconds - lastTime
                    let rate = interval > 0 ? Double(progress.completed - last) / interval : 0
                    (last, lastTime) = (progress.completed, progress.elapsedSeconds)
                    ProgressLine.write(progress, total: total, rate: rate)
                }
            } : nil
        var failure: Error?
        do {
            try await generator.run()
        } catch {
            failure = error
        }
        progressTask?.cancel()
        if options.showProgress { ProgressLine.finish(generator.progress(), total: total) }
        do {
            try await writer.close()
        } catch {
            failure = failure ?? error
        }
        if let failure { throw failure }
        let status = generator.isStopped || signals?.fired == true ? "aborted" : "complete"
        return (status, writer.committed.requests)
    }

    /// Rewrites `"mode":"cpu"` in `spin` payloads to `sleep` when asked (or, in auto, when cores < clients); returns the note.
    static func applySpinMode(_ mode: SpinMode, to workload: inout Workload, cores: Int) -> String? {
        let clients = maxClients(workload)
        let target: String
        switch mode {
        case .asWritten: return nil
        case .cpu: target = "cpu"
        case .sleep: target = "sleep"
        case .auto:
            guard clients > cores else { return nil }
            target = "sleep"
        }
        var changed = false
        for index in workload.targets.indices where workload.targets[index].lambda == "spin" {
            let payload = workload.targets[index].payload
            guard let data = payload.data(using: .utf8),
                var object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any],
                let current = object["mode"] as? String, current != target
            else { continue }
            object["mode"] = target
            if let encoded = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) {
                workload.targets[index].payload = String(decoding: encoded, as: UTF8.self)
                changed = true
            }
        }
        guard changed else { return nil }
        if mode == .auto {
            return "spin mode sleep: \(cores) cores < \(clients) clients, so the handler waits instead of computing"
        }
        return "spin mode \(target) (forced by --spin-mode)"
    }

    static func maxClients(_ workload: Workload) -> Int {
        switch workload.arrival {
        case .closed(let clients, _): return clients
        case .phases(let phases): return phases.compactMap(\.clients).max() ?? 0
        case .open, .trace: return 0
        }
    }

    static func updateParameters(
        _ database: ResultsDatabase, runID: Int64, parameters: String, workload: Workload, target: BenchTarget
    ) throws {
        guard let data = parameters.data(using: .utf8), let model = try? JSONSerialization.jsonObject(with: data) else { return }
        try database.setParameters(runID: runID, parameters: parametersJSON(workload, target: target, extra: ["model": model]))
    }

    /// The resolved parameters recorded with the run (sorted keys: same workload ⇒ same text).
    public static func parametersJSON(_ workload: Workload, target: BenchTarget, extra: [String: Any]) -> String {
        var arrival: [String: Any] = [:]
        switch workload.arrival {
        case .closed(let clients, let think):
            arrival = ["model": "closed", "clients": clients, "think": think]
        case .open(let rate, let process):
            arrival = ["model": "open", "rate": rate, "process": process.rawValue]
        case .phases(let phases):
            arrival = [
                "model": "phases",
                "phases": phases.map { phase -> [String: Any] in
                    var entry: [String: Any] = ["duration": phase.durationSeconds]
                    if let rate = phase.rate {
                        entry["rate"] = rate
                        entry["to_rate"] = phase.toRate ?? rate
                        entry["process"] = phase.process.rawValue
                    }
                    if let clients = phase.clients {
                        entry["clients"] = clients
                        entry["think"] = phase.thinkSeconds
                    }
                    return entry
                },
            ]
        case .trace(let spec):
            arrival = [
                "model": "trace", "file": spec.file, "functions": spec.functions, "scale": spec.scale,
                "start_minute": spec.startMinute,
            ]
        }
        var object: [String: Any] = [
            "seed": workload.seed, "duration": workload.durationSeconds, "warmup": workload.warmupSeconds,
            "arrival": arrival, "target": target.description,
            "targets": workload.targets.map {
                ["lambda": $0.lambda, "weight": $0.weight, "method": $0.method, "path": $0.path, "payload": $0.payload]
            },
        ]
        for (key, value) in extra { object[key] = value }
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }
}

/// The live progress line on stderr.
enum ProgressLine {
    static func text(_ p: LoadGenProgress, total: Double, rate: Double) -> String {
        let instances = p.instances.map(String.init) ?? "-"
        return String(
            format: "%6.1f/%.0f s  completed %d  errors %d  in flight %d  %.0f req/s  p50 %.1f ms  p99 %.1f ms  instances %@",
            min(p.elapsedSeconds, total), total, p.completed, p.errors, p.inFlight, rate, p.p50Ms, p.p99Ms, instances)
    }

    static func write(_ p: LoadGenProgress, total: Double, rate: Double) {
        let line = text(p, total: total, rate: rate)
        let isTerminal = isatty(2) != 0
        FileHandle.standardError.write(Data((isTerminal ? "\r\u{1B}[K" + line : line + "\n").utf8))
    }

    static func finish(_ p: LoadGenProgress, total: Double) {
        let rate = p.elapsedSeconds > 0 ? Double(p.completed) / p.elapsedSeconds : 0
        let line = text(p, total: total, rate: rate) + " (average)"
        FileHandle.standardError.write(Data((isatty(2) != 0 ? "\r\u{1B}[K" + line + "\n" : line + "\n").utf8))
    }
}

/// Turns SIGINT/SIGTERM into a callback for the duration of a run, then restores the default handlers.
/// Owned by the run's task; only `SignalFlag` is shared with the signal handlers.
final class SignalTrap {
    let flag = SignalFlag()
    private var sources: [any DispatchSourceSignal] = []

    init() {
        for number in [SIGINT, SIGTERM] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            let flag = self.flag
            source.setEventHandler {
                FileHandle.standardError.write(
                    Data("\nstopping: keeping what was recorded so far (the run will be marked aborted)\n".utf8))
                flag.fire()
            }
            source.resume()
            sources.append(source)
        }
    }

    var fired: Bool { flag.fired }

    func onSignal(_ handler: @escaping @Sendable () -> Void) { flag.onFire(handler) }

    func restore() {
        for source in sources { source.cancel() }
        sources.removeAll()
        signal(SIGINT, SIG_DFL)
        signal(SIGTERM, SIG_DFL)
    }
}

final class SignalFlag: Sendable {
    private let state = Mutex<(fired: Bool, handlers: [@Sendable () -> Void])>((false, []))

    var fired: Bool { state.withLock { $0.fired } }

    func fire() {
        let handlers = state.withLock { state -> [@Sendable () -> Void] in
            state.fired = true
            return state.handlers
        }
        for handler in handlers { handler() }
    }

    func onFire(_ handler: @escaping @Sendable () -> Void) {
        let already = state.withLock { state -> Bool in
            state.handlers.append(handler)
            return state.fired
        }
        if already { handler() }
    }
}
