import Foundation
import Yams

/// A lambda's `ol.yaml`: HTTP method allow-list, environment, limits overriding the worker's defaults, sandbox reuse.
public struct LambdaConfig: Sendable, Equatable {
    /// Upper-cased allowed methods; nil means every method is allowed.
    public var httpMethods: [String]?
    public var environment: [String: String]
    public var limits: LimitsOverride
    public var reuseSandbox: Bool

    public init(httpMethods: [String]? = nil, environment: [String: String] = [:], limits: LimitsOverride = LimitsOverride(), reuseSandbox: Bool = true) {
        self.httpMethods = httpMethods
        self.environment = environment
        self.limits = limits
        self.reuseSandbox = reuseSandbox
    }

    public static let `default` = LambdaConfig()

    /// True when `method` may invoke the lambda.
    public func allows(method: String) -> Bool {
        guard let httpMethods else { return true }
        return httpMethods.contains(method.uppercased())
    }

    /// Keys OpenLambda understands that Swiftlet accepts and ignores.
    static let ignoredTopLevelKeys: Set<String> = ["installs", "imports"]
    static let ignoredTriggerKeys: Set<String> = ["cron", "kafka"]
    static let knownTopLevelKeys = ["triggers", "environment", "limits", "reuse-sandbox"]

    /// Parses `yaml`; `file` names the file in errors ("registry/hello/ol.yaml:3: limits.memory_mb: expected a whole number").
    public static func parse(yaml: String, file: String) throws(LambdaConfigError) -> LambdaConfig {
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch let error as YamlError {
            throw LambdaConfigError.yamlSyntax(file: file, error)
        } catch {
            throw LambdaConfigError(file: file, line: nil, field: nil, message: "not valid YAML: \(error)")
        }
        guard let root else { return .default }
        if isNull(root) { return .default }
        guard let mapping = root.mapping else {
            throw LambdaConfigError(file: file, line: root.mark?.line, field: nil, message: "expected a mapping of keys (triggers, environment, limits, reuse-sandbox) at the top level")
        }
        var config = LambdaConfig()
        for (keyNode, value) in mapping {
            let line = keyNode.mark?.line
            guard let key = keyNode.string else {
                throw LambdaConfigError(file: file, line: line, field: nil, message: "keys must be strings")
            }
            switch key {
            case "triggers":
                config.httpMethods = try parseTriggers(value, file: file)
            case "environment":
                config.environment = try parseEnvironment(value, file: file)
            case "limits":
                config.limits = try parseLimits(value, file: file, keyLine: line)
            case "reuse-sandbox":
                guard isScalar(value, tag: .bool), let flag = value.bool else {
                    throw LambdaConfigError(file: file, line: value.mark?.line ?? line, field: key, message: "expected true or false")
                }
                config.reuseSandbox = flag
            default:
                if ignoredTopLevelKeys.contains(key) { continue }
                throw LambdaConfigError(file: file, line: line, field: key,
                                        message: "unknown key (known: \(knownTopLevelKeys.joined(separator: ", ")))")
            }
        }
        return config
    }

    private static func isScalar(_ node: Node, tag: Tag.Name) -> Bool {
        if case .scalar = node { return node.tag.rawValue == tag.rawValue }
        return false
    }

    private static func isNull(_ node: Node) -> Bool { isScalar(node, tag: .null) }

