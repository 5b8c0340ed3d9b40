import Foundation

public enum BenchPlotError: Error, CustomStringConvertible, Equatable {
    case gnuplotMissing
    case noRuns
    case cannotWrite(path: String, reason: String)
    case gnuplotFailed(script: String, status: Int32, output: String)

    public var description: String {
        switch self {
        case .gnuplotMissing: return "gnuplot not found on PATH; install gnuplot-nox"
        case .noRuns: return "nothing to plot: no runs given"
        case .cannotWrite(let path, let reason): return "cannot write \(path): \(reason)"
        case .gnuplotFailed(let script, let status, let output):
            return "gnuplot failed on \(script) (exit \(status)): \(output.trimmingCharacters(in: .whitespacesAndNewlines))"
        }
    }
}

/// gnuplot figures of one or more runs: data files and editable .gp scripts next to the PNG and SVG they produce.
public enum BenchPlot {
    public typealias RunData = (RunRecord, [RequestRow], [SampleRow])

    /// Writes latency CDF (runs overlaid), latency over time, instances over time as PNG (pngcairo) and SVG + the .gp scripts
    /// and .dat files into outDirectory; returns written paths. Throws a clear error when gnuplot is missing.
    /// `searchPath` replaces $PATH when looking for gnuplot.
    public static func plot(runs: [RunData], outDirectory: String, searchPath: String? = nil) throws -> [String] {
        guard !runs.isEmpty else { throw BenchPlotError.noRuns }
        guard let gnuplot = findExecutable("gnuplot", searchPath: searchPath ?? ProcessInfo.processInfo.environment["PATH"] ?? "")
        else { throw BenchPlotError.gnuplotMissing }
        do {
            try FileManager.default.createDirectory(atPath: outDirectory, withIntermediateDirectories: true)
        } catch {
            throw BenchPlotError.cannotWrite(path: outDirectory, reason: error.localizedDescription)
        }
        var written: [String] = []
        func write(_ name: String, _ text: String) throws {
            let path = (outDirectory as NSString).appendingPathComponent(name)
            do {
                try text.write(toFile: path, atomically: true, encoding: .utf8)
            } catch {
                throw BenchPlotError.cannotWrite(path: path, reason: error.localizedDescription)
            }
            written.append(path)
        }

        // One colour per run across all figures.
        var cdfSeries: [(file: String, title: String, color: Int)] = []
        var timeSeries: [(file: String, title: String, color: Int)] = []
        var instanceSeries: [(file: String, title: String, color: Int)] = []
        for (index, (run, requests, samples)) in runs.enumerated() {
            let key = run.id.map { "run\($0)" } ?? "run-\(index + 1)"
            let title = "\(run.id.map { "run \($0)" } ?? "run \(index + 1)") \(run.target)"
            let latencies = requests.filter { !$0.warmup && (200..<400).contains($0.status) }.map(\.latencyMs).sorted()
            if !latencies.isEmpty {
                try write("latency-cdf-\(key).dat", cdfData(latencies))
                cdfSeries.append(("latency-cdf-\(key).dat", title, index + 1))
                try write("latency-time-\(key).dat", latencyOverTimeData(requests))
                timeSeries.append(("latency-time-\(key).dat", title, index + 1))
            }
            if !samples.isEmpty {
                try write("instances-\(key).dat", instancesData(samples))
                instanceSeries.append(("instances-\(key).dat", title, index + 1))
            }
        }

        var scripts: [String] = []
        if !cdfSeries.isEmpty {
            let plots = cdfSeries.map { "\(quote($0.file)) using 1:2 with lines lw 2 lc \($0.color) title \(quote($0.title))" }
            try write(
                "latency-cdf.gp",
                script(
                    name: "latency-cdf", title: "Latency CDF",
                    settings: [
                        "set logscale x", "set xlabel \"latency (ms)\"", "set ylabel \"fraction of requests\"",
                        "set yrange [0:1]", "set key bottom right",
                    ], plots: plots))
            scripts.append("latency-cdf")
        }
        if !timeSeries.isEmpty {
            var plots: [String] = []
            for series in timeSeries {
                plots.append(
                    "\(quote(series.file)) using 1:2 with lines lw 2 lc \(series.color) title \(quote(series.title + " p50"))")
                plots.append(
                    "\(quote(series.file)) using 1:3 with lines lw 1 dt 2 lc \(series.color) title \(quote(series.title + " p99"))")
            }
            try write(
                "latency-time.gp",
                script(
                    name: "latency-time", title: "Latency over time (by intended send time)",
                    settings: [
                        "set xlabel \"time since start (s)\"", "set ylabel \"latency (ms)\"", "set logscale y",
                        "set key below",
                    ], plots: plots))
            scripts.append("latency-time")
        }
        if !instanceSeries.isEmpty {
            var plots: [String] = []
            for series in instanceSeries {
                plots.append(
                    "\(quote(series.file)) using 1:2 with steps lw 2 lc \(series.color) title \(quote(series.title + " instances"))")
                plots.append(
                    "\(quote(series.file)) using 1:3 with steps lw 1 dt 2 lc \(series.color) title \(quote(series.title + " running"))")
            }
            try write(
                "instances.gp",
                script(
                    name: "instances", title: "Instances over time",
                    settings: [
                        "set xlabel \"time since start (s)\"", "set ylabel \"instances\"", "set yrange [0:*]",
                        "set offsets 0, 0, graph 0.05, 0", "set key below",
                    ], plots: plots))
            scripts.append("instances")
        }

        for name in scripts {
            try runGnuplot(gnuplot, script: "\(name).gp", in: outDirectory)
            for ext in ["png", "svg"] { written.append((outDirectory as NSString).appendingPathComponent("\(name).\(ext)")) }
        }
        return written
    }

