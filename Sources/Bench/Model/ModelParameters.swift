import Foundation
import Yams

/// A bad model parameter, named by where it came from and its field path.
public struct ModelParameterError: Error, CustomStringConvertible, Equatable {
    /// e.g. "Workloads/models/container.yaml:7" or "workload elasticity: model.container".
    public var location: String
    /// e.g. "autoscaling.period_s".
    public var field: String
    public var message: String

    public var description: String { field.isEmpty ? "\(location): \(message)" : "\(location): \(field): \(message)" }
}

/// One source of model parameters (a models file or a workload's `model:` section), read field by field.
/// Later layers override earlier ones; each error names the layer's origin and, for files, the line.
public struct ParameterLayer: Sendable {
    public var origin: String
    public var values: [String: ModelParameterValue]
    /// Line of each field path (e.g. "autoscaling.period_s"); empty when the source has no lines.
    public var lines: [String: Int]

    public init(origin: String, values: [String: ModelParameterValue], lines: [String: Int] = [:]) {
        self.origin = origin
        self.values = values
        self.lines = lines
    }

    /// Loads a YAML mapping of parameters; nil when the file does not exist.
    public static func load(path: String, displayName: String? = nil) throws -> ParameterLayer? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        let name = displayName ?? path
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ModelParameterError(location: name, field: "", message: "cannot read file: \(error.localizedDescription)")
        }
        return try parse(yaml: text, origin: name)
    }

    public static func parse(yaml: String, origin: String) throws -> ParameterLayer {
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch {
            throw ModelParameterError(location: origin, field: "", message: "invalid YAML: \(error)")
        }
        guard let root else { return ParameterLayer(origin: origin, values: [:]) }
        var lines: [String: Int] = [:]
        guard case .mapping = root else {
            let line = root.mark.map { ":\($0.line)" } ?? ""
            throw ModelParameterError(location: origin + line, field: "", message: "expected a mapping of parameters")
        }
        guard case .mapping(let values)? = convert(root, path: "", lines: &lines) else {
            return ParameterLayer(origin: origin, values: [:])
        }
        return ParameterLayer(origin: origin, values: values, lines: lines)
    }

    /// Converts a YAML node; nulls become nil (treated as "not set").
    private static func convert(_ node: Node, path: String, lines: inout [String: Int]) -> ModelParameterValue? {
        if let line = node.mark?.line, !path.isEmpty { lines[path] = line }
        switch node {
        case .scalar(let scalar):
            if node.null != nil && scalar.style == .plain { return nil }
            if scalar.style == .plain {
                if let bool = node.bool { return .bool(bool) }
                if let number = node.float { return .number(number) }
            }
            return .string(scalar.string)
        case .mapping(let mapping):
            var result: [String: ModelParameterValue] = [:]
            for (key, value) in mapping {
                let name = key.string ?? "\(key)"
                let childPath = path.isEmpty ? name : "\(path).\(name)"
                if let converted = convert(value, path: childPath, lines: &lines) { result[name] = converted }
                // Errors point at the key's line (a block value starts on the next line).
                if let line = key.mark?.line { lines[childPath] = line }
            }
            return .mapping(result)
        case .sequence(let sequence):
            var items: [ModelParameterValue] = []
            for (index, item) in sequence.enumerated() {
                if let converted = convert(item, path: "\(path)[\(index)]", lines: &lines) { items.append(converted) }
            }
            return .list(items)
        case .alias:
            return nil
        }
    }

    func reader() -> ParameterReader { ParameterReader(layer: self, prefix: "", values: values) }
}

/// Typed access to one mapping inside a layer, with errors naming the full field path.
struct ParameterReader {
    let layer: ParameterLayer
    let prefix: String
    let values: [String: ModelParameterValue]

    func path(_ key: String) -> String { prefix.isEmpty ? key : "\(prefix).\(key)" }

    func error(_ key: String, _ message: String) -> ModelParameterError {
        let fieldPath = path(key)
        var location = layer.origin
        if let line = layer.lines[fieldPath] ?? (prefix.isEmpty ? nil : layer.lines[prefix]) { location += ":\(line)" }
        return ModelParameterError(location: location, field: fieldPath, message: message)
    }

    func has(_ key: String) -> Bool { values[key] != nil }

    /// Rejects fields this model does not know (typos would otherwise be silently ignored).
    func requireKnown(_ known: [String]) throws {
        for key in values.keys.sorted() where !known.contains(key) {
            throw error(key, "unknown parameter (known: \(known.joined(separator: ", ")))")
        }
    }

