import Foundation
import XCTest

@testable import Bench

final class WorkloadParserTests: XCTestCase {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    func parseError(_ text: String, file: String = "Workloads/x.yaml") -> String {
        do {
            _ = try WorkloadParser.parse(text, file: file)
            return "no error"
        } catch {
            return "\(error)"
        }
    }

    func testElasticityWorkloadParses() throws {
        let path = Self.packageRoot.appendingPathComponent("Workloads/elasticity.yaml").path
        let workload = try WorkloadParser.load(path: path)
        XCTAssertEqual(workload.name, "elasticity")
        XCTAssertEqual(workload.arrival, .closed(clients: 100, thinkSeconds: 0))
        XCTAssertEqual(workload.durationSeconds, 60)
        XCTAssertEqual(workload.warmupSeconds, 0)
        XCTAssertEqual(workload.seed, 42)
        XCTAssertEqual(workload.targets.count, 1)
        XCTAssertEqual(workload.targets[0].lambda, "spin")
        XCTAssertEqual(workload.targets[0].method, "POST")
        XCTAssertEqual(workload.targets[0].payload, #"{"mode":"cpu","ms":200}"#)
    }

    func testEveryShippedWorkloadParsesAndSchedules() throws {
        let directory = Self.packageRoot.appendingPathComponent("Workloads")
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".yaml") }
        XCTAssertGreaterThanOrEqual(files.count, 4)
        for file in files {
            let workload = try WorkloadParser.load(path: directory.appendingPathComponent(file).path)
            let arrivals = try ArrivalSchedule.openArrivals(for: workload, baseDirectory: directory.path)
            let segments = ArrivalSchedule.closedSegments(for: workload)
            XCTAssertFalse(arrivals.isEmpty && segments.isEmpty, "\(file) schedules no load")
        }
    }

    func testFullSchema() throws {
        let text = """
            name: mixed
            seed: 9
            warmup: 2
            duration: 10
            arrival: phases
            phases:
              - {duration: 4, rate: 10, to_rate: 20, process: constant}
              - duration: 8
                clients: 3
                think: 0.5
            targets:
              - lambda: echo
                weight: 2
                method: put
                path: sub/x
                payload: {a: [1, 2.5, "s"], b: true, c: null}
              - lambda: noop
            model:
              container:
                slots: 4
                boot: {distribution: constant, seconds: 90}
            """
        let workload = try WorkloadParser.parse(text, file: "m.yaml")
        XCTAssertEqual(workload.name, "mixed")
        XCTAssertEqual(workload.seed, 9)
        XCTAssertEqual(workload.warmupSeconds, 2)
        XCTAssertEqual(
            workload.arrival,
            .phases([
                Phase(durationSeconds: 4, rate: 10, toRate: 20, process: .constant),
                Phase(durationSeconds: 8, clients: 3, thinkSeconds: 0.5),
            ]))
        XCTAssertEqual(workload.targets[0].method, "PUT")
        XCTAssertEqual(workload.targets[0].path, "/sub/x")
        XCTAssertEqual(workload.targets[0].weight, 2)
        XCTAssertEqual(workload.targets[0].payload, #"{"a":[1,2.5,"s"],"b":true,"c":null}"#)
        XCTAssertEqual(workload.targets[1].payload, "{}")
        XCTAssertEqual(
            workload.modelParameters["container"],
            .mapping(["slots": .number(4), "boot": .mapping(["distribution": .string("constant"), "seconds": .number(90)])]))
    }

    func testPhasesDurationDefaultsToTheirSumMinusWarmup() throws {
        let workload = try WorkloadParser.parse(
            "warmup: 3\narrival: phases\nphases:\n  - {duration: 5, rate: 1}\n  - {duration: 7, rate: 2}\ntargets: [{lambda: a}]\n",
            file: "p.yaml")
        XCTAssertEqual(workload.durationSeconds, 9)
    }

    func testBadFilesNameFileLineAndField() {
        let base = "seed: 1\narrival: phases\ntargets:\n  - lambda: echo\nphases:\n  - {duration: 5, rate: 10}\n"
        XCTAssertEqual(
            parseError(base + "  - {duration: 5, rate: fast}\n"), "Workloads/x.yaml:7: phases[1].rate: expected a number")
        XCTAssertEqual(
            parseError(base + "  - {duration: 5}\n"),
            "Workloads/x.yaml:7: phases[1]: expected `rate` (open phase) or `clients` (closed phase)")
        XCTAssertEqual(
            parseError(base + "  - {duration: 5, rate: 1, clients: 2}\n"),
            "Workloads/x.yaml:7: phases[1].clients: a phase has either `rate` or `clients`, not both")
        XCTAssertEqual(
            parseError(base + "  - {duration: -1, rate: 1}\n"),
            "Workloads/x.yaml:7: phases[1].duration: expected a number greater than 0, got -1")
        XCTAssertEqual(
            parseError("arrival: open\nrate: 10\nduration: 5\ntargets:\n  - lambda: echo\n    wieght: 2\n"),
            "Workloads/x.yaml:6: targets[0].wieght: unknown key (known: lambda, weight, method, path, payload)")
        XCTAssertEqual(
            parseError("arrival: open\nrate: 10\nduration: 5\n"),
            "Workloads/x.yaml:1: targets: required (a list of lambdas to call)")
        XCTAssertEqual(
            parseError("arrival: closed\nclients: many\nduration: 5\ntargets: [{lambda: a}]\n"),
            "Workloads/x.yaml:2: clients: expected an integer")
        XCTAssertEqual(
            parseError("arrival: closed\nclients: 0\nduration: 5\ntargets: [{lambda: a}]\n"),
            "Workloads/x.yaml:2: clients: expected an integer of at least 1, got 0")
        XCTAssertEqual(
            parseError("arrival: closed\nclients: 4\nrate: 3\nduration: 5\ntargets: [{lambda: a}]\n"),
            "Workloads/x.yaml:3: rate: only valid with `arrival: open` (this file uses `arrival: closed`)")
        XCTAssertEqual(
            parseError("arrival: sometimes\nduration: 5\ntargets: [{lambda: a}]\n"),
            "Workloads/x.yaml:1: arrival: expected one of closed, open, phases, trace")
        XCTAssertEqual(
            parseError("arrival: open\nrate: 3\ntargets: [{lambda: a}]\n"),
            "Workloads/x.yaml:1: duration: required (seconds of measured load)")
        XCTAssertEqual(
            parseError("arrival: open\nrate: 3\nprocess: bursty\nduration: 1\ntargets: [{lambda: a}]\n"),
            "Workloads/x.yaml:3: process: expected poisson or constant")
        XCTAssertEqual(
            parseError("arrival: open\nrate: 3\nduration: 1\ntargets: [{lambda: 'a b'}]\n"),
            "Workloads/x.yaml:4: targets[0].lambda: expected a lambda name (letters, digits, '-', '_', '.')")
        XCTAssertEqual(
            parseError("arrival: open\nrate: 3\nduration: 1\ntargets: []\n"),
            "Workloads/x.yaml:4: targets: expected at least one target")
        XCTAssertEqual(parseError("- just\n- a list\n"), "Workloads/x.yaml:1: expected a mapping of workload fields")
        XCTAssertEqual(
            parseError("arrival: open\nrate: [3\nduration: 1\n"),
            "Workloads/x.yaml:3: invalid YAML: did not find expected ',' or ']'")
    }

    func testMissingFileIsNamed() {
        XCTAssertThrowsError(try WorkloadParser.load(path: "/nonexistent/w.yaml")) { error in
            XCTAssertEqual("\(error)", "/nonexistent/w.yaml: cannot read file")
        }
    }
}
