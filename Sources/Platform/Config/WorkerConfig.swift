import Foundation

/// The worker's `config.json`. Every field has a default, so `{}` is a valid file; unknown keys are refused
/// (a typo must not silently fall back to a default).
public struct WorkerConfig: Codable, Sendable, Equatable {
    /// TCP port of the HTTP API.
    public var port: Int = 5000
    /// Address to bind.
    public var host: String = "127.0.0.1"
    /// Directory of folder lambdas; relative paths are resolved against the worker directory.
    public var registry: String = "registry"
    /// How long the registry may serve a cached lookup before checking the folder for new code (ms).
    public var registryCacheMs: Int = 5000
    /// "auto" (isolated when privileged, otherwise process), "isolated" (fail if not possible) or "process".
    public var sandbox: String = "auto"
    /// Python interpreter for folder lambdas; empty means the system python3 (`/usr/bin/python3`, else PATH).
    public var python: String = ""
    /// The binary hosting built-in Swift apps; empty means this executable.
    public var swiftRuntime: String = ""
    /// Default limits of every sandbox; `ol.yaml` `limits` override them per lambda.
    public var limits: SandboxLimits = SandboxLimits()
    /// Give sandboxes the host network (default: an empty network namespace, no network).
    public var sandboxNetwork: Bool = false
    /// CPU scheduling policy of sandbox processes: "batch" (SCHED_BATCH: a woken sandbox does not preempt the worker,
    /// which saves a reschedule interrupt and a context switch per request) or "normal" (SCHED_OTHER).
    public var sandboxScheduling: String = "batch"
    /// Extra host paths made visible read-only inside every isolated sandbox (same path inside).
    public var sandboxReadOnlyPaths: [String] = []
    /// Sum of sandbox memory limits allowed at once (MB); 0 means machine RAM minus `memory_reserve_mb`.
    public var memoryPoolMb: Int = 0
    /// RAM kept for the worker and the system when `memory_pool_mb` is 0.
    public var memoryReserveMb: Int = 1024
    /// Most sandboxes of one lambda at once.
    public var maxInstancesPerLambda: Int = 256
    /// Requests that may wait per lambda before new ones get 429.
    public var maxQueuePerLambda: Int = 1024
    /// Largest request body accepted on /run and /registry (bytes); larger gets 413.
    public var maxBodyBytes: Int = 6 * 1024 * 1024
    /// Idle sandboxes are destroyed after this many seconds (the fixed keep-alive policy).
    public var keepAliveS: Double = 600
    /// Idle sandboxes are frozen (cgroup freezer) after this many milliseconds idle; -1 never.
    public var pauseAfterMs: Int = 1000
    /// Billed time is the run time rounded up to this granularity (ms).
    public var billingGranularityMs: Int = 100
    /// Environment variables given to every sandbox (before the lambda's own `environment`).
    public var environment: [String: String] = [:]
    /// "trace", "debug", "info", "notice", "warning", "error".
    public var logLevel: String = "info"

    public init() {}

    enum CodingKeys: String, CodingKey, CaseIterable {
        case port, host, registry, sandbox, python, limits, environment
        case registryCacheMs = "registry_cache_ms"
        case swiftRuntime = "swift_runtime"
        case sandboxNetwork = "sandbox_network"
        case sandboxScheduling = "sandbox_scheduling"
        case sandboxReadOnlyPaths = "sandbox_read_only_paths"
        case memoryPoolMb = "memory_pool_mb"
        case memoryReserveMb = "memory_reserve_mb"
        case maxInstancesPerLambda = "max_instances_per_lambda"
        case maxQueuePerLambda = "max_queue_per_lambda"
        case maxBodyBytes = "max_body_bytes"
        case keepAliveS = "keep_alive_s"
        case pauseAfterMs = "pause_after_ms"
        case billingGranularityMs = "billing_granularity_ms"
        case logLevel = "log_level"
    }

