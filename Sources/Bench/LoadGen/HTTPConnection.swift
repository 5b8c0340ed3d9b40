import NIOCore
import NIOPosix

/// `http://host[:port][/prefix]`, the only form of target URL the load generator accepts.
public struct TargetURL: Sendable, Equatable {
    public var host: String
    public var port: Int
    /// Path prefix without a trailing slash ("" for none).
    public var prefix: String

    public init(parsing text: String) throws {
        guard text.hasPrefix("http://") else {
            throw LoadGenError(message: "target URL '\(text)': expected http://HOST[:PORT][/PATH] (https is not supported)")
        }
        let rest = text.dropFirst("http://".count)
        let slash = rest.firstIndex(of: "/") ?? rest.endIndex
        let authority = rest[..<slash]
        var path = String(rest[slash...])
        while path.hasSuffix("/") { path.removeLast() }
        prefix = path
        if let colon = authority.lastIndex(of: ":") {
            guard let port = Int(authority[authority.index(after: colon)...]), (1...65535).contains(port) else {
                throw LoadGenError(message: "target URL '\(text)': expected a port number between 1 and 65535")
            }
            host = String(authority[..<colon])
            self.port = port
        } else {
            host = String(authority)
            port = 80
        }
        guard !host.isEmpty else { throw LoadGenError(message: "target URL '\(text)': missing host") }
    }

    public var hostHeader: String { port == 80 ? host : "\(host):\(port)" }
}

public struct LoadGenError: Error, CustomStringConvertible, Equatable {
    public var message: String
    public init(message: String) { self.message = message }
    public var description: String { message }
}

/// The worker's per-invocation `X-Swiftlet-*` response headers (nil when absent).
struct WorkerHeaders: Equatable {
    var start: String?
    var initMs: String?
    var runMs: String?
    var billedMs: String?
    var sandbox: String?
    var worker: String?
}

/// What came back for one request.
struct HTTPResult {
    var status: Int
    /// Body bytes.
    var bytes: Int
    var worker: WorkerHeaders
    /// Only when the parser collects bodies.
    var body: ByteBuffer?
    var keepAlive: Bool
}

/// An HTTP/1.1 request encoded once (request line, headers, body in one buffer), so that sending it is one write.
struct EncodedRequest: Sendable {
    var bytes: ByteBuffer
    var isHead: Bool

    init(method: String, uri: String, host: String, body: ByteBuffer?) {
        let length = body?.readableBytes ?? 0
        var head = "\(method) \(uri) HTTP/1.1\r\nHost: \(host)\r\n"
        if length > 0 { head += "Content-Type: application/json\r\n" }
        head += "Content-Length: \(length)\r\n\r\n"
        var bytes = ByteBuffer(string: head)
        if var body { bytes.writeBuffer(&body) }
        self.bytes = bytes
        isHead = method == "HEAD"
    }
}

struct HTTPParseError: Error, CustomStringConvertible {
    var message: String
    var description: String { "invalid HTTP response: \(message)" }
}

/// Incremental HTTP/1.x response parser for one connection: status line, the few headers the generator needs
/// (framing, keep-alive, `X-Swiftlet-*`), and bodies framed by Content-Length, chunked encoding or connection close.
/// Only the headers it keeps allocate; other headers are skipped in place.
struct ResponseParser {
    enum State: Equatable {
        case head
        case body(remaining: Int)
        case chunkSize
        case chunkData(remaining: Int)
        case chunkDataEnd
        case trailers
        case untilClose
    }

    static let maxHeadBytes = 64 * 1024

    var collectBody = false
    /// The request being answered was a HEAD (no body follows).
    var requestIsHead = false
    private(set) var state = State.head
    private var buffer: ByteBuffer?
    /// Bytes of the buffered head already searched for its end.
    private var scanned = 0
    private var status = 0
    private var keepAlive = true
    private var bytes = 0
    private var worker = WorkerHeaders()
    private var body: ByteBuffer?

    mutating func append(_ data: ByteBuffer) {
        if buffer == nil || buffer!.readableBytes == 0 {
            buffer = data
        } else {
            buffer!.writeImmutableBuffer(data)
        }
    }

