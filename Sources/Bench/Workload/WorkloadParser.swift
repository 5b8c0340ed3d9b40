import Foundation
import Yams

/// A problem in a workload (or trace) file, rendered as `FILE:LINE: FIELD: MESSAGE`.
public struct WorkloadError: Error, Equatable, CustomStringConvertible, LocalizedError {
    public var file: String
    public var line: Int?
    public var field: String
    public var message: String

    public init(file: String, line: Int?, field: String, message: String) {
        self.file = file
        self.line = line
        self.field = field
        self.message = message
    }

    public var description: String {
        let location = line.map { "\(file):\($0)" } ?? file
        return field.isEmpty ? "\(location): \(message)" : "\(location): \(field): \(message)"
    }

    public var errorDescription: String? { description }
}

/// Parses `Workloads/*.yaml` (schema in `Workloads/README.md`) into a `Workload`.
public enum WorkloadParser {
    static let topLevelKeys = [
        "name", "seed", "duration", "warmup", "targets", "arrival", "clients", "think", "rate", "process",
        "phases", "trace", "model",
    ]
    static let targetKeys = ["lambda", "weight", "method", "path", "payload"]
    static let phaseKeys = ["duration", "rate", "to_rate", "clients", "think", "process"]
    static let traceKeys = ["file", "functions", "scale", "start_minute"]

