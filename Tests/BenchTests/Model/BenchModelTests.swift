import Foundation
import Platform
import XCTest

@testable import Bench

/// Helpers to build small workloads and run the models on them.
enum ModelFixture {
    static func spinWorkload(
        name: String = "model-test", clients: Int, ms: Int = 200, mode: String = "sleep", duration: Double, seed: UInt64 = 7
    ) -> Workload {
        Workload(
            name: name, targets: [WorkloadTarget(lambda: "spin", payload: #"{"ms":\#(ms),"mode":"\#(mode)"}"#)],
            arrival: .closed(clients: clients, thinkSeconds: 0), durationSeconds: duration, seed: seed)
    }

    static func layer(_ values: [String: ModelParameterValue]) -> ParameterLayer {
        ParameterLayer(origin: "test", values: values)
    }

    static func run(
        _ workload: Workload, _ model: ModelKind, _ values: [String: ModelParameterValue],
        arrivals: [ScheduledArrival] = [], keepAlive: (any KeepAlivePolicy)? = nil, coldRows: [RequestRow] = []
    ) throws -> SimulationResult {
        try Simulation.run(
            workload, model: model, runID: 1, openArrivals: arrivals,
            closedSegments: ArrivalSchedule.closedSegments(for: workload), parameters: [layer(values)],
            coldRows: coldRows, keepAlive: keepAlive)
    }

    static let noScaling: [String: ModelParameterValue] = ["autoscaling": .mapping(["enabled": .bool(false)])]
}

final class BenchModelEngineTests: XCTestCase {
    func testEventQueueOrdersByTimeThenInsertion() {
        var queue = EventQueue<String>()
        queue.schedule("c", atNs: 30)
        queue.schedule("a1", atNs: 10)
        queue.schedule("b", atNs: 20)
        queue.schedule("a2", atNs: 10)
        queue.schedule("a3", atNs: 10)
        var order: [String] = []
        while let (_, event) = queue.pop() { order.append(event) }
        XCTAssertEqual(order, ["a1", "a2", "a3", "b", "c"])
    }

    func testDistributionsAreDeterministicAndInRange() {
        var first = SeededGenerator(seed: 3), second = SeededGenerator(seed: 3)
        let lognormal = Distribution.lognormal(median: 100, sigma: 0.5)
        let a = (0..<50).map { _ in lognormal.sample(using: &first) }
        let b = (0..<50).map { _ in lognormal.sample(using: &second) }
        XCTAssertEqual(a, b)
        var rng = SeededGenerator(seed: 9)
        let draws = (0..<20_000).map { _ in lognormal.sample(using: &rng) }.sorted()
        XCTAssertEqual(draws[draws.count / 2], 100, accuracy: 5, "median of lognormal(100, 0.5)")
        let uniform = (0..<1000).map { _ in Distribution.uniform(min: 2, max: 3).sample(using: &rng) }
        XCTAssertTrue(uniform.allSatisfy { $0 >= 2 && $0 < 3 })
        let empirical = Set((0..<200).map { _ in Distribution.empirical([1, 5]).sample(using: &rng) })
        XCTAssertEqual(empirical, [1, 5])
    }
}

final class BenchModelContainerTests: XCTestCase {
    /// One instance, one slot, 100 closed-loop clients × 200 ms: each client waits for the 99 others ⇒ 20 s.
    func testSingleSlotSteadyStateLatencyIsTwentySeconds() throws {
        let workload = ModelFixture.spinWorkload(clients: 100, duration: 60)
        var values = ModelFixture.noScaling
        values["slots"] = .number(1)
        let result = try ModelFixture.run(workload, .container, values)
        XCTAssertEqual(result.requests.filter { $0.endNs <= 60_000_000_000 }.count, 300, "5 req/s for 60 s")
        XCTAssertEqual(result.requests.count, 399, "the 99 requests queued at the end still complete")
        let steady = result.requests.filter { $0.seq >= 100 }
        XCTAssertFalse(steady.isEmpty)
        for row in steady { XCTAssertEqual(row.latencyMs, 20_000, accuracy: 0.001) }
        let first = result.requests.filter { $0.seq < 100 }.map(\.latencyMs).sorted()
        XCTAssertEqual(first.first!, 200, accuracy: 0.001)
        XCTAssertEqual(first.last!, 20_000, accuracy: 0.001)
        XCTAssertTrue(result.samples.allSatisfy { $0.instances == 1 && $0.lambda == "*" })
        XCTAssertEqual(result.samples.first { $0.tNs == 10_100_000_000 }?.queued, 99)
        XCTAssertTrue(result.requests.allSatisfy { $0.worker == "model:container" && $0.cold == nil && $0.status == 200 })
    }

    /// Instances that must boot first serve exactly the same requests, each exactly `boot` later.
    func testBootDelayShiftsCapacityByExactlyTheDelay() throws {
        let workload = ModelFixture.spinWorkload(clients: 100, duration: 60)
        var values = ModelFixture.noScaling
        values["slots"] = .number(4)
        values["boot_s"] = .number(7)
        let warm = try ModelFixture.run(workload, .container, values)
        values["start_warm"] = .bool(false)
        let booting = try ModelFixture.run(workload, .container, values)
        let warmEnds = warm.requests.map(\.endNs).sorted()
        let bootEnds = booting.requests.map(\.endNs).sorted()
        XCTAssertGreaterThan(bootEnds.count, 1000)
        for (warmEnd, bootEnd) in zip(warmEnds, bootEnds) { XCTAssertEqual(bootEnd - warmEnd, 7_000_000_000) }
        let startingUntil = booting.samples.filter { $0.starting == 1 }.map(\.tNs).max()
        XCTAssertEqual(startingUntil, 6_900_000_000)
        XCTAssertEqual(booting.samples.first { $0.tNs == 7_000_000_000 }?.running, 1)
    }

    private func scalingValues(breach: Double) -> [String: ModelParameterValue] {
        [
            "slots": .number(1), "boot_s": .number(5),
            "autoscaling": .mapping([
                "metric": .string("request_count"), "statistic": .string("sum"), "period_s": .number(10),
                "breach_duration_s": .number(breach), "upper_threshold": .number(1), "lower_threshold": .number(-1),
                "cooldown_s": .number(0), "min_instances": .number(1), "max_instances": .number(3),
            ]),
        ]
    }

    func testScalingRuleFiresOnlyAfterBreachDuration() throws {
        let workload = ModelFixture.spinWorkload(clients: 10, duration: 50)
        let result = try ModelFixture.run(workload, .container, scalingValues(breach: 30))
        let firstScaled = result.samples.first { $0.instances >= 2 }
        XCTAssertEqual(firstScaled?.tNs, 30_000_000_000, "breach from t=0 must last 30 s")
        XCTAssertEqual(firstScaled?.starting, 1)
        XCTAssertEqual(result.samples.first { $0.running + $0.idle >= 2 }?.tNs, 35_000_000_000, "ready after 5 s boot")
        let immediate = try ModelFixture.run(workload, .container, scalingValues(breach: 10))
        XCTAssertEqual(immediate.samples.first { $0.instances >= 2 }?.tNs, 10_000_000_000)
        XCTAssertEqual(immediate.samples.map(\.instances).max(), 3, "clamped to max_instances")
        XCTAssertTrue(immediate.parametersJSON.contains("1 → 2 instances"))
    }

    func testCPUAndNetworkMetricsDriveScaling() throws {
        func firstScaleUp(mode: String, metric: String, upper: Double) throws -> Int64? {
            let workload = ModelFixture.spinWorkload(clients: 10, mode: mode, duration: 30)
            let values: [String: ModelParameterValue] = [
                "boot_s": .number(5), "response_bytes": .number(1000),
                "autoscaling": .mapping([
                    "metric": .string(metric), "period_s": .number(10), "breach_duration_s": .number(10),
                    "upper_threshold": .number(upper), "lower_threshold": .number(-1),
                ]),
            ]
            return try ModelFixture.run(workload, .container, values).samples.first { $0.instances >= 2 }?.tNs
        }
        XCTAssertEqual(try firstScaleUp(mode: "cpu", metric: "cpu", upper: 99), 10_000_000_000, "busy 100 % of the period")
        XCTAssertNil(try firstScaleUp(mode: "sleep", metric: "cpu", upper: 1), "a sleeping handler uses no CPU")
        // Responses of 1000 bytes every 200 ms: 49 in the first period (the one at exactly 10 s counts in the next), then 50.
        XCTAssertEqual(try firstScaleUp(mode: "sleep", metric: "network_out", upper: 48_999), 10_000_000_000)
        XCTAssertEqual(try firstScaleUp(mode: "sleep", metric: "network_out", upper: 49_999), 20_000_000_000)
        XCTAssertNil(try firstScaleUp(mode: "sleep", metric: "network_out", upper: 50_000))
    }

    func testCooldownBlocksScalingAndBreachResets() {
        var rule = ScalingRule()
        rule.metric = .requestCount
        rule.statistic = .average
        rule.periodSeconds = 60
        rule.breachDurationSeconds = 120
        rule.upperThreshold = 100
        rule.lowerThreshold = 10
        rule.cooldownSeconds = 300
        var scaler = RuleBasedAutoscaler(rule: rule)
        func observe(_ t: Double, _ capacity: Int, _ counts: [Int]) -> AutoscalerDecision? {
            scaler.evaluate(
                ScalingObservation(
                    nowSeconds: t, capacity: capacity, instances: counts.map { InstancePeriodMetrics(requestCount: $0) }))
        }
        XCTAssertNil(observe(60, 1, [500]))
        XCTAssertNil(observe(120, 1, [50]), "back in range resets the breach")
        XCTAssertNil(observe(180, 1, [500]))
        XCTAssertEqual(observe(240, 1, [500])?.desiredCapacity, 2)
        XCTAssertNil(observe(300, 2, [500, 500]))
        XCTAssertNil(observe(360, 2, [500, 500]), "breached 120 s but within the 300 s cooldown")
        XCTAssertEqual(observe(540, 2, [500, 500])?.desiredCapacity, 3)
        XCTAssertNil(observe(900, 3, [1, 1]), "first low period")
        XCTAssertEqual(observe(960, 3, [1, 1, 1])?.desiredCapacity, 2)
    }

    func testBillingCountsIdleInstances() throws {
        let workload = Workload(
            name: "idle", targets: [WorkloadTarget(lambda: "spin", payload: #"{"ms":200}"#)],
            arrival: .open(rate: 1, process: .constant), durationSeconds: 10)
        let result = try ModelFixture.run(
            workload, .container, ModelFixture.noScaling, arrivals: [ScheduledArrival(intendedNs: 0, targetIndex: 0)])
        XCTAssertEqual(result.requests.count, 1)
        XCTAssertEqual(result.billedSeconds, 10, accuracy: 1e-9, "one instance alive for the whole 10 s run")
        XCTAssertEqual(result.billedCostUSD, 10.0 / 3600 * 0.0104, accuracy: 1e-12)
        XCTAssertEqual(BenchReport.billingFromParameters(result.parametersJSON).cost!, result.billedCostUSD, accuracy: 1e-15)
    }

    func testBillingAfterBurstIncludesScaledOutIdleInstance() throws {
        let workload = Workload(
            name: "burst", targets: [WorkloadTarget(lambda: "spin", payload: #"{"ms":200,"mode":"sleep"}"#)],
            arrival: .open(rate: 20, process: .constant), durationSeconds: 120)
        let burst = (0..<100).map { ScheduledArrival(intendedNs: Int64($0) * 100_000_000, targetIndex: 0) }
        let values: [String: ModelParameterValue] = [
            "boot_s": .number(1),
            "autoscaling": .mapping([
                "metric": .string("request_count"), "statistic": .string("sum"), "period_s": .number(5),
                "breach_duration_s": .number(5), "upper_threshold": .number(1), "lower_threshold": .number(-1),
                "max_instances": .number(2),
            ]),
        ]
        let result = try ModelFixture.run(workload, .container, values, arrivals: burst)
        let end = max(120.0, Double(result.requests.map(\.endNs).max()!) / 1e9)
        XCTAssertEqual(end, 120)
        XCTAssertEqual(result.billedSeconds, end + (end - 5), accuracy: 1e-9, "second instance launched at 5 s, idle after the burst")
        XCTAssertEqual(result.samples.last?.idle, 2)
    }

    func testRequestsWithoutCapacityFailAfterTheDrainLimit() throws {
        let workload = Workload(
            name: "none", targets: [WorkloadTarget(lambda: "spin", payload: #"{"ms":200}"#)],
            arrival: .open(rate: 1, process: .constant), durationSeconds: 10)
        let values: [String: ModelParameterValue] = [
            "initial_instances": .number(0), "autoscaling": .mapping(["enabled": .bool(false), "min_instances": .number(0)]),
        ]
        let result = try ModelFixture.run(
            workload, .container, values, arrivals: [ScheduledArrival(intendedNs: 1_000_000_000, targetIndex: 0)])
        XCTAssertEqual(result.requests.count, 1)
        XCTAssertEqual(result.requests.first?.status, 0)
        XCTAssertEqual(result.requests.first?.error, "model: still queued 3600 s after the end of the run")
        XCTAssertEqual(result.requests.first?.endNs, 3_610_000_000_000)
        XCTAssertEqual(result.samples.last?.queued, 1)
        XCTAssertEqual(result.billedSeconds, 0)
    }

    func testProcessorSharingSlowsConcurrentCPURequests() throws {
        let arrivals = [ScheduledArrival(intendedNs: 0, targetIndex: 0), ScheduledArrival(intendedNs: 0, targetIndex: 0)]
        var values = ModelFixture.noScaling
        values["slots"] = .number(10)
        values["cores"] = .number(1)
        for (mode, expected) in [("cpu", 400.0), ("sleep", 200.0)] {
            let workload = Workload(
                name: "ps", targets: [WorkloadTarget(lambda: "spin", payload: #"{"ms":200,"mode":"\#(mode)"}"#)],
                arrival: .open(rate: 1, process: .constant), durationSeconds: 1)
            let result = try ModelFixture.run(workload, .container, values, arrivals: arrivals)
            XCTAssertEqual(result.requests.map(\.latencyMs), [expected, expected], "mode \(mode)")
        }
    }

    func testSameSeedSameRowsDifferentSeedDifferentRows() throws {
        let base = Workload(
            name: "det", targets: [WorkloadTarget(lambda: "spin", payload: #"{"ms":50}"#)],
            arrival: .open(rate: 40, process: .poisson), durationSeconds: 20, warmupSeconds: 2, seed: 11)
        func simulate(_ workload: Workload, _ model: ModelKind) throws -> SimulationResult {
            try Simulation.run(
                workload, model: model, runID: 5, baseDirectory: NSTemporaryDirectory(),
                modelsDirectory: "/nonexistent-models")
        }
        for model in ModelKind.allCases {
            let first = try simulate(base, model)
            let second = try simulate(base, model)
            XCTAssertEqual(first.requests, second.requests)
            XCTAssertEqual(first.samples, second.samples)
            XCTAssertGreaterThan(first.requests.count, 600)
            XCTAssertTrue(first.requests.contains { $0.warmup } && first.requests.contains { !$0.warmup })
            var other = base
            other.seed = 12
            XCTAssertNotEqual(try simulate(other, model).requests, first.requests)
        }
    }
}

final class BenchModelLambdaTests: XCTestCase {
    private func twoRequests(gapSeconds: Double, keepAlive: Double) throws -> SimulationResult {
        let workload = Workload(
            name: "ka", targets: [WorkloadTarget(lambda: "spin", payload: #"{"ms":200}"#)],
            arrival: .open(rate: 1, process: .constant), durationSeconds: 30)
        let arrivals = [
            ScheduledArrival(intendedNs: 0, targetIndex: 0),
            ScheduledArrival(intendedNs: Int64(gapSeconds * 1e9), targetIndex: 0),
        ]
        return try ModelFixture.run(
            workload, .lambda, ["cold_start_ms": .number(300), "keep_alive_s": .number(keepAlive)], arrivals: arrivals)
    }

    func testKeepAliveDecidesColdStarts() throws {
        let within = try twoRequests(gapSeconds: 5, keepAlive: 10)
        XCTAssertEqual(within.requests.map(\.cold), [true, false])
        XCTAssertEqual(within.requests.map(\.latencyMs), [500, 200])
        XCTAssertEqual(within.requests.map(\.initMs), [300, 0])
        XCTAssertEqual(within.requests.map(\.billedMs), [200, 200])
        let beyond = try twoRequests(gapSeconds: 20, keepAlive: 10)
        XCTAssertEqual(beyond.requests.map(\.cold), [true, true])
        XCTAssertEqual(beyond.samples.last?.created, 2)
        let destroyedAt = beyond.samples.first { $0.destroyed == 1 }?.tNs
        XCTAssertEqual(destroyedAt, 10_500_000_000, "idle from 0.5 s, keep-alive 10 s")
        XCTAssertEqual(beyond.samples.last?.destroyed, 1, "the second instance outlives the 30 s run")
        XCTAssertEqual(beyond.samples.last?.idle, 1)
    }

    func testInstancePerConcurrentRequestUpToLimit() throws {
        let workload = Workload(
            name: "burst", targets: [WorkloadTarget(lambda: "spin", payload: #"{"ms":200}"#)],
            arrival: .open(rate: 1, process: .constant), durationSeconds: 5)
        let arrivals = (0..<3).map { _ in ScheduledArrival(intendedNs: 0, targetIndex: 0) }
        let unlimited = try ModelFixture.run(workload, .lambda, ["cold_start_ms": .number(300)], arrivals: arrivals)
        XCTAssertEqual(unlimited.requests.map(\.cold), [true, true, true])
        XCTAssertEqual(unlimited.samples.map(\.instances).max(), 3)
        let limited = try ModelFixture.run(
            workload, .lambda, ["cold_start_ms": .number(300), "concurrency_limit": .number(2)], arrivals: arrivals)
        XCTAssertEqual(limited.requests.map(\.cold), [true, true, false])
        XCTAssertEqual(limited.requests.map(\.latencyMs), [500, 500, 700])
        XCTAssertEqual(limited.samples.map(\.instances).max(), 2)
        XCTAssertEqual(limited.billedCostUSD, 3 * (0.2 * 0.125 * 0.0000166667 + 0.0000002), accuracy: 1e-15)
    }

    func testKeepAlivePolicyIsInjectable() throws {
        struct NoKeepAlive: KeepAlivePolicy {
            var name: String { "none" }
            mutating func recordInvocation(of lambda: String, at now: Double) {}
            func keepAlive(for lambda: String, idleSince now: Double) -> Double { 0 }
        }
        let workload = Workload(
            name: "none", targets: [WorkloadTarget(lambda: "spin", payload: #"{"ms":100}"#)],
            arrival: .open(rate: 1, process: .constant), durationSeconds: 5)
        let arrivals = (0..<4).map { ScheduledArrival(intendedNs: Int64($0) * 1_000_000_000, targetIndex: 0) }
        let result = try ModelFixture.run(workload, .lambda, [:], arrivals: arrivals, keepAlive: NoKeepAlive())
        XCTAssertEqual(result.requests.filter { $0.cold == true }.count, 4)
        XCTAssertTrue(result.parametersJSON.contains("\"keep_alive_policy\":\"none\""))
    }

    func testColdStartsFittedFromColdRows() throws {
        let cold = [120.0, 120.0].enumerated().map { index, initMs in
            RequestRow(
                runID: 9, seq: Int64(index), lambda: "spin", intendedNs: 0, sentNs: 0, endNs: 1, latencyMs: 1, status: 200,
                bytes: 1, cold: true, initMs: initMs)
        }
        let warm = RequestRow(
            runID: 9, seq: 3, lambda: "spin", intendedNs: 0, sentNs: 0, endNs: 1, latencyMs: 1, status: 200, bytes: 1,
            cold: false, initMs: 0)
        let workload = ModelFixture.spinWorkload(clients: 3, mode: "cpu", duration: 2)
        let result = try ModelFixture.run(workload, .lambda, [:], coldRows: cold + [warm])
        let colds = result.requests.filter { $0.cold == true }
        XCTAssertEqual(colds.count, 3)
        XCTAssertTrue(colds.allSatisfy { $0.initMs == 120 && $0.latencyMs == 320 })
        XCTAssertThrowsError(try ModelFixture.run(workload, .lambda, [:], coldRows: [warm])) { error in
            XCTAssertEqual(
                "\(error)",
                "workload model-test: cold_start_ms: cannot fit cold starts: none of the 1 given rows is cold with an init time")
        }
    }
}

final class BenchModelParameterTests: XCTestCase {
    private func modelsDirectory(_ files: [String: String]) throws -> String {
        let directory = NSTemporaryDirectory() + "models-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        for (name, text) in files { try text.write(toFile: directory + "/" + name, atomically: true, encoding: .utf8) }
        return directory
    }

    private func errorText(_ body: () throws -> Void) -> String {
        do {
            try body()
            return "no error"
        } catch {
            return "\(error)"
        }
    }

    func testFileErrorsNameFileLineAndField() throws {
        let workload = ModelFixture.spinWorkload(clients: 1, duration: 1)
        let directory = try modelsDirectory(["container.yaml": "slots: 2\nautoscaling:\n  period_s: soon\n"])
        XCTAssertEqual(
            errorText { _ = try Simulation.parameterLayers(for: workload, model: .container, modelsDirectory: directory).map {
                var config = ContainerModelConfig()
                try config.apply($0)
            } },
            "\(directory)/container.yaml:3: autoscaling.period_s: expected a number, got 'soon'")
        let typo = try modelsDirectory(["lambda.yaml": "memory_mb: 256\nkeep_alive: 10\n"])
        XCTAssertEqual(
            errorText { _ = try Simulation.run(workload, model: .lambda, runID: 1, baseDirectory: "/", modelsDirectory: typo) },
            "\(typo)/lambda.yaml:2: keep_alive: unknown parameter (known: \(LambdaModelConfig.keys.joined(separator: ", ")))")
        let badDistribution = try modelsDirectory(["lambda.yaml": "cold_start_ms:\n  distribution: lognormal\n  median: 0\n"])
        XCTAssertEqual(
            errorText { _ = try Simulation.run(workload, model: .lambda, runID: 1, baseDirectory: "/", modelsDirectory: badDistribution) },
            "\(badDistribution)/lambda.yaml:3: cold_start_ms.median: must be greater than 0, got 0")
    }

    func testWorkloadSectionOverridesFileAndNamesField() throws {
        var workload = ModelFixture.spinWorkload(name: "elastic", clients: 1, duration: 1)
        let directory = try modelsDirectory(["container.yaml": "slots: 2\nresponse_bytes: 10\n"])
        workload.modelParameters = ["container": .mapping(["slots": .number(3)])]
        var config = ContainerModelConfig()
        for layer in try Simulation.parameterLayers(for: workload, model: .container, modelsDirectory: directory) {
            try config.apply(layer)
        }
        XCTAssertEqual(config.slots, 3)
        XCTAssertEqual(config.responseBytes, 10)
        workload.modelParameters = ["container": .mapping(["slots": .string("many")])]
        XCTAssertEqual(
            errorText { _ = try Simulation.run(workload, model: .container, runID: 1, baseDirectory: "/", modelsDirectory: directory) },
            "workload elastic: model.container: slots: expected a whole number, got 'many'")
        workload.modelParameters = ["container": .mapping(["autoscaling": .mapping(["min_instances": .number(5)])])]
        XCTAssertEqual(
            errorText { _ = try Simulation.run(workload, model: .container, runID: 1, baseDirectory: "/", modelsDirectory: directory) },
            "workload elastic: model.container: autoscaling.min_instances: min_instances (5) exceeds max_instances (4)")
    }

    func testServiceTimeRequiredForNonSpinLambdas() {
        let workload = Workload(
            name: "echo", targets: [WorkloadTarget(lambda: "echo", payload: #"{"x":1}"#)],
            arrival: .closed(clients: 1, thinkSeconds: 0), durationSeconds: 1)
        XCTAssertEqual(
            errorText { _ = try ModelFixture.run(workload, .lambda, [:]) },
            "workload echo: service_ms: no service time for lambda 'echo': set service_ms (only spin payloads carry \"ms\")")
        XCTAssertNoThrow(try ModelFixture.run(workload, .lambda, ["service_ms": .number(5)]))
    }

    /// The shipped parameter files document exactly the compiled-in defaults.
    func testShippedModelFilesMatchDefaults() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().path
        let models = root + "/Workloads/models"
        var container = ContainerModelConfig()
        let containerFile = try XCTUnwrap(try ParameterLayer.load(path: models + "/container.yaml"))
        try container.apply(containerFile)
        XCTAssertEqual(container, ContainerModelConfig())
        XCTAssertEqual(container.rule, ScalingRule())
        XCTAssertEqual(container.rule.metric, .networkOut)
        var lambda = LambdaModelConfig()
        try lambda.apply(try XCTUnwrap(try ParameterLayer.load(path: models + "/lambda.yaml")))
        XCTAssertEqual(lambda, LambdaModelConfig())
        XCTAssertEqual(containerFile.values.count, 7, "every documented container field is present")
    }
}