    private static func parseTriggers(_ node: Node, file: String) throws(LambdaConfigError) -> [String]? {
        if isNull(node) { return nil }
        guard let mapping = node.mapping else {
            throw LambdaConfigError(file: file, line: node.mark?.line, field: "triggers", message: "expected a mapping (e.g. http: [{method: POST}])")
        }
        var methods: [String]?
        for (keyNode, value) in mapping {
            let key = keyNode.string ?? ""
            let field = "triggers.\(key)"
            if ignoredTriggerKeys.contains(key) { continue }
            guard key == "http" else {
                throw LambdaConfigError(file: file, line: keyNode.mark?.line, field: field, message: "unknown trigger (known: http, cron, kafka)")
            }
            if isNull(value) { continue }
            guard let sequence = value.sequence else {
                throw LambdaConfigError(file: file, line: value.mark?.line, field: field, message: "expected a list of {method: NAME}")
            }
            var list: [String] = []
            for (index, item) in sequence.enumerated() {
                let itemField = "\(field)[\(index)]"
                guard let itemMapping = item.mapping else {
                    throw LambdaConfigError(file: file, line: item.mark?.line, field: itemField, message: "expected a mapping like {method: POST}")
                }
                var method: String?
                for (k, v) in itemMapping {
                    guard k.string == "method" else {
                        throw LambdaConfigError(file: file, line: k.mark?.line, field: "\(itemField).\(k.string ?? "?")", message: "unknown key (known: method)")
                    }
                    guard case .scalar = v, !isNull(v), let text = v.string, isMethodToken(text) else {
                        throw LambdaConfigError(file: file, line: v.mark?.line, field: "\(itemField).method", message: "expected an HTTP method name such as GET or POST")
                    }
                    method = text.uppercased()
                }
                guard let method else {
                    throw LambdaConfigError(file: file, line: item.mark?.line, field: "\(itemField).method", message: "missing")
                }
                if !list.contains(method) { list.append(method) }
            }
            // As in OpenLambda: no HTTP triggers listed means every method is allowed.
            methods = list.isEmpty ? nil : list
        }
        return methods
    }

    private static func isMethodToken(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.count <= 32 && text.utf8.allSatisfy { b in
            (b >= UInt8(ascii: "A") && b <= UInt8(ascii: "Z")) || (b >= UInt8(ascii: "a") && b <= UInt8(ascii: "z"))
        }
    }

    private static func parseEnvironment(_ node: Node, file: String) throws(LambdaConfigError) -> [String: String] {
        if isNull(node) { return [:] }
        guard let mapping = node.mapping else {
            throw LambdaConfigError(file: file, line: node.mark?.line, field: "environment", message: "expected a mapping of variable names to strings")
        }
        var environment: [String: String] = [:]
        for (keyNode, value) in mapping {
            guard case .scalar = keyNode, let name = keyNode.string, isVariableName(name) else {
                throw LambdaConfigError(file: file, line: keyNode.mark?.line, field: "environment",
                                        message: "\"\(keyNode.string ?? "?")\" is not a valid variable name (letters, digits, '_'; not starting with a digit)")
            }
            let field = "environment.\(name)"
            guard case .scalar = value, !isNull(value), let text = value.string else {
                throw LambdaConfigError(file: file, line: value.mark?.line ?? keyNode.mark?.line, field: field, message: "expected a string")
            }
            guard !text.utf8.contains(0) else {
                throw LambdaConfigError(file: file, line: value.mark?.line, field: field, message: "must not contain a NUL character")
            }
            environment[name] = text
        }
        return environment
    }