    /// Reads and parses the file at `path`; errors name `path` as given.
    public static func load(path: String) throws -> Workload {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw WorkloadError(file: path, line: nil, field: "", message: "cannot read file")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw WorkloadError(file: path, line: nil, field: "", message: "not UTF-8 text")
        }
        let base = URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
        return try parse(text, file: path, defaultName: base)
    }

    /// Parses workload YAML text; `file` is only used in error messages.
    public static func parse(_ text: String, file: String, defaultName: String = "workload") throws -> Workload {
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            throw yamlError(error, file: file)
        }
        guard let root, let map = root.mapping else {
            throw WorkloadError(
                file: file, line: root?.mark?.line ?? 1, field: "", message: "expected a mapping of workload fields")
        }
        let reader = FieldReader(file: file)
        try reader.refuseUnknownKeys(map, known: topLevelKeys, path: "")

        let name = try reader.optionalString(map, "name", path: "name") ?? defaultName
        let seedValue = try reader.optionalInt(map, "seed", path: "seed", minimum: 0) ?? 1
        let warmup = try reader.optionalNumber(map, "warmup", path: "warmup", minimum: 0) ?? 0
        let targets = try parseTargets(map, reader: reader)
        let (arrival, impliedDuration) = try parseArrival(map, reader: reader, warmup: warmup)
        var duration = try reader.optionalNumber(map, "duration", path: "duration", minimum: 0, exclusive: true)
        if duration == nil { duration = impliedDuration }
        guard let duration else {
            throw WorkloadError(file: file, line: map.mark?.line, field: "duration", message: "required (seconds of measured load)")
        }
        guard duration > 0 else {
            throw WorkloadError(
                file: file, line: map.mark?.line, field: "duration",
                message: "the phases or trace leave no time after the warm-up of \(FieldReader.format(warmup)) s")
        }
        var models: [String: ModelParameterValue] = [:]
        if let modelNode = map["model"] {
            guard let modelMap = modelNode.mapping else {
                throw reader.error(modelNode, "model", "expected a mapping (container: ..., lambda: ...)")
            }
            for (key, value) in modelMap {
                let kind = key.string ?? ""
                models[kind] = try reader.rawValue(value, path: "model.\(kind)")
            }
        }
        return Workload(
            name: name, targets: targets, arrival: arrival, durationSeconds: duration, warmupSeconds: warmup,
            seed: UInt64(seedValue), modelParameters: models)
    }

    static func yamlError(_ error: YamlError, file: String) -> WorkloadError {
        switch error {
        case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _),
            .composer(_, let problem, let mark, _):
            return WorkloadError(file: file, line: mark.line, field: "", message: "invalid YAML: \(problem)")
        case .duplicatedKeysInMapping(let duplicates, let context):
            return WorkloadError(
                file: file, line: context.mark.line, field: duplicates.joined(separator: ", "),
                message: "duplicate key")
        default:
            return WorkloadError(file: file, line: nil, field: "", message: "invalid YAML: \(error)")
        }
    }

    static func parseTargets(_ map: Node.Mapping, reader: FieldReader) throws -> [WorkloadTarget] {
        guard let node = map["targets"] else {
            throw reader.missing(map, "targets", "required (a list of lambdas to call)")
        }
        guard let list = node.sequence else { throw reader.error(node, "targets", "expected a list") }
        guard !list.isEmpty else { throw reader.error(node, "targets", "expected at least one target") }
        var targets: [WorkloadTarget] = []
        for (index, item) in list.enumerated() {
            let path = "targets[\(index)]"
            guard let entry = item.mapping else {
                throw reader.error(item, path, "expected a mapping with at least `lambda`")
            }
            try reader.refuseUnknownKeys(entry, known: targetKeys, path: path)
            guard let lambda = try reader.optionalString(entry, "lambda", path: "\(path).lambda") else {
                throw reader.missing(entry, "\(path).lambda", "required")
            }
            let allowed = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "-_."))
            guard !lambda.isEmpty, lambda.unicodeScalars.allSatisfy(allowed.contains) else {
                throw reader.error(
                    entry["lambda"]!, "\(path).lambda", "expected a lambda name (letters, digits, '-', '_', '.')")
            }
            let weight = try reader.optionalNumber(entry, "weight", path: "\(path).weight", minimum: 0, exclusive: true) ?? 1
            let method = (try reader.optionalString(entry, "method", path: "\(path).method") ?? "POST").uppercased()
            guard ["GET", "POST", "PUT", "DELETE", "PATCH"].contains(method) else {
                throw reader.error(entry["method"]!, "\(path).method", "expected one of GET, POST, PUT, DELETE, PATCH")
            }
            var subPath = try reader.optionalString(entry, "path", path: "\(path).path") ?? ""
            if !subPath.isEmpty && !subPath.hasPrefix("/") { subPath = "/" + subPath }
            var payload = "{}"
            if let payloadNode = entry["payload"] {
                if let scalar = payloadNode.scalar {
                    payload = scalar.string
                } else {
                    payload = try reader.jsonText(payloadNode, path: "\(path).payload")
                }
            }
            targets.append(WorkloadTarget(lambda: lambda, weight: weight, method: method, path: subPath, payload: payload))
        }
        return targets
    }

    /// The arrival model and, for phases and traces, the measured duration they imply.
    static func parseArrival(_ map: Node.Mapping, reader: FieldReader, warmup: Double) throws -> (ArrivalModel, Double?) {
        guard let node = map["arrival"] else {
            throw reader.missing(map, "arrival", "required (closed, open, phases or trace)")
        }
        guard let kind = node.scalar?.string, ["closed", "open", "phases", "trace"].contains(kind) else {
            throw reader.error(node, "arrival", "expected one of closed, open, phases, trace")
        }
        let owners: [String: String] = [
            "clients": "closed", "think": "closed", "rate": "open", "process": "open", "phases": "phases",
            "trace": "trace",
        ]
        for (key, owner) in owners.sorted(by: { $0.key < $1.key }) where owner != kind {
            if let misplaced = map[key] {
                throw reader.error(misplaced, key, "only valid with `arrival: \(owner)` (this file uses `arrival: \(kind)`)")
            }
        }
        switch kind {
        case "closed":
            guard let clients = try reader.optionalInt(map, "clients", path: "clients", minimum: 1) else {
                throw reader.missing(map, "clients", "required with `arrival: closed`")
            }
            let think = try reader.optionalNumber(map, "think", path: "think", minimum: 0) ?? 0
            return (.closed(clients: clients, thinkSeconds: think), nil)
        case "open":
            guard let rate = try reader.optionalNumber(map, "rate", path: "rate", minimum: 0, exclusive: true) else {
                throw reader.missing(map, "rate", "required with `arrival: open` (requests per second)")
            }
            let process = try reader.optionalProcess(map, "process", path: "process") ?? .poisson
            return (.open(rate: rate, process: process), nil)
        case "phases":
            guard let phasesNode = map["phases"] else {
                throw reader.missing(map, "phases", "required with `arrival: phases`")
            }
            guard let list = phasesNode.sequence, !list.isEmpty else {
                throw reader.error(phasesNode, "phases", "expected a non-empty list of phases")
            }
            var phases: [Phase] = []
            for (index, item) in list.enumerated() {
                phases.append(try parsePhase(item, index: index, reader: reader))
            }
            let total = phases.reduce(0) { $0 + $1.durationSeconds }
            return (.phases(phases), total - warmup)
        default:
            guard let traceNode = map["trace"] else {
                throw reader.missing(map, "trace", "required with `arrival: trace` (file: ...)")
            }
            guard let traceMap = traceNode.mapping else {
                throw reader.error(traceNode, "trace", "expected a mapping with `file`")
            }
            try reader.refuseUnknownKeys(traceMap, known: traceKeys, path: "trace")
            guard let file = try reader.optionalString(traceMap, "file", path: "trace.file") else {
                throw reader.missing(traceMap, "trace.file", "required (CSV in the Azure Functions 2019 format)")
            }
            var functions: [String] = []
            if let functionsNode = traceMap["functions"] {
                guard let list = functionsNode.sequence else {
                    throw reader.error(functionsNode, "trace.functions", "expected a list of HashFunction values")
                }
                for (index, item) in list.enumerated() {
                    guard let value = item.scalar?.string else {
                        throw reader.error(item, "trace.functions[\(index)]", "expected a string")
                    }
                    functions.append(value)
                }
            }
            let scale = try reader.optionalNumber(traceMap, "scale", path: "trace.scale", minimum: 0, exclusive: true) ?? 1
            let start = try reader.optionalInt(traceMap, "start_minute", path: "trace.start_minute", minimum: 1) ?? 1
            guard start <= 1440 else {
                throw reader.error(traceMap["start_minute"]!, "trace.start_minute", "expected a minute between 1 and 1440")
            }
            let spec = TraceSpec(file: file, functions: functions, scale: scale, startMinute: start)
            // Without `duration`, replay to the end of the day's columns.
            return (.trace(spec), Double(1440 - start + 1) * 60 - warmup)
        }
    }

    static func parsePhase(_ node: Node, index: Int, reader: FieldReader) throws -> Phase {
        let path = "phases[\(index)]"
        guard let map = node.mapping else {
            throw reader.error(node, path, "expected a mapping with `duration` and `rate` or `clients`")
        }
        try reader.refuseUnknownKeys(map, known: phaseKeys, path: path)
        guard let duration = try reader.optionalNumber(map, "duration", path: "\(path).duration", minimum: 0, exclusive: true)
        else {
            throw reader.missing(map, "\(path).duration", "required (seconds)")
        }
        let rate = try reader.optionalNumber(map, "rate", path: "\(path).rate", minimum: 0)
        let toRate = try reader.optionalNumber(map, "to_rate", path: "\(path).to_rate", minimum: 0)
        let clients = try reader.optionalInt(map, "clients", path: "\(path).clients", minimum: 1)
        let think = try reader.optionalNumber(map, "think", path: "\(path).think", minimum: 0)
        let process = try reader.optionalProcess(map, "process", path: "\(path).process")
        switch (rate, clients) {
        case (nil, nil):
            throw reader.missing(map, path, "expected `rate` (open phase) or `clients` (closed phase)")
        case (.some, .some):
            throw reader.error(map["clients"]!, "\(path).clients", "a phase has either `rate` or `clients`, not both")
        case (.some, nil):
            if think != nil { throw reader.error(map["think"]!, "\(path).think", "only valid in a closed phase (`clients`)") }
            return Phase(durationSeconds: duration, rate: rate, toRate: toRate, process: process ?? .poisson)
        case (nil, .some(let clients)):
            if toRate != nil { throw reader.error(map["to_rate"]!, "\(path).to_rate", "only valid in an open phase (`rate`)") }
            if process != nil { throw reader.error(map["process"]!, "\(path).process", "only valid in an open phase (`rate`)") }
            return Phase(durationSeconds: duration, clients: clients, thinkSeconds: think ?? 0)
        }
    }
}

