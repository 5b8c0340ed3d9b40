import Foundation
import XCTest

@testable import Bench

final class ArrivalScheduleTests: XCTestCase {
    func workload(_ arrival: ArrivalModel, duration: Double = 10, warmup: Double = 0, seed: UInt64 = 1,
                  targets: [WorkloadTarget] = [WorkloadTarget(lambda: "a")]) -> Workload {
        Workload(name: "t", targets: targets, arrival: arrival, durationSeconds: duration, warmupSeconds: warmup, seed: seed)
    }

    func arrivals(_ w: Workload, base: String = "/") throws -> [ScheduledArrival] {
        try ArrivalSchedule.openArrivals(for: w, baseDirectory: base)
    }

    func testPoissonRateWithinTolerance() throws {
        let times = try arrivals(workload(.open(rate: 1000, process: .poisson), duration: 20))
        XCTAssertEqual(Double(times.count), 20_000, accuracy: 20_000 * 0.03)
        XCTAssertEqual(times, times.sorted { $0.intendedNs < $1.intendedNs })
        XCTAssertTrue(times.allSatisfy { $0.intendedNs >= 0 && $0.intendedNs < 20_000_000_000 })
        // Exponential gaps: coefficient of variation ≈ 1.
        let gaps = zip(times.dropFirst(), times).map { Double($0.intendedNs - $1.intendedNs) }
        let mean = gaps.reduce(0, +) / Double(gaps.count)
        let sd = (gaps.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(gaps.count)).squareRoot()
        XCTAssertEqual(sd / mean, 1, accuracy: 0.05)
    }

    func testConstantRateIsEvenlySpacedOverWarmupAndDuration() throws {
        let times = try arrivals(workload(.open(rate: 100, process: .constant), duration: 4, warmup: 1))
        XCTAssertEqual(times.count, 500)
        XCTAssertEqual(times[0].intendedNs, 0)
        XCTAssertEqual(times[1].intendedNs, 10_000_000)
        XCTAssertEqual(times[499].intendedNs, 4_990_000_000)
    }

    func testSameSeedSameScheduleOtherSeedDifferent() throws {
        let targets = [WorkloadTarget(lambda: "a", weight: 1), WorkloadTarget(lambda: "b", weight: 3)]
        let a = try arrivals(workload(.open(rate: 200, process: .poisson), seed: 5, targets: targets))
        let b = try arrivals(workload(.open(rate: 200, process: .poisson), seed: 5, targets: targets))
        let c = try arrivals(workload(.open(rate: 200, process: .poisson), seed: 6, targets: targets))
        XCTAssertEqual(a, b)
        XCTAssertNotEqual(a, c)
    }

    func testTargetsPickedByWeight() throws {
        let targets = [WorkloadTarget(lambda: "a", weight: 1), WorkloadTarget(lambda: "b", weight: 3)]
        let times = try arrivals(workload(.open(rate: 1000, process: .constant), duration: 20, targets: targets))
        let share = Double(times.filter { $0.targetIndex == 1 }.count) / Double(times.count)
        XCTAssertEqual(share, 0.75, accuracy: 0.02)
    }

    func testRampTriplesTheSecondHalf() throws {
        // Rate 0 → 200 over 10 s: 1000 expected, 250 in the first half and 750 in the second.
        let phases = [Phase(durationSeconds: 10, rate: 0, toRate: 200, process: .constant)]
        let times = try arrivals(workload(.phases(phases), duration: 10))
        XCTAssertEqual(times.count, 1000, accuracy: 1)
        let firstHalf = times.filter { $0.intendedNs < 5_000_000_000 }.count
        XCTAssertEqual(firstHalf, 250, accuracy: 2)
    }

