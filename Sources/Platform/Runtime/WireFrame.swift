import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A frame that broke the wire protocol's rules, or failed I/O on the runtime socket.
public enum WireFrameError: Error, Sendable, Equatable, CustomStringConvertible {
    case headerTooLarge(Int)
    case bodyTooLarge(Int)
    /// The stream ended inside a frame.
    case truncated(expected: Int, received: Int)
    case invalidHeader(String)
    case io(operation: String, errno: Int32)

    public var description: String {
        switch self {
        case .headerTooLarge(let bytes):
            return "frame header of \(bytes) bytes exceeds the limit of \(wireMaxHeaderBytes) bytes"
        case .bodyTooLarge(let bytes):
            return "frame body of \(bytes) bytes exceeds the limit of \(wireMaxBodyBytes) bytes"
        case .truncated(let expected, let received):
            return "stream ended inside a frame (expected \(expected) bytes, received \(received))"
        case .invalidHeader(let why):
            return "invalid frame header: \(why)"
        case .io(let operation, let code):
            return "\(operation) on the runtime socket failed: \(String(cString: strerror(code)))"
        }
    }
}

/// One wire-protocol frame without NIO: the length prefix is u32 big-endian header length, u32 big-endian body length.
public struct WireFrame: Sendable, Equatable {
    /// Size of the length prefix.
    public static let prefixBytes = 8

    /// The UTF-8 JSON header.
    public var header: [UInt8]
    public var body: [UInt8]

    public init(header: [UInt8], body: [UInt8] = []) {
        self.header = header
        self.body = body
    }

    /// Throws when a length announced by a prefix is over the protocol's limits.
    public static func checkLengths(header: Int, body: Int) throws(WireFrameError) {
        if header > wireMaxHeaderBytes { throw .headerTooLarge(header) }
        if body > wireMaxBodyBytes { throw .bodyTooLarge(body) }
    }

    /// Prefix, header and body as one byte array.
    public static func encode(rawHeader header: [UInt8], body: [UInt8]) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(prefixBytes + header.count + body.count)
        encode(into: &bytes, body: body) { $0.append(contentsOf: header) }
        return bytes
    }

    /// Replaces `out` with one frame: the length prefix, the header `writeHeader` appends, then `body`.
    /// Reusing `out` across frames saves the allocations of building each one afresh.
    public static func encode(into out: inout [UInt8], body: [UInt8], header writeHeader: (inout [UInt8]) -> Void) {
        out.removeAll(keepingCapacity: true)
        out.append(contentsOf: repeatElement(0, count: prefixBytes))
        writeHeader(&out)
        setBigEndian(UInt32(truncatingIfNeeded: out.count - prefixBytes), in: &out, at: 0)
        setBigEndian(UInt32(truncatingIfNeeded: body.count), in: &out, at: 4)
        out.append(contentsOf: body)
    }

    /// Encodes `header` as JSON and frames it with `body`.
    public static func encode<Header: Encodable>(header: Header, body: [UInt8]) throws -> [UInt8] {
        let json = try JSONEncoder().encode(header)
        let headerBytes = [UInt8](json)
        try checkLengths(header: headerBytes.count, body: body.count)
        return encode(rawHeader: headerBytes, body: body)
    }

    /// Parses the first frame of `bytes`; nil when `bytes` does not hold a whole frame yet.
    public static func decode(from bytes: [UInt8]) throws(WireFrameError) -> (frame: WireFrame, consumed: Int)? {
        guard bytes.count >= prefixBytes else { return nil }
        let headerLength = readBigEndian(bytes, at: 0)
        let bodyLength = readBigEndian(bytes, at: 4)
        try checkLengths(header: headerLength, body: bodyLength)
        let total = prefixBytes + headerLength + bodyLength
        guard bytes.count >= total else { return nil }
        let headerEnd = prefixBytes + headerLength
        let frame = WireFrame(header: Array(bytes[prefixBytes..<headerEnd]), body: Array(bytes[headerEnd..<total]))
        return (frame, total)
    }

    /// Decodes the JSON header as `type`.
    public func decodeHeader<Header: Decodable>(_ type: Header.Type) throws(WireFrameError) -> Header {
        do {
            return try JSONDecoder().decode(type, from: Data(header))
        } catch {
            throw .invalidHeader("\(Header.self): \(error)")
        }
    }

    static func appendBigEndian(_ value: UInt32, to bytes: inout [UInt8]) {
        bytes.append(UInt8(truncatingIfNeeded: value >> 24))
        bytes.append(UInt8(truncatingIfNeeded: value >> 16))
        bytes.append(UInt8(truncatingIfNeeded: value >> 8))
        bytes.append(UInt8(truncatingIfNeeded: value))
    }

    static func setBigEndian(_ value: UInt32, in bytes: inout [UInt8], at offset: Int) {
        bytes[offset] = UInt8(truncatingIfNeeded: value >> 24)
        bytes[offset + 1] = UInt8(truncatingIfNeeded: value >> 16)
        bytes[offset + 2] = UInt8(truncatingIfNeeded: value >> 8)
        bytes[offset + 3] = UInt8(truncatingIfNeeded: value)
    }

    static func readBigEndian(_ bytes: [UInt8], at offset: Int) -> Int {
        Int(bytes[offset]) << 24 | Int(bytes[offset + 1]) << 16 | Int(bytes[offset + 2]) << 8 | Int(bytes[offset + 3])
    }
}

