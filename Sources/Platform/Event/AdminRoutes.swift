import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// `/status`, `/stats`, `/metrics` and the registry API.
struct AdminRoutes: Sendable {
    let manager: LambdaManager
    let workerID: String
    let version: String
    let maxBodyBytes: Int

    func register(on router: Router<BasicRequestContext>) {
        router.get("/status") { _, _ in self.status() }
        router.get("/stats") { _, _ in await self.stats() }
        router.get("/metrics") { _, _ in await self.metrics() }
        router.get("/registry") { _, _ in self.list() }
        router.post("/registry/:name") { request, context in
            await self.install(request, name: context.parameters.get("name") ?? "")
        }
        router.delete("/registry/:name") { _, context in
            await self.remove(name: context.parameters.get("name") ?? "")
        }
        router.get("/registry/:name/config") { _, context in
            self.config(name: context.parameters.get("name") ?? "")
        }
    }

    func status() -> Response {
        Self.json([
            "status": "ok",
            "worker": workerID,
            "version": version,
            "pid": Int(getpid()),
            "sandbox": manager.backend.kind.rawValue,
            "isolation": manager.backend.summary,
        ])
    }

    func stats() async -> Response {
        var lambdas: [String: Any] = [:]
        for (name, s) in await manager.stats() {
            lambdas[name] = [
                "invocations": s.invocations, "cold_starts": s.coldStarts, "errors": s.errors,
                "running": s.running, "idle": s.idle, "paused": s.paused, "starting": s.starting, "instances": s.instances,
                "queued": s.queued, "sandboxes_created": s.sandboxesCreated, "sandboxes_destroyed": s.sandboxesDestroyed,
                "memory_reserved_mb": s.memoryReservedMB,
                "latency_ms": ["p50": s.latencyP50Ms, "p99": s.latencyP99Ms],
            ] as [String: Any]
        }
        return Self.json([
            "worker": workerID,
            "backend": manager.backend.kind.rawValue,
            "memory": ["pool_mb": manager.pool.capacityMB, "reserved_mb": manager.pool.reservedMB],
            "lambdas": lambdas,
        ])
    }

    func metrics() async -> Response {
        let all = await manager.stats()
        var out = ""
        func family(_ name: String, _ type: String, _ help: String, _ value: (LambdaStats) -> String) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
            for (lambda, s) in all { out += "\(name){lambda=\"\(lambda)\"} \(value(s))\n" }
        }
        family("swiftlet_invocations_total", "counter", "Invocations received.") { "\($0.invocations)" }
        family("swiftlet_cold_starts_total", "counter", "Invocations served by a sandbox started for them.") { "\($0.coldStarts)" }
        family("swiftlet_errors_total", "counter", "Invocations that ended with a 5xx status or failed.") { "\($0.errors)" }
        family("swiftlet_sandboxes_created_total", "counter", "Sandboxes started.") { "\($0.sandboxesCreated)" }
        family("swiftlet_sandboxes_destroyed_total", "counter", "Sandboxes destroyed.") { "\($0.sandboxesDestroyed)" }
        family("swiftlet_instances", "gauge", "Sandboxes alive (running, idle, paused, starting).") { "\($0.instances)" }
        family("swiftlet_instances_paused", "gauge", "Sandboxes frozen by the cgroup freezer.") { "\($0.paused)" }
        family("swiftlet_queued", "gauge", "Requests waiting for an instance.") { "\($0.queued)" }
        out += "# HELP swiftlet_latency_seconds Invocation latency inside the worker.\n# TYPE swiftlet_latency_seconds summary\n"
        for (lambda, s) in all {
            out += "swiftlet_latency_seconds{lambda=\"\(lambda)\",quantile=\"0.5\"} \(s.latencyP50Ms / 1000)\n"
            out += "swiftlet_latency_seconds{lambda=\"\(lambda)\",quantile=\"0.99\"} \(s.latencyP99Ms / 1000)\n"
        }
        out += "# HELP swiftlet_memory_pool_bytes Memory pool for sandbox limits.\n# TYPE swiftlet_memory_pool_bytes gauge\n"
        out += "swiftlet_memory_pool_bytes \(manager.pool.capacityMB * 1024 * 1024)\n"
        out += "# HELP swiftlet_memory_reserved_bytes Sum of memory limits of live sandboxes.\n# TYPE swiftlet_memory_reserved_bytes gauge\n"
        out += "swiftlet_memory_reserved_bytes \(manager.pool.reservedMB * 1024 * 1024)\n"
        var fields = HTTPFields()
        fields[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
        return Response(status: .ok, headers: fields, body: .init(byteBuffer: ByteBuffer(string: out)))
    }