    func number(_ key: String, min: Double? = nil, positive: Bool = false) throws -> Double? {
        guard let value = values[key] else { return nil }
        guard case .number(let number) = value, number.isFinite else { throw error(key, "expected a number, got \(describe(value))") }
        if positive && number <= 0 { throw error(key, "must be greater than 0, got \(format(number))") }
        if let min, number < min { throw error(key, "must be at least \(format(min)), got \(format(number))") }
        return number
    }

    func integer(_ key: String, min: Int? = nil) throws -> Int? {
        guard let value = values[key] else { return nil }
        guard case .number(let number) = value, number.isFinite, number == number.rounded(), abs(number) < 1e15 else {
            throw error(key, "expected a whole number, got \(describe(value))")
        }
        if let min, Int(number) < min { throw error(key, "must be at least \(min), got \(Int(number))") }
        return Int(number)
    }

    func bool(_ key: String) throws -> Bool? {
        guard let value = values[key] else { return nil }
        guard case .bool(let flag) = value else { throw error(key, "expected true or false, got \(describe(value))") }
        return flag
    }

    func string(_ key: String, oneOf choices: [String]? = nil) throws -> String? {
        guard let value = values[key] else { return nil }
        guard case .string(let text) = value else { throw error(key, "expected a string, got \(describe(value))") }
        if let choices, !choices.contains(text) {
            throw error(key, "expected one of \(choices.joined(separator: ", ")), got '\(text)'")
        }
        return text
    }

    func mapping(_ key: String) throws -> ParameterReader? {
        guard let value = values[key] else { return nil }
        guard case .mapping(let inner) = value else { throw error(key, "expected a mapping, got \(describe(value))") }
        return ParameterReader(layer: layer, prefix: path(key), values: inner)
    }

    func numberList(_ key: String) throws -> [Double]? {
        guard let value = values[key] else { return nil }
        guard case .list(let items) = value else { throw error(key, "expected a list of numbers, got \(describe(value))") }
        return try items.enumerated().map { index, item in
            guard case .number(let number) = item, number.isFinite else {
                throw error("\(key)[\(index)]", "expected a number, got \(describe(item))")
            }
            return number
        }
    }

    /// A distribution: a plain number (constant) or `{distribution: constant|uniform|lognormal|exponential|empirical, ...}`.
    func distribution(_ key: String) throws -> Distribution? {
        guard let value = values[key] else { return nil }
        if case .number(let number) = value {
            guard number >= 0, number.isFinite else { throw error(key, "must be at least 0, got \(format(number))") }
            return .constant(number)
        }
        guard let inner = try mapping(key) else { return nil }
        let kinds = ["constant", "uniform", "lognormal", "exponential", "empirical"]
        guard let kind = try inner.string("distribution", oneOf: kinds) else {
            throw error(key, "expected a number or a mapping with 'distribution' (\(kinds.joined(separator: ", ")))")
        }
        func need(_ field: String, positive: Bool = false) throws -> Double {
            guard let number = try inner.number(field, min: positive ? nil : 0, positive: positive) else {
                throw inner.error(field, "required for distribution \(kind)")
            }
            return number
        }
        switch kind {
        case "constant":
            try inner.requireKnown(["distribution", "value"])
            return .constant(try need("value"))
        case "uniform":
            try inner.requireKnown(["distribution", "min", "max"])
            let low = try need("min"), high = try need("max")
            guard high >= low else { throw inner.error("max", "must be at least min (\(format(low))), got \(format(high))") }
            return .uniform(min: low, max: high)
        case "lognormal":
            try inner.requireKnown(["distribution", "median", "sigma"])
            return .lognormal(median: try need("median", positive: true), sigma: try need("sigma"))
        case "exponential":
            try inner.requireKnown(["distribution", "mean"])
            return .exponential(mean: try need("mean", positive: true))
        default:
            try inner.requireKnown(["distribution", "values"])
            guard let list = try inner.numberList("values"), !list.isEmpty else {
                throw inner.error("values", "required for distribution empirical (a non-empty list of numbers)")
            }
            if let negative = list.firstIndex(where: { $0 < 0 }) {
                throw inner.error("values[\(negative)]", "must be at least 0, got \(format(list[negative]))")
            }
            return .empirical(list)
        }
    }

    private func describe(_ value: ModelParameterValue) -> String {
        switch value {
        case .number(let number): return format(number)
        case .string(let text): return "'\(text)'"
        case .bool(let flag): return String(flag)
        case .list: return "a list"
        case .mapping: return "a mapping"
        }
    }

    private func format(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(value)
    }
}
