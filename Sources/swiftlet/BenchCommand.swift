import Apps
import ArgumentParser
import Bench
import Foundation
import Platform

/// `swiftlet bench`: run workloads, report and plot results.
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Run workloads against the platform or a model, and report and plot the recorded results.",
        subcommands: [BenchRunCommand.self, BenchReportCommand.self, BenchPlotCommand.self, BenchElasticityCommand.self])

    static let defaultDatabase = "Results/results.sqlite"

    /// Starts an embedded worker with the built-in apps in a fresh temporary directory.
    static let localWorker: @Sendable () async throws -> LocalWorkerHandle = {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("swiftlet-bench-\(UUID().uuidString)").path
        var config = WorkerConfig()
        config.port = 0
        config.logLevel = "warning"
        let worker = try await EmbeddedWorker.start(directory: directory, config: config, apps: BuiltinApps.all)
        return LocalWorkerHandle(url: worker.url) {
            await worker.stop()
            try? FileManager.default.removeItem(atPath: directory)
        }
    }

    static func loadRuns(_ ids: [Int64], database path: String) throws -> [BenchPlot.RunData] {
        guard FileManager.default.fileExists(atPath: path) else {
            throw ValidationError("no results database at \(path) (run `swiftlet bench run` first or pass --db)")
        }
        let database = try ResultsDatabase(path: path)
        return try ids.map { id in
            guard let run = try database.run(id: id) else { throw ResultsError.noSuchRun(id) }
            return (run, try database.requests(runID: id), try database.samples(runID: id))
        }
    }

    static func report(_ ids: [Int64], database: String, format: ReportFormat) throws -> String {
        let summaries = try loadRuns(ids, database: database).map {
            BenchReport.summarize(run: $0.0, requests: $0.1, samples: $0.2)
        }
        return BenchReport.render(summaries, format: format)
    }

    static func runOptions(
        workload: String, target: String, database: String, spinMode: String, models: String?, coldFrom: Int64?,
        noProgress: Bool
    ) throws -> BenchRunOptions {
        guard let mode = SpinMode(rawValue: spinMode) else {
            throw ValidationError(
                "--spin-mode '\(spinMode)': expected one of \(SpinMode.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        var options = BenchRunOptions(workloadPath: workload, target: try BenchTarget(parsing: target), databasePath: database)
        options.spinMode = mode
        options.modelsDirectory = models
        options.coldStartsFromRun = coldFrom
        options.showProgress = !noProgress
        options.localWorker = localWorker
        return options
    }
}

struct BenchRunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run", abstract: "Run a workload file against a target and record every request in SQLite.")

    @Argument(help: "Workload file (see Workloads/README.md).") var workload: String
    @Option(help: "local (embedded worker), http://HOST:PORT (any OpenLambda-compatible endpoint), model:container or model:lambda.")
    var target: String = "local"
    @Option(help: "Results database.") var db: String = BenchCommand.defaultDatabase
    @Option(name: .customLong("spin-mode"), help: "auto (sleep when cores < clients), as-written, cpu or sleep.")
    var spinMode: String = "auto"
    @Option(help: "Directory of model parameter files (default: models/ beside the workload).") var models: String?
    @Option(name: .customLong("cold-from"), help: "model:lambda: fit cold-start times from this run's cold requests.")
    var coldFrom: Int64?
    @Flag(name: .customLong("no-progress"), help: "Do not print the live progress line.") var noProgress = false
    @Option(help: "Event-loop threads of the load generator (default: one per core).") var threads: Int?

    func run() async throws {
        var options = try BenchCommand.runOptions(
            workload: workload, target: target, database: db, spinMode: spinMode, models: models, coldFrom: coldFrom,
            noProgress: noProgress)
        if let threads {
            guard threads >= 1 else { throw ValidationError("--threads must be at least 1, got \(threads)") }
            options.generatorThreads = threads
        }
        let result = try await BenchRunner.run(options)
        print("run \(result.runID): \(result.status), \(result.requests) requests recorded in \(db)")
        if !result.notes.isEmpty { print("notes: \(result.notes)") }
        print(try BenchCommand.report([result.runID], database: db, format: .table), terminator: "")
        if result.status == "aborted" { throw ExitCode(130) }
    }
}

struct BenchReportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report", abstract: "Side-by-side summary of runs (latency percentiles, throughput, cold starts, cost).")

    @Argument(help: "Run ids.") var runs: [Int64]
    @Option(help: "table, csv or json.") var format: String = "table"
    @Option(help: "Results database.") var db: String = BenchCommand.defaultDatabase

    func validate() throws {
        if runs.isEmpty { throw ValidationError("give at least one run id") }
        if ReportFormat(rawValue: format) == nil {
            throw ValidationError("--format '\(format)': expected one of table, csv, json")
        }
    }

    func run() async throws {
        print(try BenchCommand.report(runs, database: db, format: ReportFormat(rawValue: format)!), terminator: "")
    }
}

struct BenchPlotCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plot", abstract: "gnuplot figures (PNG and SVG): latency CDF, latency over time, instances over time.")

    @Argument(help: "Run ids (overlaid).") var runs: [Int64]
    @Option(help: "Output directory (default: Results/<first run id>/).") var out: String?
    @Option(help: "Results database.") var db: String = BenchCommand.defaultDatabase

    func validate() throws {
        if runs.isEmpty { throw ValidationError("give at least one run id") }
    }

    func run() async throws {
        let data = try BenchCommand.loadRuns(runs, database: db)
        let directory = out ?? "Results/\(runs.map(String.init).joined(separator: "-"))"
        for path in try BenchPlot.plot(runs: data, outDirectory: directory) { print(path) }
    }
}

struct BenchElasticityCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "elasticity",
        abstract: "The headline experiment: Workloads/elasticity.yaml on the real platform and on model:container, compared.")

    @Option(help: "Workload file.") var workload: String = "Workloads/elasticity.yaml"
    @Option(help: "The real side: local or http://HOST:PORT.") var target: String = "local"
    @Option(help: "Results database.") var db: String = BenchCommand.defaultDatabase
    @Option(help: "Plot directory (default: Results/<real run id>/).") var out: String?
    @Option(name: .customLong("spin-mode"), help: "auto (sleep when cores < clients), as-written, cpu or sleep.")
    var spinMode: String = "auto"
    @Flag(name: .customLong("no-progress"), help: "Do not print the live progress line.") var noProgress = false

    func run() async throws {
        if case .model = try BenchTarget(parsing: target) {
            throw ValidationError("--target '\(target)': the real side must be local or a URL")
        }
        let real = try await BenchRunner.run(
            BenchCommand.runOptions(
                workload: workload, target: target, database: db, spinMode: spinMode, models: nil, coldFrom: nil,
                noProgress: noProgress))
        print("real run \(real.runID): \(real.status)")
        if real.status == "aborted" { throw ExitCode(130) }
        let model = try await BenchRunner.run(
            BenchCommand.runOptions(
                workload: workload, target: "model:container", database: db, spinMode: spinMode, models: nil,
                coldFrom: nil, noProgress: true))
        print("model run \(model.runID): \(model.status)")
        print(try BenchCommand.report([real.runID, model.runID], database: db, format: .table), terminator: "")
        let directory = out ?? "Results/\(real.runID)"
        let data = try BenchCommand.loadRuns([real.runID, model.runID], database: db)
        for path in try BenchPlot.plot(runs: data, outDirectory: directory) { print(path) }
    }
}