    func testPhasesStepAndClosedSegments() throws {
        let phases = [
            Phase(durationSeconds: 2, rate: 100, process: .constant),
            Phase(durationSeconds: 3, clients: 4, thinkSeconds: 0.5),
            Phase(durationSeconds: 2, rate: 50, process: .constant),
        ]
        // Duration longer than the phases: the last phase continues.
        let w = workload(.phases(phases), duration: 9)
        let times = try arrivals(w)
        XCTAssertEqual(times.filter { $0.intendedNs < 2_000_000_000 }.count, 200)
        XCTAssertEqual(times.filter { $0.intendedNs >= 2_000_000_000 && $0.intendedNs < 5_000_000_000 }.count, 0)
        XCTAssertEqual(times.filter { $0.intendedNs >= 5_000_000_000 }.count, 200)
        XCTAssertEqual(
            ArrivalSchedule.closedSegments(for: w),
            [ClosedSegment(startNs: 2_000_000_000, endNs: 5_000_000_000, clients: 4, thinkSeconds: 0.5)])
        XCTAssertEqual(
            ArrivalSchedule.closedSegments(for: workload(.closed(clients: 7, thinkSeconds: 0), duration: 3, warmup: 1)),
            [ClosedSegment(startNs: 0, endNs: 4_000_000_000, clients: 7, thinkSeconds: 0)])
    }

    func writeTrace(_ rows: [[Int]]) throws -> String {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("trace-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let minutes = rows[0].count
        var text = "HashOwner,HashApp,HashFunction,Trigger," + (1...minutes).map(String.init).joined(separator: ",") + "\n"
        for (index, counts) in rows.enumerated() {
            text += "o,a,f\(index),http," + counts.map(String.init).joined(separator: ",") + "\n"
        }
        try text.write(to: directory.appendingPathComponent("t.csv"), atomically: true, encoding: .utf8)
        return directory.path
    }

    func testTraceMinutesExpandWithinTheirMinute() throws {
        let base = try writeTrace([[10, 0, 30], [5, 1, 0]])
        let w = workload(.trace(TraceSpec(file: "t.csv")), duration: 180, seed: 3)
        let times = try arrivals(w, base: base)
        let perMinute = (0..<3).map { m in times.filter { $0.intendedNs / 60_000_000_000 == m }.count }
        XCTAssertEqual(perMinute, [15, 1, 30])
        XCTAssertEqual(try arrivals(w, base: base), times)
        XCTAssertNotEqual(try arrivals(workload(.trace(TraceSpec(file: "t.csv")), duration: 180, seed: 4), base: base), times)

        let selected = try arrivals(workload(.trace(TraceSpec(file: "t.csv", functions: ["f1"], startMinute: 2)), duration: 120), base: base)
        XCTAssertEqual(selected.count, 1)
        XCTAssertLessThan(selected[0].intendedNs, 60_000_000_000)

        let scaled = try arrivals(workload(.trace(TraceSpec(file: "t.csv", scale: 0.5)), duration: 180), base: base)
        XCTAssertEqual(Double(scaled.count), 23, accuracy: 2)
    }

    func testBadTraceIsNamed() throws {
        let base = try writeTrace([[1, 2]])
        let path = base + "/t.csv"
        try "HashOwner,HashApp,HashFunction,Trigger,1,2\no,a,f,http,1,x\n".write(toFile: path, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try arrivals(workload(.trace(TraceSpec(file: "t.csv")), duration: 60), base: base)) {
            XCTAssertEqual("\($0)", "\(path):2: minute 2: expected a non-negative integer, found 'x'")
        }
        try "HashOwner,HashApp,Trigger,1\n".write(toFile: path, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try arrivals(workload(.trace(TraceSpec(file: "t.csv")), duration: 60), base: base)) {
            XCTAssertEqual("\($0)", "\(path):1: header: expected HashOwner,HashApp,HashFunction,Trigger,1,2,...")
        }
        let fresh = try writeTrace([[1, 2]])
        XCTAssertThrowsError(
            try arrivals(workload(.trace(TraceSpec(file: "t.csv", functions: ["nope"])), duration: 60), base: fresh)
        ) {
            XCTAssertEqual("\($0)", "\(fresh)/t.csv: trace.functions: no row with HashFunction 'nope'")
        }
    }
}