/// Typed field access with errors that carry the file, line and field path.
struct FieldReader {
    let file: String

    func error(_ node: Node, _ path: String, _ message: String) -> WorkloadError {
        WorkloadError(file: file, line: node.mark?.line, field: path, message: message)
    }

    func missing(_ map: Node.Mapping, _ path: String, _ message: String) -> WorkloadError {
        WorkloadError(file: file, line: map.mark?.line, field: path, message: message)
    }

    func refuseUnknownKeys(_ map: Node.Mapping, known: [String], path: String) throws {
        for key in map.keys {
            let name = key.scalar?.string ?? "?"
            if !known.contains(name) {
                let field = path.isEmpty ? name : "\(path).\(name)"
                throw error(key, field, "unknown key (known: \(known.joined(separator: ", ")))")
            }
        }
    }

    func optionalString(_ map: Node.Mapping, _ key: String, path: String) throws -> String? {
        guard let node = map[key] else { return nil }
        guard let scalar = node.scalar else { throw error(node, path, "expected a string") }
        return scalar.string
    }

    func optionalNumber(
        _ map: Node.Mapping, _ key: String, path: String, minimum: Double, exclusive: Bool = false
    ) throws -> Double? {
        guard let node = map[key] else { return nil }
        guard node.scalar != nil, let value = node.float ?? node.int.map(Double.init), value.isFinite else {
            throw error(node, path, "expected a number")
        }
        if exclusive ? value <= minimum : value < minimum {
            let relation = exclusive ? "greater than" : "at least"
            throw error(node, path, "expected a number \(relation) \(Self.format(minimum)), got \(Self.format(value))")
        }
        return value
    }