    private static func isVariableName(_ name: String) -> Bool {
        guard let first = name.utf8.first, !(first >= UInt8(ascii: "0") && first <= UInt8(ascii: "9")) else { return false }
        return name.utf8.allSatisfy { b in
            (b >= UInt8(ascii: "A") && b <= UInt8(ascii: "Z")) || (b >= UInt8(ascii: "a") && b <= UInt8(ascii: "z"))
                || (b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9")) || b == UInt8(ascii: "_")
        }
    }

    private static func parseLimits(_ node: Node, file: String, keyLine: Int?) throws(LambdaConfigError) -> LimitsOverride {
        if isNull(node) { return LimitsOverride() }
        do {
            return try YAMLDecoder().decode(LimitsBox.self, from: node).value
        } catch let ConfigError.invalid(field, message) {
            throw LambdaConfigError(file: file, line: line(of: field, in: node) ?? keyLine, field: field, message: message)
        } catch {
            throw LambdaConfigError(file: file, line: keyLine, field: "limits", message: "\(error)")
        }
    }

    /// Line of `limits.KEY` inside the limits mapping (the mapping itself when the key is absent).
    private static func line(of field: String, in node: Node) -> Int? {
        let key = field.split(separator: ".").dropFirst().first.map(String.init)
        if let key, let mapping = node.mapping {
            for (k, v) in mapping where k.string == key { return v.mark?.line ?? k.mark?.line }
        }
        return node.mark?.line
    }

    private struct LimitsBox: Decodable {
        var value: LimitsOverride
        init(from decoder: any Decoder) throws { value = try LimitsOverride.decode(from: decoder, field: "limits") }
    }
}

extension LambdaConfig: Encodable {
    private enum Keys: String, CodingKey {
        case triggers, environment, limits, http, method
        case reuseSandbox = "reuse-sandbox"
        case memoryMB = "memory_mb", timeoutSeconds = "timeout_s", procs, cpuPercent = "cpu_percent"
    }

    /// OpenLambda's ol.yaml shape: {"triggers": {"http": [{"method": ...}]}, "environment", "limits", "reuse-sandbox"}.
    /// `http` is absent when every method is allowed; `limits` holds only the overridden fields.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: Keys.self)
        var triggers = c.nestedContainer(keyedBy: Keys.self, forKey: .triggers)
        if let httpMethods {
            var http = triggers.nestedUnkeyedContainer(forKey: .http)
            for method in httpMethods {
                var item = http.nestedContainer(keyedBy: Keys.self)
                try item.encode(method, forKey: .method)
            }
        }
        try c.encode(environment, forKey: .environment)
        var limitsContainer = c.nestedContainer(keyedBy: Keys.self, forKey: .limits)
        try limitsContainer.encodeIfPresent(limits.memoryMB, forKey: .memoryMB)
        try limitsContainer.encodeIfPresent(limits.timeoutSeconds, forKey: .timeoutSeconds)
        try limitsContainer.encodeIfPresent(limits.procs, forKey: .procs)
        try limitsContainer.encodeIfPresent(limits.cpuPercent, forKey: .cpuPercent)
        try c.encode(reuseSandbox, forKey: .reuseSandbox)
    }

    /// JSON for `GET /registry/NAME/config` (sorted keys).
    public func jsonData() -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Encoding strings, numbers and bools into JSON cannot fail.
        return (try? encoder.encode(self)) ?? Data("{}".utf8)
    }

    /// The same JSON as a Foundation object (for JSONSerialization).
    public func json() -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: jsonData())) as? [String: Any] ?? [:]
    }
}

/// An `ol.yaml` problem, naming file, line and field.
public struct LambdaConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    public var file: String
    public var line: Int?
    public var field: String?
    public var message: String

    public init(file: String, line: Int?, field: String?, message: String) {
        self.file = file
        self.line = line
        self.field = field
        self.message = message
    }

    static func yamlSyntax(file: String, _ error: YamlError) -> LambdaConfigError {
        switch error {
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _),
             .composer(let context, let problem, let mark, _):
            let prefix = context.map { "\($0.text) " } ?? ""
            return LambdaConfigError(file: file, line: mark.line, field: nil, message: "not valid YAML: \(prefix)\(problem)")
        case .duplicatedKeysInMapping(let duplicates, let context):
            return LambdaConfigError(file: file, line: context.mark.line, field: nil,
                                     message: "duplicate key \(duplicates.sorted().joined(separator: ", "))")
        default:
            return LambdaConfigError(file: file, line: nil, field: nil, message: "not valid YAML: \(error)")
        }
    }

    public var description: String {
        var text = file
        if let line { text += ":\(line)" }
        if let field { text += ": \(field)" }
        return text + ": " + message
    }
}