    func list() -> Response {
        let entries = manager.registry.list().map { ["name": $0.name, "kind": $0.kind] }
        return Self.json(entries)
    }

    func install(_ request: Request, name: String) async -> Response {
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: maxBodyBytes)
        } catch {
            return Self.error(413, "archive larger than the limit of \(maxBodyBytes) bytes", lambda: name)
        }
        do {
            try manager.registry.install(name: name, archive: Array(buffer.readableBytesView))
            await manager.codeChanged(name)
            return Self.json(["installed": name], status: .created)
        } catch let error as RegistryError {
            return Self.error(Self.status(of: error), "\(error)", lambda: name)
        } catch {
            return Self.error(500, "\(error)", lambda: name)
        }
    }

    func remove(name: String) async -> Response {
        do {
            try manager.registry.remove(name: name)
            await manager.codeChanged(name)
            return Self.json(["deleted": name])
        } catch let error as RegistryError {
            return Self.error(Self.status(of: error), "\(error)", lambda: name)
        } catch {
            return Self.error(500, "\(error)", lambda: name)
        }
    }

    func config(name: String) -> Response {
        do {
            let config = try manager.registry.config(of: name)
            var object: [String: Any] = [
                "name": name,
                "environment": config.environment,
                "reuse-sandbox": config.reuseSandbox,
            ]
            if let methods = config.httpMethods { object["triggers"] = ["http": methods.map { ["method": $0] }] }
            let limits = config.limits.applied(to: manager.defaults)
            object["limits"] = [
                "memory_mb": limits.memoryMB, "timeout_s": limits.timeoutSeconds, "procs": limits.procs,
                "cpu_percent": limits.cpuPercent,
            ] as [String: Any]
            return Self.json(object)
        } catch {
            return Self.error(Self.status(of: error), "\(error)", lambda: name)
        }
    }

    static func status(of error: RegistryError) -> Int {
        switch error {
        case .invalidName: return 400
        case .notFound: return 404
        case .builtin: return 409
        case .unsafeArchive, .badArchive: return 400
        case .invalidLambda: return 400
        }
    }

    static func json(_ object: Any, status: HTTPResponse.Status = .ok) -> Response {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
        var fields = HTTPFields()
        fields[.contentType] = "application/json"
        return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func error(_ status: Int, _ message: String, lambda: String) -> Response {
        json(["error": message, "lambda": lambda], status: .init(code: status))
    }
}

/// Routes `/run/...` straight to the run handler (any method, no router lookup) and everything else to the router.
struct WorkerResponder<Admin: HTTPResponder>: HTTPResponder where Admin.Context == BasicRequestContext {
    typealias Context = BasicRequestContext
    let run: RunHandler
    let admin: Admin

    func respond(to request: Request, context: BasicRequestContext) async throws -> Response {
        let path = request.uri.path
        if path.hasPrefix("/run/") {
            return await run.handle(request, path: path.dropFirst(5))
        }
        if path == "/run" {
            return run.errorJSON(status: 400, message: "missing lambda name: use /run/NAME", lambda: "", requestID: "")
        }
        return try await admin.respond(to: request, context: context)
    }
}
