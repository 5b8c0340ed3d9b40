import Foundation
import XCTest

@testable import Bench

enum ReportFixture {
    static func run(id: Int64, target: String, parameters: String = "{}", notes: String = "") -> RunRecord {
        RunRecord(
            id: id, workload: "fixture", workloadHash: "abc", parameters: parameters, target: target, gitRevision: "rev",
            swiftletVersion: "0.1", cpuModel: "cpu", cores: 2, memoryBytes: 1 << 30, kernel: "6.1", started: 1000,
            ended: 1010, status: "complete", notes: notes)
    }

    /// Ten successes of 1…10 ms sent 1 s apart from t = 1 s, one 500, one without response, one warm-up outlier.
    static func requests(runID: Int64, scale: Double = 1) -> [RequestRow] {
        var rows: [RequestRow] = []
        func add(_ t: Int64, _ latencyMs: Double, status: Int = 200, cold: Bool? = false, warmup: Bool = false) {
            let intended = t * 1_000_000_000
            rows.append(
                RequestRow(
                    runID: runID, seq: Int64(rows.count), lambda: "spin", intendedNs: intended, sentNs: intended,
                    endNs: intended + Int64(latencyMs * 1e6), latencyMs: latencyMs, status: status, bytes: 10,
                    error: status == 0 ? "connect: refused" : "", cold: cold, initMs: cold == true ? 50 : 0, runMs: 1,
                    billedMs: 100, warmup: warmup))
        }
        add(0, 1000, cold: true, warmup: true)
        for index in 1...10 { add(Int64(index), Double(index) * scale, cold: index == 1) }
        add(11, 3, status: 500)
        add(11, 4, status: 0, cold: nil)
        return rows
    }

    static func samples(runID: Int64) -> [SampleRow] {
        let counts = [(1, 0), (2, 1), (3, 0), (2, 0)]
        return counts.enumerated().flatMap { index, count in
            [
                SampleRow(
                    runID: runID, tNs: Int64(index) * 100_000_000, lambda: "spin", running: count.0, idle: count.1, paused: 0,
                    starting: 0, queued: 0, created: index + 1, destroyed: 0, memoryReservedMB: 128),
                SampleRow(
                    runID: runID, tNs: Int64(index) * 100_000_000, lambda: "echo", running: 0, idle: 1, paused: 0,
                    starting: 0, queued: 0, created: 1, destroyed: 0, memoryReservedMB: 128),
            ]
        }
    }
}

final class BenchReportTests: XCTestCase {
    func testSummaryNumbersFromFixture() throws {
        let run = ReportFixture.run(
            id: 3, target: "model:lambda", parameters: #"{"model":"lambda","billing":{"billed_cost_usd":0.25,"billed_seconds":2}}"#,
            notes: "spin mode sleep")
        let summary = BenchReport.summarize(
            run: run, requests: ReportFixture.requests(runID: 3), samples: ReportFixture.samples(runID: 3))
        XCTAssertEqual(summary.runID, 3)
        XCTAssertEqual(summary.completed, 10)
        XCTAssertEqual(summary.errors, 2)
        XCTAssertEqual(summary.errorsByStatus, ["0": 1, "500": 1])
        XCTAssertEqual(summary.coldStarts, 1, "the warm-up cold start is excluded")
        XCTAssertEqual(summary.measuredSeconds, 10.004, accuracy: 1e-9, "first intended 1 s, last end 11.004 s")
        XCTAssertEqual(summary.throughput, 10 / 10.004, accuracy: 1e-9)
        XCTAssertEqual(try XCTUnwrap(summary.p50Ms), 5, accuracy: 0.01)
        XCTAssertEqual(try XCTUnwrap(summary.p90Ms), 9, accuracy: 0.01)
        XCTAssertEqual(try XCTUnwrap(summary.p99Ms), 10, accuracy: 0.01)
        XCTAssertEqual(try XCTUnwrap(summary.maxMs), 10, accuracy: 0.01, "warm-up outlier of 1000 ms excluded")
        XCTAssertEqual(summary.peakInstances, 4, "3 spin + 1 echo at t = 0.1 s")
        XCTAssertEqual(summary.timeToPeakSeconds, 0.1)
        XCTAssertEqual(summary.instancesCreated, 5)
        XCTAssertEqual(summary.billedCostUSD, 0.25)
        XCTAssertEqual(summary.billedSeconds, 2)
        let real = BenchReport.summarize(run: ReportFixture.run(id: 4, target: "local"), requests: ReportFixture.requests(runID: 4), samples: [])
        XCTAssertNil(real.billedCostUSD)
        XCTAssertEqual(real.billedSeconds, 1.3, "sum of billed ms of all rows")
        XCTAssertNil(real.timeToPeakSeconds)
        XCTAssertEqual(real.peakInstances, 0)
    }

