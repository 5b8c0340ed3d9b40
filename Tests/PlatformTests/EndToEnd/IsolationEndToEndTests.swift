import Foundation
import HTTPTypes
import HummingbirdTesting
import Platform
import XCTest

/// Isolation seen from inside a Python lambda, and clean-up after the worker stops.
final class IsolationEndToEndTests: XCTestCase {
    func testLambdaCannotReachOutsideItsSandbox() async throws {
        try requireIsolation()
        let planted = NSTemporaryDirectory() + "planted-\(UUID().uuidString.prefix(6)).txt"
        try "secret".write(toFile: planted, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: planted) }
        let worker = try await TestWorker.start({ $0.environment = ["VISIBLE": "1"] }, lambdas: ["probe": TestLambdas.probe])
        defer { Task { await worker.stop() } }
        let response = try await worker.request(
            .post, "/run/probe", body: "{\"planted\": \"\(planted)\", \"port\": \(worker.port)}")
        XCTAssertEqual(response.status, .ok, response.text)
        let seen = try worker.json(response)
        XCTAssertEqual(seen["pid"] as? Int, 1, "new PID namespace")
        XCTAssertEqual(seen["read_planted"] as? Bool, false, "file outside the root must be invisible")
        XCTAssertEqual(seen["connected"] as? Bool, false, "no network by default")
        XCTAssertEqual(seen["wrote_handler"] as? Bool, false, "/handler is read-only")
        XCTAssertEqual(seen["wrote_tmp"] as? Bool, true)
        XCTAssertEqual(seen["wrote_scratch"] as? Bool, true)
        XCTAssertNotEqual(seen["uid"] as? Int, 0, "runs unprivileged")
        XCTAssertEqual(seen["hostname"] as? String, "sandbox")
        XCTAssertEqual(seen["batch_scheduling"] as? Bool, true, "sandboxes run under SCHED_BATCH by default")
        let environment = seen["environment"] as? [String] ?? []
        XCTAssertTrue(environment.contains("VISIBLE"))
        XCTAssertFalse(environment.contains("HOME") && environment.contains("CI"), "worker environment must not leak: \(environment)")
        XCTAssertFalse(environment.contains("PYENV_ROOT"))
        XCTAssertEqual(response.header("X-Swiftlet-Memory-Mb"), "96")
    }

    func testNormalSchedulingCanBeConfigured() async throws {
        try requireIsolation()
        let worker = try await TestWorker.start({ $0.sandboxScheduling = "normal" }, lambdas: ["probe": TestLambdas.probe])
        defer { Task { await worker.stop() } }
        let response = try await worker.request(.post, "/run/probe", body: "{\"planted\": \"/nonexistent\", \"port\": 1}")
        XCTAssertEqual(response.status, .ok, response.text)
        XCTAssertEqual(try worker.json(response)["batch_scheduling"] as? Bool, false)
    }

    func testStopRemovesEverySandboxCgroupAndDirectory() async throws {
        try requireIsolation()
        let worker = try await TestWorker.start(lambdas: ["echo-py": TestLambdas.echo])
        for _ in 0..<3 {
            async let a = worker.request(.post, "/run/echo-py", body: "1")
            async let b = worker.request(.post, "/run/noop")
            _ = try await (a, b)
        }
        let stats = try worker.json(try await worker.request(.get, "/stats"))
        XCTAssertNotNil(stats["lambdas"])
        let before = Self.swiftletCgroups()
        XCTAssertFalse(before.isEmpty, "sandboxes should have cgroups while running")
        let children = Self.childProcesses()
        XCTAssertFalse(children.isEmpty)
        await worker.running.stop()
        XCTAssertEqual(Self.swiftletCgroups().filter { before.contains($0) }, [], "cgroups left behind")
        XCTAssertFalse(FileManager.default.fileExists(atPath: worker.directory + "/sandboxes"), "sandbox directories left behind")
        let alive = children.filter { FileManager.default.fileExists(atPath: "/proc/\($0)") && WorkerDirectory.alive($0) }
        XCTAssertEqual(alive, [], "sandbox processes left behind")
        let mounts = (try? String(contentsOfFile: "/proc/self/mounts", encoding: .utf8)) ?? ""
        XCTAssertFalse(mounts.contains(worker.directory), "mounts left behind")
        try? FileManager.default.removeItem(atPath: worker.directory)
    }

    /// Cgroup directories named swiftlet-<our pid>-* under any hierarchy.
    static func swiftletCgroups() -> [String] {
        let prefix = "swiftlet-\(getpid())-"
        var found: [String] = []
        let roots = ["/sys/fs/cgroup", "/sys/fs/cgroup/memory", "/sys/fs/cgroup/pids", "/sys/fs/cgroup/cpu", "/sys/fs/cgroup/freezer", "/sys/fs/cgroup/unified"]
        for root in roots {
            for entry in (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? [] where entry.hasPrefix(prefix) {
                found.append(root + "/" + entry)
            }
        }
        return found
    }

    /// Pids whose parent is this process.
    static func childProcesses() -> [Int32] {
        let me = getpid()
        var result: [Int32] = []
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = Int32(entry), let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { continue }
            let fields = stat[stat.index(close, offsetBy: 2)...].split(separator: " ")
            if fields.count > 1, Int32(fields[1]) == me { result.append(pid) }
        }
        return result
    }
}
