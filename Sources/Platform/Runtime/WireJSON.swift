// Hand-written JSON for the two headers sent on every invocation (WireRequest, WireResponse): a Codable
// round trip through Foundation's encoder/decoder costs several times more than the rest of the frame handling.
// The parser reads straight into the header's fields (no intermediate tree); unknown keys are skipped.
// WireReady and anything else still use Codable.

public struct WireJSONError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

/// A JSON reader over raw bytes, for the wire headers only.
struct WireJSONReader {
    let bytes: UnsafeRawBufferPointer
    var index = 0

    static let maxDepth = 64

    init(_ bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
    }

    func error(_ message: String) -> WireJSONError { WireJSONError(message: "\(message) at byte \(index)") }

    var atEnd: Bool { index >= bytes.count }

    mutating func skipSpace() {
        while index < bytes.count {
            let b = bytes[index]
            guard b == 0x20 || b == 0x0A || b == 0x0D || b == 0x09 else { return }
            index += 1
        }
    }

    /// Skips white space and consumes `byte` if it comes next.
    mutating func consume(_ byte: UInt8) -> Bool {
        skipSpace()
        if index < bytes.count, bytes[index] == byte {
            index += 1
            return true
        }
        return false
    }

    mutating func expect(_ byte: UInt8, _ what: String) throws {
        guard consume(byte) else { throw error("expected \(what)") }
    }

    /// `{ "key": value, ... }`: calls `member` for each key, which must consume the value.
    mutating func object(depth: Int = 0, _ member: (inout WireJSONReader, String) throws -> Void) throws {
        guard depth < Self.maxDepth else { throw error("nesting too deep") }
        try expect(UInt8(ascii: "{"), "'{'")
        if consume(UInt8(ascii: "}")) { return }
        while true {
            skipSpace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw error("expected a key") }
            let key = try string()
            try expect(UInt8(ascii: ":"), "':'")
            try member(&self, key)
            if consume(UInt8(ascii: ",")) { continue }
            if consume(UInt8(ascii: "}")) { return }
            throw error("expected ',' or '}'")
        }
    }

    /// `[ item, ... ]`: calls `item` for each element, which must consume it.
    mutating func array(depth: Int = 0, _ item: (inout WireJSONReader) throws -> Void) throws {
        guard depth < Self.maxDepth else { throw error("nesting too deep") }
        try expect(UInt8(ascii: "["), "'['")
        if consume(UInt8(ascii: "]")) { return }
        while true {
            try item(&self)
            if consume(UInt8(ascii: ",")) { continue }
            if consume(UInt8(ascii: "]")) { return }
            throw error("expected ',' or ']'")
        }
    }

    /// True (and consumed) when a `null` comes next.
    mutating func null() throws -> Bool {
        skipSpace()
        guard index < bytes.count, bytes[index] == UInt8(ascii: "n") else { return false }
        try literal("null")
        return true
    }

    /// Any value, checked for syntax and thrown away.
    mutating func skipValue(depth: Int = 0) throws {
        guard depth < Self.maxDepth else { throw error("nesting too deep") }
        skipSpace()
        guard index < bytes.count else { throw error("unexpected end") }
        switch bytes[index] {
        case UInt8(ascii: "{"): try object(depth: depth) { reader, _ in try reader.skipValue(depth: depth + 1) }
        case UInt8(ascii: "["): try array(depth: depth) { reader in try reader.skipValue(depth: depth + 1) }
        case UInt8(ascii: "\""): _ = try string()
        case UInt8(ascii: "t"): try literal("true")
        case UInt8(ascii: "f"): try literal("false")
        case UInt8(ascii: "n"): try literal("null")
        default: _ = try number()
        }
    }

    mutating func literal(_ word: StaticString) throws {
        let count = word.utf8CodeUnitCount
        guard index + count <= bytes.count else { throw error("invalid literal") }
        for offset in 0..<count where bytes[index + offset] != word.utf8Start[offset] {
            throw error("invalid literal")
        }
        index += count
    }

    mutating func number() throws -> Double {
        skipSpace()
        let start = index
        while index < bytes.count {
            let b = bytes[index]
            guard (b >= 0x30 && b <= 0x39) || b == UInt8(ascii: "-") || b == UInt8(ascii: "+") || b == UInt8(ascii: ".")
                || b == UInt8(ascii: "e") || b == UInt8(ascii: "E") else { break }
            index += 1
        }
        guard index > start,
              let value = Double(String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self))
        else { throw error("invalid number") }
        return value
    }

    /// A string value; throws when something else comes next.
    mutating func string() throws -> String {
        skipSpace()
        guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw error("expected a string") }
        index += 1
        let start = index
        // Fast path: no escapes.
        while index < bytes.count {
            let b = bytes[index]
            if b == UInt8(ascii: "\"") {
                index += 1
                return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<(index - 1)]), as: UTF8.self)
            }
            if b == UInt8(ascii: "\\") { break }
            index += 1
        }
        var out = Array(UnsafeRawBufferPointer(rebasing: bytes[start..<index]))
        while index < bytes.count {
            let b = bytes[index]
            index += 1
            if b == UInt8(ascii: "\"") { return String(decoding: out, as: UTF8.self) }
            guard b == UInt8(ascii: "\\") else {
                out.append(b)
                continue
            }
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
                out.append(contentsOf: String(Character(unicode)).utf8)
            default:
                throw error("invalid escape")
            }
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

    /// `[[name, value], ...]` (or null).
    mutating func pairs(field: String) throws -> [[String]] {
        if try null() { return [] }
        var result: [[String]] = []
        skipSpace()
        guard index < bytes.count, bytes[index] == UInt8(ascii: "[") else {
            throw WireJSONError(message: "\(field): expected a list of pairs")
        }
        try array { reader in
            reader.skipSpace()
            guard reader.index < reader.bytes.count, reader.bytes[reader.index] == UInt8(ascii: "[") else {
                throw WireJSONError(message: "\(field): expected [name, value]")
            }
            var pair: [String] = []
            pair.reserveCapacity(2)
            try reader.array(depth: 1) { reader in
                reader.skipSpace()
                guard reader.index < reader.bytes.count, reader.bytes[reader.index] == UInt8(ascii: "\"") else {
                    throw WireJSONError(message: "\(field): expected strings")
                }
                pair.append(try reader.string())
            }
            result.append(pair)
        }
        return result
    }

    /// Parses one whole document with `body`, refusing trailing data.
    static func parse<T>(_ bytes: UnsafeRawBufferPointer, _ body: (inout WireJSONReader) throws -> T) throws -> T {
        var reader = WireJSONReader(bytes)
        let value = try body(&reader)
        reader.skipSpace()
        guard reader.atEnd else { throw reader.error("unexpected data after the JSON value") }
        return value
    }
}