    func testTableIsSideBySideAndCSVAndJSONCarryTheSameNumbers() throws {
        let summaries = [
            BenchReport.summarize(
                run: ReportFixture.run(id: 1, target: "local", notes: "spin mode sleep: fewer cores than clients"),
                requests: ReportFixture.requests(runID: 1), samples: ReportFixture.samples(runID: 1)),
            BenchReport.summarize(
                run: ReportFixture.run(id: 2, target: "model:container"), requests: ReportFixture.requests(runID: 2, scale: 100),
                samples: []),
        ]
        let table = BenchReport.render(summaries, format: .table)
        let lines = table.split(separator: "\n").map(String.init)
        let targetLine = try XCTUnwrap(lines.first { $0.hasPrefix("target") })
        XCTAssertTrue(targetLine.contains("local") && targetLine.contains("model:container"))
        XCTAssertLessThan(targetLine.range(of: "local")!.lowerBound, targetLine.range(of: "model:container")!.lowerBound)
        let p50Line = try XCTUnwrap(lines.first { $0.hasPrefix("p50 (ms)") })
        XCTAssertTrue(p50Line.contains("5.00") && p50Line.contains("500.") , p50Line)
        XCTAssertTrue(lines.contains { $0.hasPrefix("errors by status") && $0.contains("0:1 500:1") })
        XCTAssertTrue(table.contains("notes, run 1: spin mode sleep: fewer cores than clients"))

        let csv = BenchReport.render(summaries, format: .csv).split(separator: "\n").map(String.init)
        XCTAssertEqual(csv.count, 3)
        XCTAssertTrue(csv[0].hasPrefix("run_id,workload,target,status,completed,throughput,p50_ms"))
        XCTAssertTrue(csv[1].hasPrefix("1,fixture,local,complete,10,"))
        XCTAssertTrue(csv[1].hasSuffix(",spin mode sleep: fewer cores than clients"))

        let json = BenchReport.render(summaries, format: .json)
        let decoded = try JSONDecoder().decode([BenchReport.RunSummary].self, from: Data(json.utf8))
        XCTAssertEqual(decoded, summaries)
    }

    func testReportOfASimulatedRun() throws {
        let workload = ModelFixture.spinWorkload(clients: 100, duration: 60)
        var values = ModelFixture.noScaling
        values["slots"] = .number(1)
        let result = try ModelFixture.run(workload, .container, values)
        let run = ReportFixture.run(id: 7, target: "model:container", parameters: result.parametersJSON, notes: result.notes)
        let summary = BenchReport.summarize(run: run, requests: result.requests, samples: result.samples)
        XCTAssertEqual(summary.completed, 399)
        XCTAssertEqual(try XCTUnwrap(summary.p50Ms), 20_000, accuracy: 20)
        XCTAssertEqual(summary.peakInstances, 1)
        XCTAssertEqual(summary.billedCostUSD!, result.billedCostUSD, accuracy: 1e-12)
    }
}

final class BenchPlotTests: XCTestCase {
    private func requireGnuplot() throws {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        if BenchPlot.findExecutable("gnuplot", searchPath: path) == nil {
            if ProcessInfo.processInfo.environment["CI"] != nil { XCTFail("gnuplot is required when CI is set"); return }
            let reason = "gnuplot not installed; install gnuplot-nox to run plot tests"
            print("SKIP: \(reason)")
            throw XCTSkip(reason)
        }
    }

    func testPlotsFromFixture() throws {
        try requireGnuplot()
        let directory = NSTemporaryDirectory() + "plots-\(UUID().uuidString)"
        let runs: [BenchPlot.RunData] = [
            (ReportFixture.run(id: 1, target: "local"), ReportFixture.requests(runID: 1), ReportFixture.samples(runID: 1)),
            (ReportFixture.run(id: 2, target: "model:\"container\""), ReportFixture.requests(runID: 2, scale: 100), ReportFixture.samples(runID: 2)),
        ]
        let written = try BenchPlot.plot(runs: runs, outDirectory: directory)
        for name in ["latency-cdf", "latency-time", "instances"] {
            for ext in ["png", "svg", "gp"] { XCTAssertTrue(written.contains("\(directory)/\(name).\(ext)"), "\(name).\(ext)") }
            let png = try Data(contentsOf: URL(fileURLWithPath: "\(directory)/\(name).png"))
            XCTAssertGreaterThan(png.count, 1000)
            XCTAssertEqual(Array(png.prefix(4)), [0x89, 0x50, 0x4E, 0x47], "PNG signature")
            let svg = try String(contentsOfFile: "\(directory)/\(name).svg", encoding: .utf8)
            XCTAssertTrue(svg.contains("<svg"))
        }
        let cdf = try String(contentsOfFile: "\(directory)/latency-cdf.gp", encoding: .utf8)
        XCTAssertTrue(cdf.contains("set logscale x"))
        XCTAssertTrue(cdf.contains("set terminal pngcairo"))
        XCTAssertTrue(cdf.contains("set terminal svg"))
        XCTAssertTrue(cdf.contains(#""latency-cdf-run1.dat" using 1:2 with lines lw 2 lc 1 title "run 1 local""#))
        XCTAssertTrue(cdf.contains(#""latency-cdf-run2.dat" using 1:2 with lines lw 2 lc 2 title "run 2 model:\"container\"""#))
        let cdfData = try String(contentsOfFile: "\(directory)/latency-cdf-run1.dat", encoding: .utf8)
        XCTAssertEqual(cdfData.split(separator: "\n").last, "10 1")
        XCTAssertEqual(cdfData.split(separator: "\n").dropFirst().first, "1 0.1")
        let instances = try String(contentsOfFile: "\(directory)/instances-run1.dat", encoding: .utf8)
        XCTAssertTrue(instances.contains("\n0.1 4 2 2 0 0 0\n"), instances)
    }

    func testMissingGnuplotIsAClearError() {
        let runs: [BenchPlot.RunData] = [(ReportFixture.run(id: 1, target: "local"), ReportFixture.requests(runID: 1), [])]
        XCTAssertThrowsError(try BenchPlot.plot(runs: runs, outDirectory: NSTemporaryDirectory(), searchPath: "/nonexistent")) {
            XCTAssertEqual("\($0)", "gnuplot not found on PATH; install gnuplot-nox")
        }
        XCTAssertThrowsError(try BenchPlot.plot(runs: [], outDirectory: NSTemporaryDirectory())) {
            XCTAssertEqual("\($0)", "nothing to plot: no runs given")
        }
    }
}