/// Reads frames from a blocking file descriptor (the runtime's end of the socket). One reader per fd.
/// A struct, so its buffer bookkeeping needs no run-time exclusivity checks on the per-request path.
public struct WireFrameReader {
    private let fd: Int32
    /// Bytes `start..<end` of `storage` are read but not yet returned.
    private var storage = [UInt8](repeating: 0, count: 64 * 1024)
    private var start = 0
    private var end = 0

    public init(fd: Int32) {
        self.fd = fd
    }

    /// The next frame; nil on end of stream between frames. Throws on end of stream inside a frame or an over-limit length.
    public mutating func next() throws(WireFrameError) -> WireFrame? {
        guard try fill(WireFrame.prefixBytes) else {
            if end == start { return nil }
            throw .truncated(expected: WireFrame.prefixBytes, received: end - start)
        }
        let headerLength = WireFrame.readBigEndian(storage, at: start)
        let bodyLength = WireFrame.readBigEndian(storage, at: start + 4)
        try WireFrame.checkLengths(header: headerLength, body: bodyLength)
        let total = WireFrame.prefixBytes + headerLength + bodyLength
        guard try fill(total) else {
            throw .truncated(expected: total, received: end - start)
        }
        let headerStart = start + WireFrame.prefixBytes
        let bodyStart = headerStart + headerLength
        let frame = WireFrame(
            header: Array(storage[headerStart..<bodyStart]),
            body: Array(storage[bodyStart..<(bodyStart + bodyLength)])
        )
        start += total
        if start == end {
            start = 0
            end = 0
        }
        return frame
    }

    /// Reads until `count` unread bytes are buffered; false on end of stream first.
    private mutating func fill(_ count: Int) throws(WireFrameError) -> Bool {
        if storage.count - start < count {
            // Move unread bytes to the front, then grow if the frame still does not fit.
            if start > 0 {
                storage.withUnsafeMutableBytes { raw in
                    raw.baseAddress!.copyMemory(from: raw.baseAddress! + start, byteCount: end - start)
                }
                end -= start
                start = 0
            }
            if storage.count < count {
                storage.append(contentsOf: repeatElement(0, count: max(count, storage.count * 2) - storage.count))
            }
        }
        while end - start < count {
            // Wait for readable data with poll, not inside read: a blocking read on a Unix stream socket also wakes
            // whenever the peer consumes our last reply (the socket's write space), a spurious wake-up per request.
            var waitFor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            if poll(&waitFor, 1, -1) < 0 {
                if errno == EINTR { continue }
                throw .io(operation: "poll", errno: errno)
            }
            let capacity = storage.count - end
            let got = storage.withUnsafeMutableBytes { raw in
                read(fd, raw.baseAddress! + end, capacity)
            }
            if got < 0 {
                if errno == EINTR { continue }
                throw .io(operation: "read", errno: errno)
            }
            if got == 0 { return false }
            end += got
        }
        return true
    }
}

/// Writes whole frames to a blocking file descriptor.
public enum WireFrameWriter {
    /// Writes all of `bytes`; uses send(MSG_NOSIGNAL) so a closed peer is an error, not SIGPIPE.
    public static func writeAll(_ bytes: [UInt8], to fd: Int32) throws(WireFrameError) {
        var offset = 0
        var useSend = true
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { raw -> Int in
                let pointer = raw.baseAddress! + offset
                let remaining = bytes.count - offset
                #if os(Linux)
                if useSend { return send(fd, pointer, remaining, Int32(MSG_NOSIGNAL)) }
                #endif
                return write(fd, pointer, remaining)
            }
            if written < 0 {
                if errno == EINTR { continue }
                if errno == ENOTSOCK && useSend {
                    useSend = false
                    continue
                }
                throw .io(operation: "write", errno: errno)
            }
            offset += written
        }
    }
}