    func optionalInt(_ map: Node.Mapping, _ key: String, path: String, minimum: Int) throws -> Int? {
        guard let node = map[key] else { return nil }
        guard node.scalar != nil, let value = node.int else { throw error(node, path, "expected an integer") }
        guard value >= minimum else { throw error(node, path, "expected an integer of at least \(minimum), got \(value)") }
        return value
    }

    func optionalProcess(_ map: Node.Mapping, _ key: String, path: String) throws -> ArrivalProcess? {
        guard let node = map[key] else { return nil }
        guard let text = node.scalar?.string, let process = ArrivalProcess(rawValue: text) else {
            throw error(node, path, "expected poisson or constant")
        }
        return process
    }

    /// A YAML value kept raw for the models.
    func rawValue(_ node: Node, path: String) throws -> ModelParameterValue {
        switch node {
        case .scalar(let scalar):
            if scalar.style == .plain || scalar.style == .any {
                if let bool = node.bool { return .bool(bool) }
                if let int = node.int { return .number(Double(int)) }
                if let number = node.float { return .number(number) }
            }
            return .string(scalar.string)
        case .sequence(let list):
            return .list(try list.enumerated().map { try rawValue($0.element, path: "\(path)[\($0.offset)]") })
        case .mapping(let map):
            var result: [String: ModelParameterValue] = [:]
            for (key, value) in map {
                guard let name = key.scalar?.string else { throw error(key, path, "expected string keys") }
                result[name] = try rawValue(value, path: "\(path).\(name)")
            }
            return .mapping(result)
        case .alias:
            throw error(node, path, "YAML aliases are not supported")
        }
    }

    /// JSON text of a YAML mapping or list (keys sorted, so the same file gives the same bytes).
    func jsonText(_ node: Node, path: String) throws -> String {
        let value = try jsonObject(node, path: path)
        let data = try JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .fragmentsAllowed])
        return String(decoding: data, as: UTF8.self)
    }

    private func jsonObject(_ node: Node, path: String) throws -> Any {
        switch node {
        case .scalar(let scalar):
            if scalar.style == .plain || scalar.style == .any {
                if node.null != nil { return NSNull() }
                if let bool = node.bool { return bool }
                if let int = node.int { return int }
                if let number = node.float { return number }
            }
            return scalar.string
        case .sequence(let list):
            return try list.enumerated().map { try jsonObject($0.element, path: "\(path)[\($0.offset)]") }
        case .mapping(let map):
            var result: [String: Any] = [:]
            for (key, value) in map {
                guard let name = key.scalar?.string else { throw error(key, path, "expected string keys") }
                result[name] = try jsonObject(value, path: "\(path).\(name)")
            }
            return result
        case .alias:
            throw error(node, path, "YAML aliases are not supported")
        }
    }

    static func format(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(value)
    }
}