extension WireRequest {
    /// Parses a request header written by `encodedJSON()` (or any equivalent JSON).
    public init(json bytes: [UInt8]) throws {
        self = try bytes.withUnsafeBytes { try WireRequest(json: $0) }
    }

    public init(json bytes: UnsafeRawBufferPointer) throws {
        var id, method, path, query: String?
        var headers: [[String]] = []
        try WireJSONReader.parse(bytes) { reader in
            try reader.object { reader, key in
                func text() throws -> String {
                    do { return try reader.string() } catch { throw WireJSONError(message: "\(key): expected a string") }
                }
                switch key {
                case "id": id = try text()
                case "method": method = try text()
                case "path": path = try text()
                case "query": query = try text()
                case "headers": headers = try reader.pairs(field: "headers")
                default: try reader.skipValue(depth: 1)
                }
            }
        }
        func required(_ value: String?, _ key: String) throws -> String {
            guard let value else { throw WireJSONError(message: "\(key): expected a string") }
            return value
        }
        self.init(
            id: try required(id, "id"), method: try required(method, "method"), path: try required(path, "path"),
            query: try required(query, "query"), headers: headers)
    }
}

extension WireResponse {
    /// Parses a response header (the body is carried separately by the frame).
    public init(json bytes: [UInt8]) throws {
        self = try bytes.withUnsafeBytes { try WireResponse(json: $0) }
    }

    public init(json bytes: UnsafeRawBufferPointer) throws {
        var status: Int?
        var headers: [[String]] = []
        var error: WireError?
        try WireJSONReader.parse(bytes) { reader in
            try reader.object { reader, key in
                switch key {
                case "status":
                    let value = try? reader.number()
                    guard let value, value == value.rounded(), value >= 0, value < 1000 else {
                        throw WireJSONError(message: "status: expected a whole number")
                    }
                    status = Int(value)
                case "headers": headers = try reader.pairs(field: "headers")
                case "error": error = try Self.parseError(&reader)
                default: try reader.skipValue(depth: 1)
                }
            }
        }
        guard let status else { throw WireJSONError(message: "status: expected a whole number") }
        self.init(status: status, headers: headers, error: error)
    }

    private static func parseError(_ reader: inout WireJSONReader) throws -> WireError? {
        if try reader.null() { return nil }
        var kind, message, traceback: String?
        do {
            try reader.object(depth: 1) { reader, key in
                switch key {
                case "kind": kind = try reader.string()
                case "message": message = try reader.string()
                case "traceback": traceback = try reader.null() ? nil : reader.string()
                default: try reader.skipValue(depth: 2)
                }
            }
        } catch {
            throw WireJSONError(message: "error: expected {kind, message}")
        }
        guard let kind, let message else { throw WireJSONError(message: "error: expected {kind, message}") }
        return WireError(kind: kind, message: message, traceback: traceback)
    }

    /// The header as JSON, written directly.
    public func encodedJSON() -> [UInt8] {
        var out: [UInt8] = []
        appendJSON(to: &out)
        return out
    }

    /// Appends the header as JSON to `out`.
    public func appendJSON(to out: inout [UInt8]) {
        out.append(contentsOf: "{\"status\":".utf8)
        out.append(contentsOf: String(status).utf8)
        out.append(contentsOf: ",\"headers\":".utf8)
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
    }
}
