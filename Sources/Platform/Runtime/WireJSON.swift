// Hand-written JSON for the two headers sent on every invocation (WireRequest, WireResponse): a Codable
// round trip through Foundation's encoder/decoder costs several times more than the rest of the frame handling.
// WireReady and anything else still use Codable.

/// A parsed JSON value (only what the wire headers need).
enum WireJSON: Equatable {
    case object([(String, WireJSON)])
    case array([WireJSON])
    case string(String)
    case number(Double)
    case bool(Bool)
    case null

    static func == (a: WireJSON, b: WireJSON) -> Bool {
        switch (a, b) {
        case (.object(let x), .object(let y)): return x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        case (.array(let x), .array(let y)): return x == y
        case (.string(let x), .string(let y)): return x == y
        case (.number(let x), .number(let y)): return x == y
        case (.bool(let x), .bool(let y)): return x == y
        case (.null, .null): return true
        default: return false
        }
    }

    subscript(key: String) -> WireJSON? {
        guard case .object(let members) = self else { return nil }
        return members.first { $0.0 == key }?.1
    }

    var string: String? { if case .string(let s) = self { return s } else { return nil } }

    static func parse(_ bytes: [UInt8]) throws -> WireJSON {
        var parser = Parser(bytes: bytes)
        let value = try parser.value(depth: 0)
        parser.skipSpace()
        guard parser.index == bytes.count else { throw parser.error("unexpected data after the JSON value") }
        return value
    }

    struct Parser {
        let bytes: [UInt8]
        var index = 0

        func error(_ message: String) -> WireJSONError { WireJSONError(message: "\(message) at byte \(index)") }

        mutating func skipSpace() {
            while index < bytes.count, bytes[index] == 0x20 || bytes[index] == 0x0A || bytes[index] == 0x0D || bytes[index] == 0x09 {
                index += 1
            }
        }

        mutating func value(depth: Int) throws -> WireJSON {
            guard depth < 64 else { throw error("nesting too deep") }
            skipSpace()
            guard index < bytes.count else { throw error("unexpected end") }
            switch bytes[index] {
            case UInt8(ascii: "{"):
                index += 1
                var members: [(String, WireJSON)] = []
                skipSpace()
                if index < bytes.count, bytes[index] == UInt8(ascii: "}") { index += 1; return .object(members) }
                while true {
                    skipSpace()
                    guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw error("expected a key") }
                    let key = try string()
                    skipSpace()
                    guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { throw error("expected ':'") }
                    index += 1
                    members.append((key, try value(depth: depth + 1)))
                    skipSpace()
                    guard index < bytes.count else { throw error("unexpected end") }
                    if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
                    if bytes[index] == UInt8(ascii: "}") { index += 1; return .object(members) }
                    throw error("expected ',' or '}'")
                }
            case UInt8(ascii: "["):
                index += 1
                var items: [WireJSON] = []
                skipSpace()
                if index < bytes.count, bytes[index] == UInt8(ascii: "]") { index += 1; return .array(items) }
                while true {
                    items.append(try value(depth: depth + 1))
                    skipSpace()
                    guard index < bytes.count else { throw error("unexpected end") }
                    if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
                    if bytes[index] == UInt8(ascii: "]") { index += 1; return .array(items) }
                    throw error("expected ',' or ']'")
                }
            case UInt8(ascii: "\""):
                return .string(try string())
            case UInt8(ascii: "t"): try literal("true"); return .bool(true)
            case UInt8(ascii: "f"): try literal("false"); return .bool(false)
            case UInt8(ascii: "n"): try literal("null"); return .null
            default:
                return .number(try number())
            }
        }

        mutating func literal(_ word: String) throws {
            let utf8 = Array(word.utf8)
            guard index + utf8.count <= bytes.count, Array(bytes[index..<index + utf8.count]) == utf8 else {
                throw error("invalid literal")
            }
            index += utf8.count
        }

        mutating func number() throws -> Double {
            let start = index
            while index < bytes.count {
                let b = bytes[index]
                guard (b >= 0x30 && b <= 0x39) || b == UInt8(ascii: "-") || b == UInt8(ascii: "+") || b == UInt8(ascii: ".")
                    || b == UInt8(ascii: "e") || b == UInt8(ascii: "E") else { break }
                index += 1
            }
            guard index > start, let value = Double(String(decoding: bytes[start..<index], as: UTF8.self)) else {
                throw error("invalid number")
            }
            return value
        }

