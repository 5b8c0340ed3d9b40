import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import Platform
import XCTest

/// A real worker (isolated sandboxes) on an ephemeral port: the Python contract, Swift apps, errors, CORS, registry.
final class WorkerEndToEndTests: XCTestCase {
    func testPythonContractEchoesNestedJSONAndCarriesInvocationHeaders() async throws {
        try requireIsolation()
        let worker = try await TestWorker.start(lambdas: ["echo-py": TestLambdas.echo])
        defer { Task { await worker.stop() } }
        let payload = #"{"a":[1,2,{"b":null,"c":"ü"}],"d":{"e":true,"f":1.5}}"#
        let first = try await worker.request(.post, "/run/echo-py", body: payload)
        XCTAssertEqual(first.status, .ok, first.text)
        XCTAssertEqual(first.header("Content-Type"), "application/json")
        let sent = try JSONSerialization.jsonObject(with: Data(payload.utf8)) as? NSDictionary
        let got = try JSONSerialization.jsonObject(with: Data(first.text.utf8)) as? NSDictionary
        XCTAssertEqual(sent, got)
        XCTAssertEqual(first.header("X-Swiftlet-Start"), "cold")
        XCTAssertGreaterThan(Double(first.header("X-Swiftlet-Init-Ms") ?? "") ?? 0, 0)
        XCTAssertNotNil(first.header("X-Swiftlet-Request-Id"))
        XCTAssertEqual(first.header("X-Swiftlet-Billed-Ms"), "100")
        XCTAssertEqual(first.header("X-Swiftlet-Memory-Mb"), "128")
        let sandbox = try XCTUnwrap(first.header("X-Swiftlet-Sandbox"))
        XCTAssertEqual(first.header("Access-Control-Allow-Origin"), "*")

        let second = try await worker.request(.post, "/run/echo-py", body: "[1,2,3]")
        XCTAssertEqual(second.text, "[1, 2, 3]")
        XCTAssertEqual(second.header("X-Swiftlet-Start"), "warm")
        XCTAssertEqual(second.header("X-Swiftlet-Sandbox"), sandbox)
        XCTAssertNotEqual(second.header("X-Swiftlet-Request-Id"), first.header("X-Swiftlet-Request-Id"))
    }

    func testEmptyBodyBecomesEmptyObjectAndBadJSONIs400() async throws {
        try requireIsolation()
        let worker = try await TestWorker.start(lambdas: ["echo-py": TestLambdas.echo])
        defer { Task { await worker.stop() } }
        let empty = try await worker.request(.post, "/run/echo-py")
        XCTAssertEqual(empty.status, .ok)
        XCTAssertEqual(empty.text, "{}")
        let bad = try await worker.request(.post, "/run/echo-py", body: "{not json")
        XCTAssertEqual(bad.status, .badRequest)
        let error = try worker.json(bad)
        XCTAssertEqual(error["lambda"] as? String, "echo-py")
        XCTAssertNotNil(error["request_id"] as? String)
        XCTAssertTrue((error["error"] as? String ?? "").lowercased().contains("json"), "\(error)")
    }

