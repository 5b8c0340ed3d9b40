import NIOCore

// The one protocol between the worker and a sandbox runtime (Python server or Swift app host).
//
// Transport: a connected Unix stream socket, passed to the runtime as file descriptor 3.
// Every message is a frame:
//
//     u32 big-endian  header length H
//     u32 big-endian  body length B
//     H bytes         header, a UTF-8 JSON object
//     B bytes         body, raw bytes
//
// 1. After start-up the runtime sends one frame with header `WireReady` and an empty body.
// 2. Then, strictly one at a time: the worker sends a request frame (header `WireRequest`,
//    body = the HTTP request body), the runtime answers with a response frame (header
//    `WireResponse`, body = the HTTP response body).
// The runtime exits when the socket closes. Documented for runtime authors in `Sources/Platform/Runtime/README.md`.

/// Largest header accepted from either side.
public let wireMaxHeaderBytes = 1 << 20
/// Largest body accepted from either side.
public let wireMaxBodyBytes = 64 << 20

/// First frame a runtime sends.
public struct WireReady: Codable, Sendable, Equatable {
    /// `true` when the runtime started; `false` when it could not, with `error` saying why.
    public var ready: Bool
    /// "python" or "swift".
    public var runtime: String
    /// The runtime's pid as seen inside the sandbox (1 in a new PID namespace).
    public var pid: Int
    public var error: WireError?

    public init(ready: Bool, runtime: String, pid: Int, error: WireError? = nil) {
        self.ready = ready
        self.runtime = runtime
        self.pid = pid
        self.error = error
    }
}

/// One invocation, worker → runtime.
public struct WireRequest: Codable, Sendable, Equatable {
    public var id: String
    public var method: String
    /// The path below `/run/NAME`, always starting with "/" ("/" when none).
    public var path: String
    /// The raw query string without "?", "" when none.
    public var query: String
    /// Header name/value pairs in order.
    public var headers: [[String]]

    public init(id: String, method: String, path: String, query: String, headers: [[String]]) {
        self.id = id
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
    }
}

/// The answer to one invocation, runtime → worker.
public struct WireResponse: Codable, Sendable, Equatable {
    public var status: Int
    public var headers: [[String]]
    /// Set when the handler failed (exception, bad event); the worker turns it into its JSON error body.
    public var error: WireError?
    /// The response body (not part of the JSON header; carried as the frame body).
    public var body: ByteBuffer

    public init(status: Int, headers: [[String]], error: WireError? = nil, body: ByteBuffer = ByteBuffer()) {
        self.status = status
        self.headers = headers
        self.error = error
        self.body = body
    }

    enum CodingKeys: String, CodingKey { case status, headers, error }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        status = try c.decode(Int.self, forKey: .status)
        headers = try c.decodeIfPresent([[String]].self, forKey: .headers) ?? []
        error = try c.decodeIfPresent(WireError.self, forKey: .error)
        body = ByteBuffer()
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(status, forKey: .status)
        try c.encode(headers, forKey: .headers)
        try c.encodeIfPresent(error, forKey: .error)
    }
}

/// A failure inside the runtime.
public struct WireError: Codable, Sendable, Equatable {
    /// "exception" (handler raised), "import" (the code could not be loaded), "bad_request" (e.g. body is not JSON),
    /// "bad_response" (return value not JSON-serialisable).
    public var kind: String
    public var message: String
    public var traceback: String?

    public init(kind: String, message: String, traceback: String? = nil) {
        self.kind = kind
        self.message = message
        self.traceback = traceback
    }
}

extension WireRequest {
    /// The header as JSON, written directly (it is encoded for every invocation; a Codable encoder costs several times more).
    public func encodedJSON() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(128 + path.utf8.count + query.utf8.count + headers.count * 48)
        out.append(contentsOf: #"{"id":"#.utf8)
        Self.appendString(id, to: &out)
        out.append(contentsOf: #","method":"#.utf8)
        Self.appendString(method, to: &out)
        out.append(contentsOf: #","path":"#.utf8)
        Self.appendString(path, to: &out)
        out.append(contentsOf: #","query":"#.utf8)
        Self.appendString(query, to: &out)
        out.append(contentsOf: #","headers":"#.utf8)
        Self.appendPairs(headers, to: &out)
        out.append(UInt8(ascii: "}"))
        return out
    }

    /// `[["name","value"],...]`
    static func appendPairs(_ pairs: [[String]], to out: inout [UInt8]) {
        out.append(UInt8(ascii: "["))
        for (index, pair) in pairs.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            out.append(UInt8(ascii: "["))
            for (position, item) in pair.enumerated() {
                if position > 0 { out.append(UInt8(ascii: ",")) }
                appendString(item, to: &out)
            }
            out.append(UInt8(ascii: "]"))
        }
        out.append(UInt8(ascii: "]"))
    }

    private static let hex: [UInt8] = Array("0123456789abcdef".utf8)

    static func appendString(_ string: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        // Fast path: nothing to escape (the usual case), one copy.
        let plain = string.utf8.withContiguousStorageIfAvailable { utf8 -> Bool in
            for byte in utf8 where byte < 0x20 || byte == 0x22 || byte == 0x5C { return false }
            out.append(contentsOf: utf8)
            return true
        }
        if plain == true {
            out.append(UInt8(ascii: "\""))
            return
        }
        for byte in string.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out.append(contentsOf: [92, 34])
            case UInt8(ascii: "\\"): out.append(contentsOf: [92, 92])
            case 0x0A: out.append(contentsOf: [92, UInt8(ascii: "n")])
            case 0x0D: out.append(contentsOf: [92, UInt8(ascii: "r")])
            case 0x09: out.append(contentsOf: [92, UInt8(ascii: "t")])
            case 0..<0x20:
                out.append(contentsOf: [92, UInt8(ascii: "u"), 48, 48, hex[Int(byte >> 4)], hex[Int(byte & 0xF)]])
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}