        mutating func string() throws -> String {
            index += 1  // opening quote
            var out: [UInt8] = []
            var plainStart = index
            while index < bytes.count {
                let b = bytes[index]
                if b == UInt8(ascii: "\"") {
                    out.append(contentsOf: bytes[plainStart..<index])
                    index += 1
                    return String(decoding: out, as: UTF8.self)
                }
                if b == UInt8(ascii: "\\") {
                    out.append(contentsOf: bytes[plainStart..<index])
                    index += 1
                    guard index < bytes.count else { break }
                    let escape = bytes[index]
                    index += 1
                    switch escape {
                    case UInt8(ascii: "\""): out.append(0x22)
                    case UInt8(ascii: "\\"): out.append(0x5C)
                    case UInt8(ascii: "/"): out.append(0x2F)
                    case UInt8(ascii: "b"): out.append(0x08)
                    case UInt8(ascii: "f"): out.append(0x0C)
                    case UInt8(ascii: "n"): out.append(0x0A)
                    case UInt8(ascii: "r"): out.append(0x0D)
                    case UInt8(ascii: "t"): out.append(0x09)
                    case UInt8(ascii: "u"):
                        var scalar = try hex4()
                        if (0xD800..<0xDC00).contains(scalar), index + 1 < bytes.count,
                           bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u") {
                            index += 2
                            let low = try hex4()
                            guard (0xDC00..<0xE000).contains(low) else { throw error("invalid surrogate pair") }
                            scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                        }
                        guard let unicode = Unicode.Scalar(scalar) else { throw error("invalid \\u escape") }
                        out.append(contentsOf: Array(String(Character(unicode)).utf8))
                    default:
                        throw error("invalid escape")
                    }
                    plainStart = index
                    continue
                }
                index += 1
            }
            throw error("unterminated string")
        }

        mutating func hex4() throws -> UInt32 {
            guard index + 4 <= bytes.count else { throw error("truncated \\u escape") }
            var value: UInt32 = 0
            for _ in 0..<4 {
                let b = bytes[index]
                let digit: UInt32
                switch b {
                case 0x30...0x39: digit = UInt32(b - 0x30)
                case 0x41...0x46: digit = UInt32(b - 0x41 + 10)
                case 0x61...0x66: digit = UInt32(b - 0x61 + 10)
                default: throw error("invalid hex digit")
                }
                value = value << 4 | digit
                index += 1
            }
            return value
        }
    }

    /// `[[name, value], ...]`
    static func pairs(_ value: WireJSON?, field: String) throws -> [[String]] {
        guard let value else { return [] }
        guard case .array(let items) = value else { throw WireJSONError(message: "\(field): expected a list of pairs") }
        return try items.map { item in
            guard case .array(let pair) = item else { throw WireJSONError(message: "\(field): expected [name, value]") }
            return try pair.map { element in
                guard let s = element.string else { throw WireJSONError(message: "\(field): expected strings") }
                return s
            }
        }
    }
}

public struct WireJSONError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

extension WireRequest {
    /// Parses a request header written by `encodedJSON()` (or any equivalent JSON).
    public init(json bytes: [UInt8]) throws {
        let value = try WireJSON.parse(bytes)
        func text(_ key: String) throws -> String {
            guard let s = value[key]?.string else { throw WireJSONError(message: "\(key): expected a string") }
            return s
        }
        self.init(
            id: try text("id"), method: try text("method"), path: try text("path"), query: try text("query"),
            headers: try WireJSON.pairs(value["headers"], field: "headers"))
    }
}

extension WireResponse {
    /// Parses a response header (the body is carried separately by the frame).
    public init(json bytes: [UInt8]) throws {
        let value = try WireJSON.parse(bytes)
        guard case .number(let status)? = value["status"], status == status.rounded(), status >= 0, status < 1000 else {
            throw WireJSONError(message: "status: expected a whole number")
        }
        var error: WireError?
        if let e = value["error"], e != .null {
            guard let kind = e["kind"]?.string, let message = e["message"]?.string else {
                throw WireJSONError(message: "error: expected {kind, message}")
            }
            error = WireError(kind: kind, message: message, traceback: e["traceback"]?.string)
        }
        self.init(status: Int(status), headers: try WireJSON.pairs(value["headers"], field: "headers"), error: error)
    }

    /// The header as JSON, written directly.
    public func encodedJSON() -> [UInt8] {
        var out: [UInt8] = Array("{\"status\":\(status),\"headers\":".utf8)
        WireRequest.appendPairs(headers, to: &out)
        if let error {
            out.append(contentsOf: ",\"error\":{\"kind\":".utf8)
            WireRequest.appendString(error.kind, to: &out)
            out.append(contentsOf: ",\"message\":".utf8)
            WireRequest.appendString(error.message, to: &out)
            if let traceback = error.traceback {
                out.append(contentsOf: ",\"traceback\":".utf8)
                WireRequest.appendString(traceback, to: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
        out.append(UInt8(ascii: "}"))
        return out
    }
}