    /// The next complete response in the bytes appended so far, or nil when more bytes are needed.
    mutating func next() throws -> HTTPResult? {
        while var data = buffer, data.readableBytes > 0 {
            buffer = nil  // keep `data` uniquely referenced while parsing
            defer {
                if data.readerIndex > 16 * 1024 && state == .head { data.discardReadBytes() }
                buffer = data
            }
            switch state {
            case .head:
                guard let headLength = try findHeadEnd(data) else { return nil }
                let interim = try data.withUnsafeReadableBytes { raw in
                    try parseHead(UnsafeRawBufferPointer(rebasing: raw[0..<headLength]))
                }
                data.moveReaderIndex(forwardBy: headLength)
                scanned = 0
                if interim { continue }
                if case .head = state { return complete() }
            case .body(let remaining):
                let taken = consumeBody(&data, upTo: remaining)
                if taken == remaining { return complete() }
                state = .body(remaining: remaining - taken)
            case .untilClose:
                _ = consumeBody(&data, upTo: data.readableBytes)
            case .chunkSize:
                guard let line = Self.line(in: data) else {
                    if data.readableBytes > 1024 { throw HTTPParseError(message: "chunk size line too long") }
                    return nil
                }
                let size = try Self.chunkSize(data.readableBytesView[line.start..<line.end])
                data.moveReaderIndex(to: line.next)
                state = size == 0 ? .trailers : .chunkData(remaining: size)
            case .chunkData(let remaining):
                let taken = consumeBody(&data, upTo: remaining)
                state = taken == remaining ? .chunkDataEnd : .chunkData(remaining: remaining - taken)
            case .chunkDataEnd:
                guard data.readableBytes >= 2 else { return nil }
                guard data.readInteger(as: UInt16.self) == 0x0D0A else {
                    throw HTTPParseError(message: "chunk data not followed by CRLF")
                }
                state = .chunkSize
            case .trailers:
                guard let line = Self.line(in: data) else {
                    if data.readableBytes > Self.maxHeadBytes { throw HTTPParseError(message: "trailers too long") }
                    return nil
                }
                let empty = line.start == line.end
                data.moveReaderIndex(to: line.next)
                if empty { return complete() }
            }
        }
        if buffer?.readableBytes == 0 { buffer = nil }
        return nil
    }

    /// At end of stream: the response delimited by the close, if one was being read.
    mutating func finish() -> HTTPResult? {
        guard case .untilClose = state else { return nil }
        return complete()
    }

    private mutating func complete() -> HTTPResult {
        let result = HTTPResult(status: status, bytes: bytes, worker: worker, body: body, keepAlive: keepAlive)
        state = .head
        status = 0
        bytes = 0
        worker = WorkerHeaders()
        body = nil
        keepAlive = true
        return result
    }

    private mutating func consumeBody(_ data: inout ByteBuffer, upTo limit: Int) -> Int {
        let count = min(limit, data.readableBytes)
        bytes += count
        if collectBody, var slice = data.readSlice(length: count) {
            if body == nil { body = slice } else { body!.writeBuffer(&slice) }
        } else {
            data.moveReaderIndex(forwardBy: count)
        }
        return count
    }

    /// Length of the head including its final CRLF CRLF, or nil when it is not complete yet.
    private mutating func findHeadEnd(_ data: ByteBuffer) throws -> Int? {
        let found: Int? = data.withUnsafeReadableBytes { raw in
            var index = max(scanned, 3)
            while index < raw.count {
                // Jump by the last byte of the pattern.
                if raw[index] == 0x0A && raw[index - 1] == 0x0D && raw[index - 2] == 0x0A && raw[index - 3] == 0x0D {
                    return index + 1
                }
                index += 1
            }
            return nil
        }
        if found == nil {
            scanned = data.readableBytes
            if scanned > Self.maxHeadBytes {
                throw HTTPParseError(message: "response head larger than \(Self.maxHeadBytes / 1024) KiB")
            }
        }
        return found
    }

