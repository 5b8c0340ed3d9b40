import CZlib

/// gzip compression and bounded decompression with zlib.
public enum Gzip {
    /// Decompresses gzip data (one or more concatenated members). Refuses non-gzip or corrupt data and output
    /// larger than `maxOutputBytes` (gzip bombs).
    public static func decompress(_ input: [UInt8], maxOutputBytes: Int) throws(RegistryError) -> [UInt8] {
        guard input.count >= 2, input[0] == 0x1f, input[1] == 0x8b else {
            throw .badArchive("the upload is not gzip data (expected a .tar.gz archive)")
        }
        let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
        stream.initialize(to: z_stream())
        defer { stream.deinitialize(count: 1); stream.deallocate() }
        // 15 + 16: maximum window, gzip wrapper only.
        guard inflateInit2_(stream, 15 + 16, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw .badArchive("cannot initialise the gzip decoder")
        }
        defer { inflateEnd(stream) }

        var output: [UInt8] = []
        output.reserveCapacity(min(maxOutputBytes, max(64 * 1024, input.count * 4)))
        var chunk = [UInt8](repeating: 0, count: 256 * 1024)
        var result: Result<Void, RegistryError> = .success(())
        input.withUnsafeBufferPointer { inputBuffer in
            var offset = 0
            while true {
                stream.pointee.next_in = UnsafeMutablePointer(mutating: inputBuffer.baseAddress! + offset)
                stream.pointee.avail_in = UInt32(inputBuffer.count - offset)
                var status: Int32 = Z_OK
                repeat {
                    let produced: Int = chunk.withUnsafeMutableBufferPointer { out in
                        stream.pointee.next_out = out.baseAddress
                        stream.pointee.avail_out = UInt32(out.count)
                        status = inflate(stream, Z_NO_FLUSH)
                        return out.count - Int(stream.pointee.avail_out)
                    }
                    if output.count + produced > maxOutputBytes {
                        result = .failure(.badArchive("uncompressed size exceeds the limit of \(maxOutputBytes / (1024 * 1024)) MB"))
                        return
                    }
                    output.append(contentsOf: chunk[0..<produced])
                    if status == Z_DATA_ERROR || status == Z_NEED_DICT {
                        let reason = stream.pointee.msg.map { String(cString: $0) } ?? "invalid data"
                        result = .failure(.badArchive("corrupt gzip data (\(reason))"))
                        return
                    }
                    if status == Z_MEM_ERROR || status == Z_STREAM_ERROR {
                        result = .failure(.badArchive("gzip decoder failure (\(status))"))
                        return
                    }
                    if status == Z_BUF_ERROR && stream.pointee.avail_in == 0 {
                        result = .failure(.badArchive("truncated gzip data (the archive ends early)"))
                        return
                    }
                } while status != Z_STREAM_END
                offset = inputBuffer.count - Int(stream.pointee.avail_in)
                let rest = inputBuffer[offset...]
                if rest.count >= 2 && rest[offset] == 0x1f && rest[offset + 1] == 0x8b {
                    inflateReset(stream)
                    continue
                }
                if !rest.allSatisfy({ $0 == 0 }) {
                    result = .failure(.badArchive("unexpected data after the end of the gzip stream"))
                }
                return
            }
        }
        try result.get()
        return output
    }

    /// Compresses `input` into one gzip member.
    public static func compress(_ input: [UInt8], level: Int32 = 6) -> [UInt8] {
        let compressor = GzipCompressor(level: level)
        compressor.write(input)
        return compressor.finish()
    }
}

/// Streaming gzip compressor (for large inputs such as test archives).
public final class GzipCompressor {
    private let stream: UnsafeMutablePointer<z_stream>
    private var output: [UInt8] = []
    private var finished = false

    public init(level: Int32 = 6) {
        stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
        stream.initialize(to: z_stream())
        let status = deflateInit2_(stream, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        precondition(status == Z_OK, "deflateInit2 failed: \(status)")
    }

    deinit {
        deflateEnd(stream)
        stream.deinitialize(count: 1)
        stream.deallocate()
    }

    public func write(_ bytes: [UInt8]) {
        precondition(!finished, "write after finish")
        run(bytes, flush: Z_NO_FLUSH)
    }

    /// Ends the stream and returns all compressed bytes.
    public func finish() -> [UInt8] {
        if !finished {
            run([], flush: Z_FINISH)
            finished = true
        }
        return output
    }

    private func run(_ bytes: [UInt8], flush: Int32) {
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        bytes.withUnsafeBufferPointer { input in
            stream.pointee.next_in = input.baseAddress.map { UnsafeMutablePointer(mutating: $0) }
            stream.pointee.avail_in = UInt32(input.count)
            while true {
                var status: Int32 = Z_OK
                let produced: Int = chunk.withUnsafeMutableBufferPointer { out in
                    stream.pointee.next_out = out.baseAddress
                    stream.pointee.avail_out = UInt32(out.count)
                    status = deflate(stream, flush)
                    return out.count - Int(stream.pointee.avail_out)
                }
                output.append(contentsOf: chunk[0..<produced])
                if flush == Z_FINISH {
                    if status == Z_STREAM_END { break }
                } else if stream.pointee.avail_in == 0 && produced < chunk.count {
                    break
                }
                precondition(status == Z_OK || status == Z_BUF_ERROR, "deflate failed: \(status)")
            }
        }
    }
}