    /// Requests with and without bodies (none, Content-Length, chunked, Content-Length 0) follow each other on one
    /// kept-alive connection: each handler sees exactly its own body, and no body is left behind to corrupt the next.
    func testBodiesOfEveryFramingOnOneConnection() async throws {
        try requireIsolation()
        let worker = try await TestWorker.start()
        defer { Task { await worker.stop() } }
        let requests = [
            "GET /run/echo HTTP/1.1\r\nHost: t\r\n\r\n",
            "POST /run/echo HTTP/1.1\r\nHost: t\r\nContent-Length: 7\r\n\r\n\"hello\"",
            "POST /run/echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n[1,\r\n3\r\n 2]\r\n0\r\n\r\n",
            "POST /run/echo HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        ]
        let raw = try RawHTTP.exchange(port: worker.port, Array(requests.joined().utf8))
        let responses = try RawHTTP.split(raw)
        XCTAssertEqual(responses.map(\.status), [200, 200, 200, 200], String(decoding: raw, as: UTF8.self))
        XCTAssertEqual(responses.map(\.body), ["{}", "\"hello\"", "[1, 2]", "{}"])
    }

    func testSwiftAppsEchoNoopSpin() async throws {
        try requireIsolation()
        let worker = try await TestWorker.start()
        defer { Task { await worker.stop() } }
        let echo = try await worker.request(.post, "/run/echo/some/path?x=1", body: #"{"hello":"world"}"#)
        XCTAssertEqual(echo.status, .ok, echo.text)
        XCTAssertEqual(echo.text, #"{"hello":"world"}"#)
        let noop = try await worker.request(.get, "/run/noop")
        XCTAssertEqual(noop.status, .ok, noop.text)
        XCTAssertEqual(noop.text, "null")
        let spin = try await worker.request(.post, "/run/spin", body: #"{"ms":60,"mode":"sleep"}"#)
        XCTAssertEqual(spin.status, .ok, spin.text)
        let spun = try worker.json(spin)
        XCTAssertGreaterThanOrEqual(spun["elapsed_ms"] as? Double ?? 0, 60)
        XCTAssertGreaterThanOrEqual(Double(spin.header("X-Swiftlet-Run-Ms") ?? "") ?? 0, 60)
        let bad = try await worker.request(.post, "/run/spin", body: #"{"mode":"dance"}"#)
        XCTAssertEqual(bad.status, .badRequest, bad.text)
        XCTAssertTrue(bad.text.contains("mode"), bad.text)
    }

    func testUnknownAndInvalidNames() async throws {
        try requireIsolation()
        let worker = try await TestWorker.start()
        defer { Task { await worker.stop() } }
        let missing = try await worker.request(.post, "/run/nope")
        XCTAssertEqual(missing.status, .notFound)
        let body = try worker.json(missing)
        XCTAssertEqual(body["lambda"] as? String, "nope")
        XCTAssertTrue((body["error"] as? String ?? "").contains("nope"))
        XCTAssertNotNil(body["request_id"])
        let invalid = try await worker.request(.post, "/run/bad%20name")
        XCTAssertEqual(invalid.status, .badRequest, invalid.text)
        XCTAssertTrue(try worker.json(invalid)["error"] as? String ?? "" != "")
    }

    func testMethodAllowListAnd405() async throws {
        try requireIsolation()
        let worker = try await TestWorker.start(lambdas: ["get-only": TestLambdas.getOnly])
        defer { Task { await worker.stop() } }
        let ok = try await worker.request(.get, "/run/get-only")
        XCTAssertEqual(ok.status, .ok, ok.text)
        let refused = try await worker.request(.post, "/run/get-only")
        XCTAssertEqual(refused.status, .methodNotAllowed)
        XCTAssertTrue(refused.text.contains("GET"), refused.text)
        XCTAssertEqual(refused.header("Allow"), "GET, OPTIONS")
    }

    func testBodyLargerThanLimitIs413() async throws {
        try requireIsolation()
        let worker = try await TestWorker.start({ $0.maxBodyBytes = 1024 }, lambdas: ["echo-py": TestLambdas.echo])
        defer { Task { await worker.stop() } }
        let big = try await worker.request(.post, "/run/echo-py", body: "\"" + String(repeating: "x", count: 4000) + "\"")
        XCTAssertEqual(big.status, .contentTooLarge)
        XCTAssertTrue(big.text.contains("1024"), big.text)
        let small = try await worker.request(.post, "/run/echo-py", body: "\"small\"")
        XCTAssertEqual(small.status, .ok)
    }

    func testQueueFullIs429() async throws {
        try requireIsolation()
        let worker = try await TestWorker.start({
            $0.maxInstancesPerLambda = 1
            $0.maxQueuePerLambda = 1
        }, lambdas: ["sleeper": ["f.py": TestLambdas.sleeper["f.py"]!]])
        defer { Task { await worker.stop() } }
        let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<4 {
                group.addTask { Int(try await worker.request(.post, "/run/sleeper", body: #"{"s":0.5}"#).status.code) }
            }
            return try await group.reduce(into: [Int]()) { $0.append($1) }
        }
        XCTAssertTrue(statuses.contains(429), "\(statuses)")
        XCTAssertTrue(statuses.contains(200), "\(statuses)")
    }

    func testHandlerExceptionIs500WithTraceback() async throws {
        try requireIsolation()
        let worker = try await TestWorker.start(lambdas: ["raises": TestLambdas.raises])
        defer { Task { await worker.stop() } }
        let response = try await worker.request(.post, "/run/raises")
        XCTAssertEqual(response.status, .internalServerError)
        let body = try worker.json(response)
        XCTAssertEqual(body["error"] as? String, "ValueError: boom")
        let traceback = body["traceback"] as? String ?? ""
        XCTAssertTrue(traceback.contains("Traceback"), traceback)
        XCTAssertTrue(traceback.contains("helper"), traceback)
    }

    func testTimeoutIs504AndNextCallGetsFreshSandbox() async throws {
        try requireIsolation()
        let worker = try await TestWorker.start(lambdas: ["sleeper": TestLambdas.sleeper])
        defer { Task { await worker.stop() } }
        let warm = try await worker.request(.post, "/run/sleeper", body: #"{"s":0}"#)
        XCTAssertEqual(warm.status, .ok)
        let slow = try await worker.request(.post, "/run/sleeper", body: #"{"s":5}"#)
        XCTAssertEqual(slow.status, .gatewayTimeout)
        XCTAssertTrue(slow.text.contains("timeout of 1 s"), slow.text)
        let after = try await worker.request(.post, "/run/sleeper", body: #"{"s":0}"#)
        XCTAssertEqual(after.status, .ok)
        XCTAssertEqual(after.header("X-Swiftlet-Start"), "cold")
        XCTAssertNotEqual(after.header("X-Swiftlet-Sandbox"), warm.header("X-Swiftlet-Sandbox"))
    }

    func testOutOfMemoryIs502NamingTheLimitAndNextCallWorks() async throws {
        try requireIsolation()
        let worker = try await TestWorker.start(lambdas: ["hog": TestLambdas.hog])
        defer { Task { await worker.stop() } }
        let response = try await worker.request(.post, "/run/hog")
        XCTAssertEqual(response.status, .badGateway, response.text)
        XCTAssertTrue(response.text.contains("out of memory (limit 64 MB)"), response.text)
        let after = try await worker.request(.post, "/run/hog", body: #"{"small":true}"#)
        XCTAssertEqual(after.status, .ok, after.text)
    }

    func testForkBombIsContainedByPidsLimit() async throws {
        try requireIsolation()
        let worker = try await TestWorker.start(lambdas: ["bomb": TestLambdas.forkBomb, "echo-py": TestLambdas.echo])
        defer { Task { await worker.stop() } }
        let response = try await worker.request(.post, "/run/bomb")
        XCTAssertEqual(response.status, .ok, response.text)
        let body = try worker.json(response)
        XCTAssertLessThan(body["forked"] as? Int ?? 999, 16)
        XCTAssertGreaterThan(body["failed"] as? Int ?? 0, 150)
        let other = try await worker.request(.post, "/run/echo-py", body: "1")
        XCTAssertEqual(other.status, .ok)
        let swift = try await worker.request(.post, "/run/noop")
        XCTAssertEqual(swift.status, .ok)
    }

    func testCORSPreflightIsAnsweredWithoutInvoking() async throws {
        try requireIsolation()
        let worker = try await TestWorker.start(lambdas: ["get-only": TestLambdas.getOnly])
        defer { Task { await worker.stop() } }
        var headers = HTTPFields()
        headers[.origin] = "http://example.test"
        headers[.accessControlRequestMethod] = "GET"
        headers[.accessControlRequestHeaders] = "Content-Type, X-Custom"
        let preflight = try await worker.request(.options, "/run/get-only", headers: headers)
        XCTAssertEqual(preflight.status, .noContent)
        XCTAssertEqual(preflight.header("Access-Control-Allow-Origin"), "*")
        XCTAssertEqual(preflight.header("Access-Control-Allow-Methods"), "GET, OPTIONS")
        XCTAssertEqual(preflight.header("Access-Control-Allow-Headers"), "Content-Type, X-Custom")
        let stats = try worker.json(try await worker.request(.get, "/stats"))
        XCTAssertNil((stats["lambdas"] as? [String: Any])?["get-only"], "preflight must not invoke: \(stats)")
        let real = try await worker.request(.get, "/run/get-only", headers: headers)
        XCTAssertEqual(real.header("Access-Control-Allow-Origin"), "*")
        XCTAssertEqual(real.header("Access-Control-Expose-Headers"), "*")
    }

    func testHotCodeUpdateRetiresOldSandboxes() async throws {
        try requireIsolation()
        let worker = try await TestWorker.start({ $0.registryCacheMs = 200 }, lambdas: ["versioned": ["f.py": "def f(event):\n    return 'v1'\n"]])
        defer { Task { await worker.stop() } }
        let v1 = try await worker.request(.post, "/run/versioned")
        XCTAssertEqual(v1.text, "\"v1\"")
        try "def f(event):\n    return 'v2'\n".write(toFile: worker.registry + "/versioned/f.py", atomically: true, encoding: .utf8)
        try await Task.sleep(for: .milliseconds(450))
        let v2 = try await worker.request(.post, "/run/versioned")
        XCTAssertEqual(v2.text, "\"v2\"")
        XCTAssertEqual(v2.header("X-Swiftlet-Start"), "cold")
        XCTAssertNotEqual(v2.header("X-Swiftlet-Sandbox"), v1.header("X-Swiftlet-Sandbox"))
    }

    func testSixtyConcurrentInvocationsAllAnsweredCorrectly() async throws {
        try requireIsolation()
        let worker = try await TestWorker.start(lambdas: ["echo-py": TestLambdas.echo])
        defer { Task { await worker.stop() } }
        let results = try await withThrowingTaskGroup(of: (Int, Int, String).self) { group in
            for i in 0..<60 {
                group.addTask {
                    let r = try await worker.request(.post, "/run/echo-py", body: "{\"i\": \(i)}")
                    return (i, Int(r.status.code), r.text)
                }
            }
            return try await group.reduce(into: [(Int, Int, String)]()) { $0.append($1) }
        }
        XCTAssertEqual(results.count, 60)
        for (i, status, text) in results {
            XCTAssertEqual(status, 200, text)
            XCTAssertEqual(text, "{\"i\": \(i)}")
        }
        let stats = try worker.json(try await worker.request(.get, "/stats"))
        let echo = try XCTUnwrap((stats["lambdas"] as? [String: Any])?["echo-py"] as? [String: Any])
        XCTAssertEqual(echo["invocations"] as? Int, 60)
        XCTAssertGreaterThan(echo["sandboxes_created"] as? Int ?? 0, 1, "instances should follow queued work")
    }

    func testReuseSandboxFalseAndEnvironment() async throws {
        try requireIsolation()
        let worker = try await TestWorker.start(lambdas: ["fresh": TestLambdas.fresh, "env": TestLambdas.environment])
        defer { Task { await worker.stop() } }
        let a = try await worker.request(.post, "/run/fresh")
        XCTAssertEqual(a.status, .ok, a.text)
        let b = try await worker.request(.post, "/run/fresh")
        XCTAssertEqual(a.header("X-Swiftlet-Start"), "cold")
        XCTAssertEqual(b.header("X-Swiftlet-Start"), "cold")
        XCTAssertNotEqual(a.text, b.text)
        let env = try await worker.request(.post, "/run/env")
        XCTAssertEqual(env.text, "\"hello\"")
    }

    func testStatusStatsMetrics() async throws {
        try requireIsolation()
        let worker = try await TestWorker.start(lambdas: ["echo-py": TestLambdas.echo])
        defer { Task { await worker.stop() } }
        _ = try await worker.request(.post, "/run/echo-py", body: "1")
        let status = try worker.json(try await worker.request(.get, "/status"))
        XCTAssertEqual(status["sandbox"] as? String, "isolated")
        XCTAssertTrue((status["isolation"] as? String ?? "").contains("namespaces"), "\(status)")
        let stats = try worker.json(try await worker.request(.get, "/stats"))
        let echo = try XCTUnwrap((stats["lambdas"] as? [String: Any])?["echo-py"] as? [String: Any])
        XCTAssertEqual(echo["invocations"] as? Int, 1)
        XCTAssertEqual(echo["cold_starts"] as? Int, 1)
        XCTAssertEqual(echo["idle"] as? Int, 1)
        XCTAssertNotNil((echo["latency_ms"] as? [String: Any])?["p99"])
        let metrics = try await worker.request(.get, "/metrics")
        XCTAssertTrue(metrics.text.contains("swiftlet_invocations_total{lambda=\"echo-py\"} 1"), metrics.text)
        XCTAssertTrue(metrics.text.contains("# TYPE swiftlet_instances gauge"))
    }

    func testRegistryUploadListConfigDelete() async throws {
        try requireIsolation()
        let worker = try await TestWorker.start()
        defer { Task { await worker.stop() } }
        let source = NSTemporaryDirectory() + "lambda-src-\(UUID().uuidString.prefix(6))"
        try TestWorker.write(lambda: "up", files: [
            "f.py": "def f(event):\n    return {'uploaded': event}\n",
            "ol.yaml": "limits:\n  memory_mb: 100\n",
        ], registry: source)
        defer { try? FileManager.default.removeItem(atPath: source) }
        let archive = try LambdaArchive.make(directory: source + "/up")
        let posted = try await worker.request(.post, "/registry/uploaded", bytes: archive)
        XCTAssertEqual(posted.status, .created, posted.text)
        let list = try await worker.request(.get, "/registry/")
        XCTAssertTrue(list.text.contains("\"uploaded\""), list.text)
        XCTAssertTrue(list.text.contains("\"echo\""), list.text)
        let config = try worker.json(try await worker.request(.get, "/registry/uploaded/config"))
        XCTAssertEqual((config["limits"] as? [String: Any])?["memory_mb"] as? Int, 100)
        let run = try await worker.request(.post, "/run/uploaded", body: "7")
        XCTAssertEqual(run.text, "{\"uploaded\": 7}")
        XCTAssertEqual(run.header("X-Swiftlet-Memory-Mb"), "100")
        let deleted = try await worker.request(.delete, "/registry/uploaded")
        XCTAssertEqual(deleted.status, .ok)
        let gone = try await worker.request(.post, "/run/uploaded")
        XCTAssertEqual(gone.status, .notFound)
        let garbage = try await worker.request(.post, "/registry/broken", body: "not a tarball")
        XCTAssertEqual(garbage.status, .badRequest)
        XCTAssertFalse(FileManager.default.fileExists(atPath: worker.registry + "/broken"))
        let builtin = try await worker.request(.post, "/registry/echo", bytes: archive)
        XCTAssertEqual(builtin.status, .conflict)
    }
}