    public init(from decoder: any Decoder) throws {
        let any = try decoder.container(keyedBy: AnyKey.self)
        let known = Set(CodingKeys.allCases.map(\.rawValue))
        if let unknown = any.allKeys.map(\.stringValue).filter({ !known.contains($0) }).sorted().first {
            throw ConfigError.invalid(field: unknown, "unknown key (known: \(known.sorted().joined(separator: ", ")))")
        }
        let c = try decoder.container(keyedBy: CodingKeys.self)
        var d = WorkerConfig()
        func take<T: Decodable>(_ key: CodingKeys, _ value: inout T) throws {
            do {
                if let v = try c.decodeIfPresent(T.self, forKey: key) { value = v }
            } catch {
                throw ConfigError.invalid(field: key.rawValue, "expected \(ConfigError.typeName(T.self))")
            }
        }
        try take(.port, &d.port)
        try take(.host, &d.host)
        try take(.registry, &d.registry)
        try take(.registryCacheMs, &d.registryCacheMs)
        try take(.sandbox, &d.sandbox)
        try take(.python, &d.python)
        try take(.swiftRuntime, &d.swiftRuntime)
        if c.contains(.limits) {
            d.limits = try LimitsOverride.decode(from: c.superDecoder(forKey: .limits), field: "limits").applied(to: d.limits)
        }
        try take(.sandboxNetwork, &d.sandboxNetwork)
        try take(.sandboxScheduling, &d.sandboxScheduling)
        try take(.sandboxReadOnlyPaths, &d.sandboxReadOnlyPaths)
        try take(.memoryPoolMb, &d.memoryPoolMb)
        try take(.memoryReserveMb, &d.memoryReserveMb)
        try take(.maxInstancesPerLambda, &d.maxInstancesPerLambda)
        try take(.maxQueuePerLambda, &d.maxQueuePerLambda)
        try take(.maxBodyBytes, &d.maxBodyBytes)
        try take(.keepAliveS, &d.keepAliveS)
        try take(.pauseAfterMs, &d.pauseAfterMs)
        try take(.billingGranularityMs, &d.billingGranularityMs)
        try take(.environment, &d.environment)
        try take(.logLevel, &d.logLevel)
        self = d
        try validate()
    }

    /// Checks ranges; throws `ConfigError.invalid` naming the field.
    public func validate() throws {
        guard (0...65535).contains(port) else { throw ConfigError.invalid(field: "port", "must be 0...65535, got \(port)") }
        guard ["auto", "isolated", "process"].contains(sandbox) else {
            throw ConfigError.invalid(field: "sandbox", "must be auto, isolated or process, got \"\(sandbox)\"")
        }
        guard ["batch", "normal"].contains(sandboxScheduling) else {
            throw ConfigError.invalid(field: "sandbox_scheduling", "must be batch or normal, got \"\(sandboxScheduling)\"")
        }
        guard registryCacheMs >= 0 else { throw ConfigError.invalid(field: "registry_cache_ms", "must be >= 0") }
        try limits.validate(field: "limits")
        guard memoryPoolMb >= 0 else { throw ConfigError.invalid(field: "memory_pool_mb", "must be >= 0") }
        guard maxInstancesPerLambda >= 1 else { throw ConfigError.invalid(field: "max_instances_per_lambda", "must be >= 1") }
        guard maxQueuePerLambda >= 0 else { throw ConfigError.invalid(field: "max_queue_per_lambda", "must be >= 0") }
        guard maxBodyBytes >= 0 else { throw ConfigError.invalid(field: "max_body_bytes", "must be >= 0") }
        guard keepAliveS >= 0 else { throw ConfigError.invalid(field: "keep_alive_s", "must be >= 0") }
        guard pauseAfterMs >= -1 else { throw ConfigError.invalid(field: "pause_after_ms", "must be >= -1") }
        guard billingGranularityMs >= 1 else { throw ConfigError.invalid(field: "billing_granularity_ms", "must be >= 1") }
        guard ["trace", "debug", "info", "notice", "warning", "error", "critical"].contains(logLevel) else {
            throw ConfigError.invalid(field: "log_level", "must be one of trace, debug, info, notice, warning, error, got \"\(logLevel)\"")
        }
    }

    /// Reads `path`; errors name the file.
    public static func load(from path: String) throws -> WorkerConfig {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigError.unreadable(path: path)
        }
        do {
            return try JSONDecoder().decode(WorkerConfig.self, from: data)
        } catch let error as ConfigError {
            throw ConfigError.inFile(path: path, error)
        } catch let DecodingError.dataCorrupted(context) {
            throw ConfigError.inFile(path: path, .invalid(field: "(file)", "not valid JSON: \(context.underlyingError.map { "\($0)" } ?? context.debugDescription)"))
        } catch {
            throw ConfigError.inFile(path: path, .invalid(field: "(file)", "\(error)"))
        }
    }

    /// Pretty JSON with every field, as written on first use of a worker directory.
    public func encodedJSON() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(self)
    }

    /// The memory pool in MB after applying the default (RAM minus reserve).
    public func resolvedMemoryPoolMb(physicalMemoryBytes: UInt64 = ProcessInfo.processInfo.physicalMemory) -> Int {
        if memoryPoolMb > 0 { return memoryPoolMb }
        return max(limits.memoryMB, Int(physicalMemoryBytes / (1024 * 1024)) - memoryReserveMb)
    }
}