    /// Parses status line and headers (`head`: the head's bytes up to and including CRLF CRLF);
    /// returns true for an interim (1xx) response to skip.
    private mutating func parseHead(_ head: UnsafeRawBufferPointer) throws -> Bool {
        let count = head.count
        func lineEnd(from start: Int) -> Int {
            var index = start
            while index < count && head[index] != 0x0A { index += 1 }
            return index
        }
        // HTTP/1.x SSS[ reason]
        var end = lineEnd(from: 0)
        let statusEnd = end > 0 && head[end - 1] == 0x0D ? end - 1 : end
        guard statusEnd >= 12, Self.equalsLowercase(head, 0, 7, "http/1.") else {
            throw HTTPParseError(message: "status line does not start with HTTP/1.x")
        }
        var code = 0
        for offset in 9..<12 {
            let digit = head[offset]
            guard (0x30...0x39).contains(digit) else { throw HTTPParseError(message: "status code is not a number") }
            code = code * 10 + Int(digit - 0x30)
        }
        status = code
        keepAlive = head[7] != 0x30  // HTTP/1.1 keeps alive by default, HTTP/1.0 does not
        var contentLength: Int?
        var chunked = false
        var lineStart = end + 1
        while lineStart < count {
            end = lineEnd(from: lineStart)
            let contentEnd = end > lineStart && head[end - 1] == 0x0D ? end - 1 : end
            defer { lineStart = end + 1 }
            if contentEnd == lineStart { break }
            var colon = lineStart
            while colon < contentEnd && head[colon] != 0x3A { colon += 1 }
            guard colon < contentEnd else { throw HTTPParseError(message: "header line without a colon") }
            var valueStart = colon + 1
            var valueEnd = contentEnd
            while valueStart < valueEnd, head[valueStart] == 0x20 || head[valueStart] == 0x09 { valueStart += 1 }
            while valueEnd > valueStart, head[valueEnd - 1] == 0x20 || head[valueEnd - 1] == 0x09 { valueEnd -= 1 }
            let nameLength = colon - lineStart
            guard nameLength > 0 else { continue }
            switch head[lineStart] | 0x20 {
            case UInt8(ascii: "c"):
                if Self.equalsLowercase(head, lineStart, colon, "content-length") {
                    guard let length = Self.decimal(head, valueStart, valueEnd) else {
                        let text = String(decoding: UnsafeRawBufferPointer(rebasing: head[valueStart..<valueEnd]), as: UTF8.self)
                        throw HTTPParseError(message: "Content-Length '\(text)'")
                    }
                    contentLength = length
                } else if Self.equalsLowercase(head, lineStart, colon, "connection") {
                    if Self.containsLowercase(head, valueStart, valueEnd, "close") {
                        keepAlive = false
                    } else if Self.containsLowercase(head, valueStart, valueEnd, "keep-alive") {
                        keepAlive = true
                    }
                }
            case UInt8(ascii: "t"):
                if Self.equalsLowercase(head, lineStart, colon, "transfer-encoding") {
                    chunked = valueEnd - valueStart >= 7 && Self.equalsLowercase(head, valueEnd - 7, valueEnd, "chunked")
                }
            case UInt8(ascii: "x"):
                let prefixEnd = lineStart + 11
                guard nameLength > 11, Self.equalsLowercase(head, lineStart, prefixEnd, "x-swiftlet-") else { break }
                let text = String(decoding: UnsafeRawBufferPointer(rebasing: head[valueStart..<valueEnd]), as: UTF8.self)
                if Self.equalsLowercase(head, prefixEnd, colon, "start") {
                    worker.start = text
                } else if Self.equalsLowercase(head, prefixEnd, colon, "init-ms") {
                    worker.initMs = text
                } else if Self.equalsLowercase(head, prefixEnd, colon, "run-ms") {
                    worker.runMs = text
                } else if Self.equalsLowercase(head, prefixEnd, colon, "billed-ms") {
                    worker.billedMs = text
                } else if Self.equalsLowercase(head, prefixEnd, colon, "sandbox") {
                    worker.sandbox = text
                } else if Self.equalsLowercase(head, prefixEnd, colon, "worker") {
                    worker.worker = text
                }
            default:
                break
            }
        }
        if (100..<200).contains(code) && code != 101 {
            worker = WorkerHeaders()
            return true
        }
        if requestIsHead || code == 204 || code == 304 || code == 101 {
            state = .head
        } else if chunked {
            state = .chunkSize
        } else if let contentLength {
            state = contentLength == 0 ? .head : .body(remaining: contentLength)
        } else {
            keepAlive = false
            state = .untilClose
        }
        return false
    }

    /// Whether `bytes[start..<end]`, ASCII letters folded to lower case, equals `lowercase`.
    static func equalsLowercase(_ bytes: UnsafeRawBufferPointer, _ start: Int, _ end: Int, _ lowercase: StaticString) -> Bool {
        guard end - start == lowercase.utf8CodeUnitCount else { return false }
        let expected = lowercase.utf8Start
        for offset in 0..<(end - start) {
            let byte = bytes[start + offset]
            let folded = byte >= 0x41 && byte <= 0x5A ? byte | 0x20 : byte
            if folded != expected[offset] { return false }
        }
        return true
    }

