import Foundation
import Synchronization

/// The part of `create` both backends share: validate, spawn, wait for the ready frame, clean up on failure.
enum SandboxStarter {
    static func isValidID(_ id: String) -> Bool {
        !id.isEmpty && id.utf8.count <= 200 && id != "." && id != ".."
            && id.unicodeScalars.allSatisfy { ($0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0))) || "._-".unicodeScalars.contains($0) }
    }

    static func validate(_ spec: SandboxSpec, extraReadOnlyPaths: [String]) throws {
        guard isValidID(spec.id) else {
            throw SandboxError.startFailed("invalid sandbox id \"\(spec.id)\": use 1-200 of A-Z a-z 0-9 . _ -")
        }
        guard spec.runtime.executable.hasPrefix("/") else {
            throw SandboxError.startFailed("runtime executable \"\(spec.runtime.executable)\" must be an absolute path")
        }
        guard spec.limits.memoryMB > 0 else {
            throw SandboxError.startFailed("memory limit must be positive, got \(spec.limits.memoryMB) MB")
        }
        guard spec.limits.timeoutSeconds > 0 else {
            throw SandboxError.startFailed("timeout must be positive, got \(spec.limits.timeoutSeconds) s")
        }
        if let code = spec.codeDirectory {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: code, isDirectory: &isDirectory), isDirectory.boolValue else {
                throw SandboxError.startFailed("code directory \(code) does not exist or is not a directory")
            }
        }
        for path in spec.runtime.readOnlyPaths + extraReadOnlyPaths {
            guard path.hasPrefix("/"), path != "/" else {
                throw SandboxError.startFailed("read-only path \"\(path)\" must be an absolute path below /")
            }
            guard FileManager.default.fileExists(atPath: path) else {
                throw SandboxError.startFailed("read-only path \(path) does not exist")
            }
        }
        for key in spec.environment.keys where key.isEmpty || key.contains("=") || key.contains("\0") {
            throw SandboxError.startFailed("invalid environment variable name \"\(key)\"")
        }
    }

    static func environment(_ values: [String: String]) -> [String] {
        values.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
    }

    static func start(
        spec: SandboxSpec, request: SpawnRequest, resources makeResources: @Sendable (Int32) -> SandboxResources,
        cleanUpBeforeSpawn: @Sendable () async -> Void, startedAt: ContinuousClock.Instant,
        onDestroy: @escaping @Sendable (String) -> Void
    ) async throws -> RuntimeSandbox {
        let spawned: SpawnedChild
        switch await ChildSpawner.spawn(request) {
        case .success(let child):
            spawned = child
        case .failure(let failure):
            await cleanUpBeforeSpawn()
            throw SandboxError.startFailed(failure.message)
        }
        let resources = makeResources(spawned.pid)
        let connection: RuntimeConnection
        do {
            connection = try await RuntimeConnection.open(socket: spawned.socket)
        } catch {
            await resources.tearDown()
            throw SandboxError.startFailed("cannot attach to the runtime socket: \(error)")
        }

        let startLimit = max(10, spec.limits.timeoutSeconds)
        let watchdogFired = Mutex(false)
        let watchdog = Task {
            try await Task.sleep(for: .seconds(startLimit))
            watchdogFired.withLock { $0 = true }
            await resources.killProcesses()
        }
        let ready: WireReady
        do {
            ready = try await connection.readReady()
            watchdog.cancel()
        } catch {
            watchdog.cancel()
            _ = await watchdog.result
            let status = await resources.exitStatus()
            await connection.close()
            await resources.tearDown()
            let why: String
            if watchdogFired.withLock({ $0 }) {
                why = "runtime \(spec.runtime.executable) did not report ready within \(SandboxError.format(startLimit)) s"
            } else if case RuntimeConnectionError.closed = error {
                why = "runtime \(spec.runtime.executable) \(status?.description ?? "closed its socket") before it was ready"
            } else {
                why = "runtime \(spec.runtime.executable): \(error)"
            }
            throw SandboxError.startFailed(why + logTail(spec.logPath))
        }
        guard ready.ready else {
            await connection.close()
            await resources.tearDown()
            let why = ready.error.map { "\($0.kind): \($0.message)" } ?? "the runtime reported it is not ready"
            throw SandboxError.startFailed(why)
        }
        let elapsed = ContinuousClock.now - startedAt
        let milliseconds = Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
        return RuntimeSandbox(
            id: spec.id, initMilliseconds: milliseconds, limits: spec.limits, resources: resources,
            connection: connection, onDestroy: onDestroy)
    }

    /// The last lines of the sandbox log, to explain a failed start.
    static func logTail(_ path: String) -> String {
        guard let data = FileManager.default.contents(atPath: path), !data.isEmpty else { return "" }
        let text = String(decoding: data.suffix(600), as: UTF8.self)
        let lines = text.split(separator: "\n").suffix(6).joined(separator: " | ")
        return " (log \(path): \(lines))"
    }
}