    /// A script that draws the same plot to PNG and then SVG; rerun with `gnuplot NAME.gp` in its directory.
    static func script(name: String, title: String, settings: [String], plots: [String]) -> String {
        var lines = [
            "# \(title). Data: the .dat files next to this script. Regenerate with: gnuplot \(name).gp",
            "set title \(quote(title))",
            "set grid",
        ]
        lines += settings
        lines += [
            "set terminal pngcairo noenhanced size 1000,600 font \",11\"",
            "set output \(quote(name + ".png"))",
            "plot " + plots.joined(separator: ", \\\n     "),
            "set terminal svg noenhanced size 1000,600 dynamic font \",11\"",
            "set output \(quote(name + ".svg"))",
            "replot",
            "unset output",
        ]
        return lines.joined(separator: "\n") + "\n"
    }

    /// Latency (ms) and cumulative fraction, at most about 2000 points; latencies clamped above 0 for the log axis.
    static func cdfData(_ sorted: [Double]) -> String {
        var lines = ["# latency_ms fraction"]
        let count = sorted.count
        let step = max(1, count / 2000)
        var index = 0
        while index < count {
            lines.append("\(format(max(sorted[index], 0.001))) \(format(Double(index + 1) / Double(count)))")
            index += step
        }
        if (count - 1) % step != 0 { lines.append("\(format(max(sorted[count - 1], 0.001))) 1") }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Per time bucket (≥ 100 ms, at most about 600 buckets): p50, p99 and max latency of the requests sent in it.
    static func latencyOverTimeData(_ requests: [RequestRow]) -> String {
        let rows = requests.filter { (200..<400).contains($0.status) }
        var lines = ["# t_s p50_ms p99_ms max_ms count (bucketed by intended send time; warm-up included)"]
        guard let last = rows.map(\.intendedNs).max() else { return lines.joined(separator: "\n") + "\n" }
        let width = max(Int64(100_000_000), (last + 1) / 600 + 1)
        var buckets: [Int64: [Double]] = [:]
        for row in rows { buckets[row.intendedNs / width, default: []].append(row.latencyMs) }
        for bucket in buckets.keys.sorted() {
            let values = buckets[bucket]!.sorted()
            func percentile(_ p: Double) -> Double { values[min(values.count - 1, Int((p * Double(values.count)).rounded(.up)) - 1)] }
            let t = Double(bucket * width) / 1e9
            lines.append(
                "\(format(t)) \(format(max(percentile(0.5), 0.001))) \(format(max(percentile(0.99), 0.001))) "
                    + "\(format(max(values.last!, 0.001))) \(values.count)")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Instances summed over lambdas at each sample time.
    static func instancesData(_ samples: [SampleRow]) -> String {
        var byTime: [Int64: (instances: Int, running: Int, idle: Int, starting: Int, paused: Int, queued: Int)] = [:]
        for sample in samples {
            var entry = byTime[sample.tNs] ?? (0, 0, 0, 0, 0, 0)
            entry.instances += sample.instances
            entry.running += sample.running
            entry.idle += sample.idle
            entry.starting += sample.starting
            entry.paused += sample.paused
            entry.queued += sample.queued
            byTime[sample.tNs] = entry
        }
        var lines = ["# t_s instances running idle starting paused queued"]
        for t in byTime.keys.sorted() {
            let entry = byTime[t]!
            lines.append(
                "\(format(Double(t) / 1e9)) \(entry.instances) \(entry.running) \(entry.idle) \(entry.starting) "
                    + "\(entry.paused) \(entry.queued)")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    static func findExecutable(_ name: String, searchPath: String) -> String? {
        for directory in searchPath.split(separator: ":") where !directory.isEmpty {
            let candidate = (String(directory) as NSString).appendingPathComponent(name)
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    private static func runGnuplot(_ executable: String, script: String, in directory: String) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = [script]
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        do {
            try process.run()
        } catch {
            throw BenchPlotError.gnuplotFailed(script: script, status: -1, output: error.localizedDescription)
        }
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw BenchPlotError.gnuplotFailed(
                script: script, status: process.terminationStatus, output: String(decoding: data, as: UTF8.self))
        }
    }

    /// A double-quoted gnuplot string.
    static func quote(_ text: String) -> String {
        "\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }

    private static func format(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(format: "%.6g", value)
    }
}
