#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A cgroup operation that failed, naming the file and the system error.
public struct CgroupError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Small synchronous helpers for cgroup and proc files (each call is a few microseconds of system time).
enum CgroupFiles {
    static func errnoText(_ code: Int32 = errno) -> String {
        String(cString: strerror(code))
    }

    static func exists(_ path: String) -> Bool {
        access(path, F_OK) == 0
    }

    static func isWritable(_ path: String) -> Bool {
        access(path, W_OK) == 0
    }

    static func read(_ path: String) throws -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw CgroupError("cannot read \(path): \(errnoText())") }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let got = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if got < 0 {
                if errno == EINTR { continue }
                throw CgroupError("cannot read \(path): \(errnoText())")
            }
            if got == 0 { break }
            bytes.append(contentsOf: chunk[0..<got])
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    static func write(_ path: String, _ value: String) throws {
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        if fd < 0 { throw CgroupError("cannot open \(path): \(errnoText())") }
        defer { close(fd) }
        let written = value.withCString { Glibc.write(fd, $0, strlen($0)) }
        if written < 0 { throw CgroupError("cannot write \"\(value)\" to \(path): \(errnoText())") }
    }

    static func makeDirectory(_ path: String) throws {
        if mkdir(path, 0o755) != 0 && errno != EEXIST {
            throw CgroupError("cannot create cgroup \(path): \(errnoText())")
        }
    }

    /// Names of the entries of a directory (without "." and ".."); empty when it cannot be read.
    static func list(_ path: String) -> [String] {
        guard let dir = opendir(path) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: Int(NAME_MAX) + 1) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// The integer after `key` in a "key value" per line file such as memory.events.
    static func keyedValue(_ text: String, key: String) -> Int? {
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ")
            if parts.count == 2 && parts[0] == key { return Int(parts[1]) }
        }
        return nil
    }

    static func pids(inProcsFile path: String) -> [Int32] {
        guard let text = try? read(path) else { return [] }
        return text.split(separator: "\n").compactMap { Int32($0) }
    }
}