/// `limits:` in config.json or ol.yaml: every field optional, overriding the defaults it is applied to.
public struct LimitsOverride: Sendable, Equatable {
    public var memoryMB: Int?
    public var timeoutSeconds: Double?
    public var procs: Int?
    public var cpuPercent: Int?

    public init(memoryMB: Int? = nil, timeoutSeconds: Double? = nil, procs: Int? = nil, cpuPercent: Int? = nil) {
        self.memoryMB = memoryMB
        self.timeoutSeconds = timeoutSeconds
        self.procs = procs
        self.cpuPercent = cpuPercent
    }

    public func applied(to base: SandboxLimits) -> SandboxLimits {
        var l = base
        if let memoryMB { l.memoryMB = memoryMB }
        if let timeoutSeconds { l.timeoutSeconds = timeoutSeconds }
        if let procs { l.procs = procs }
        if let cpuPercent { l.cpuPercent = cpuPercent }
        return l
    }

    static func decode(from decoder: any Decoder, field: String) throws -> LimitsOverride {
        let c: KeyedDecodingContainer<AnyKey>
        do { c = try decoder.container(keyedBy: AnyKey.self) } catch {
            throw ConfigError.invalid(field: field, "expected a mapping with memory_mb, timeout_s, procs, cpu_percent")
        }
        var o = LimitsOverride()
        for key in c.allKeys {
            let name = "\(field).\(key.stringValue)"
            switch key.stringValue {
            case "memory_mb": o.memoryMB = try decodeNumber(c, key, name)
            case "procs": o.procs = try decodeNumber(c, key, name)
            case "cpu_percent": o.cpuPercent = try decodeNumber(c, key, name)
            case "timeout_s":
                do { o.timeoutSeconds = try c.decode(Double.self, forKey: key) } catch {
                    throw ConfigError.invalid(field: name, "expected a number")
                }
            default:
                throw ConfigError.invalid(field: name, "unknown limit (known: memory_mb, timeout_s, procs, cpu_percent)")
            }
        }
        try o.applied(to: SandboxLimits()).validate(field: field)
        return o
    }

    private static func decodeNumber(_ c: KeyedDecodingContainer<AnyKey>, _ key: AnyKey, _ name: String) throws -> Int {
        do { return try c.decode(Int.self, forKey: key) } catch {
            throw ConfigError.invalid(field: name, "expected a whole number")
        }
    }
}

extension SandboxLimits {
    /// Checks ranges; `field` prefixes the names in errors.
    public func validate(field: String) throws {
        guard memoryMB >= 8 else { throw ConfigError.invalid(field: "\(field).memory_mb", "must be >= 8, got \(memoryMB)") }
        guard timeoutSeconds > 0 else { throw ConfigError.invalid(field: "\(field).timeout_s", "must be > 0, got \(timeoutSeconds)") }
        guard procs >= 1 else { throw ConfigError.invalid(field: "\(field).procs", "must be >= 1, got \(procs)") }
        guard (1...100 * 1024).contains(cpuPercent) else {
            throw ConfigError.invalid(field: "\(field).cpu_percent", "must be 1...\(100 * 1024), got \(cpuPercent)")
        }
    }
}

public enum ConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    case invalid(field: String, String)
    case unreadable(path: String)
    indirect case inFile(path: String, ConfigError)

    public var description: String {
        switch self {
        case .invalid(let field, let why): return "\(field): \(why)"
        case .unreadable(let path): return "\(path): cannot read file"
        case .inFile(let path, let inner): return "\(path): \(inner)"
        }
    }

    static func typeName<T>(_ type: T.Type) -> String {
        switch type {
        case is Int.Type: return "a whole number"
        case is Double.Type: return "a number"
        case is Bool.Type: return "true or false"
        case is String.Type: return "a string"
        case is [String].Type: return "a list of strings"
        case is [String: String].Type: return "a mapping of strings to strings"
        default: return "\(type)"
        }
    }
}

/// A coding key for any string, used to find unknown keys.
struct AnyKey: CodingKey {
    var stringValue: String
    var intValue: Int?
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) {
        self.stringValue = String(intValue)
        self.intValue = intValue
    }
}