    static func containsLowercase(_ bytes: UnsafeRawBufferPointer, _ start: Int, _ end: Int, _ lowercase: StaticString) -> Bool {
        let length = lowercase.utf8CodeUnitCount
        var from = start
        while from + length <= end {
            if equalsLowercase(bytes, from, from + length, lowercase) { return true }
            from += 1
        }
        return false
    }

    static func decimal(_ bytes: UnsafeRawBufferPointer, _ start: Int, _ end: Int) -> Int? {
        guard end > start, end - start <= 18 else { return nil }
        var value = 0
        for index in start..<end {
            let byte = bytes[index]
            guard byte >= 0x30 && byte <= 0x39 else { return nil }
            value = value * 10 + Int(byte - 0x30)
        }
        return value
    }

    /// Reader-relative positions of the first CRLF-terminated line.
    private static func line(in data: ByteBuffer) -> (start: Int, end: Int, next: Int)? {
        let view = data.readableBytesView
        guard let lf = view.firstIndex(of: 0x0A) else { return nil }
        let end = lf > view.startIndex && view[lf - 1] == 0x0D ? lf - 1 : lf
        return (view.startIndex, end, lf + 1)
    }

    static func chunkSize<Bytes: Collection<UInt8>>(_ bytes: Bytes) throws -> Int {
        var value = 0
        var digits = 0
        for byte in bytes {
            let digit: Int
            switch byte {
            case 0x30...0x39: digit = Int(byte - 0x30)
            case 0x61...0x66: digit = Int(byte - 0x61 + 10)
            case 0x41...0x46: digit = Int(byte - 0x41 + 10)
            case UInt8(ascii: ";"), 0x20, 0x09:
                guard digits > 0 else { throw HTTPParseError(message: "empty chunk size") }
                return value
            default: throw HTTPParseError(message: "chunk size is not hexadecimal")
            }
            digits += 1
            guard digits <= 15 else { throw HTTPParseError(message: "chunk size too large") }
            value = value * 16 + digit
        }
        guard digits > 0 else { throw HTTPParseError(message: "empty chunk size") }
        return value
    }
}

/// Sends encoded requests and parses responses on one keep-alive connection. Lives on its event loop only.
final class ResponseHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    var collectBody: Bool {
        get { parser.collectBody }
        set { parser.collectBody = newValue }
    }
    var onResponse: ((HTTPResult) -> Void)?
    var onClose: ((String) -> Void)?
    private var parser = ResponseParser()
    private var context: ChannelHandlerContext?
    private var lastError: String?

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        parser.append(unwrapInboundIn(data))
        do {
            while let response = try parser.next() {
                onResponse?(response)
            }
        } catch {
            close(reason: "\(error)")
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if lastError == nil { lastError = "\(error)" }
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let response = parser.finish() { onResponse?(response) }
        let reason = lastError ?? "connection closed by the server"
        let callback = onClose
        onClose = nil
        onResponse = nil
        callback?(reason)
        context.fireChannelInactive()
    }

    func send(_ request: EncodedRequest) {
        guard let context else { return }
        parser.requestIsHead = request.isHead
        context.writeAndFlush(wrapOutboundOut(request.bytes), promise: nil)
    }

    /// Closes the connection, reporting `reason` to `onClose`.
    func close(reason: String) {
        if lastError == nil { lastError = reason }
        context?.close(promise: nil)
    }
}

/// One keep-alive HTTP/1.1 connection, used by one request at a time.
final class HTTPConnection {
    let channel: Channel
    let handler: ResponseHandler

    init(channel: Channel, handler: ResponseHandler) {
        self.channel = channel
        self.handler = handler
    }

    /// Connects on `loop` (must be called on `loop`); `completion` runs on `loop`.
    static func connect(
        on loop: EventLoop, to target: TargetURL, completion: @escaping (Result<HTTPConnection, Error>) -> Void
    ) {
        let future = ClientBootstrap(group: loop)
            .channelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .connectTimeout(.seconds(10))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ResponseHandler())
                }
            }
            .connect(host: target.host, port: target.port)
        future.assumeIsolated().whenComplete { result in
            switch result {
            case .success(let channel):
                do {
                    let handler = try channel.pipeline.syncOperations.handler(type: ResponseHandler.self)
                    completion(.success(HTTPConnection(channel: channel, handler: handler)))
                } catch {
                    channel.close(promise: nil)
                    completion(.failure(error))
                }
            case .failure(let error):
                completion(.failure(error))
            }
        }
    }
}
