import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The Swift runtime: the swiftlet binary re-executed in its hidden mode, hosting one built-in app.
public enum SwiftRuntime {
    /// The hidden subcommand that hosts an app: `swiftlet __runtime --app NAME`.
    public static let subcommand = "__runtime"

    /// Command to run `binary __runtime --app NAME` inside a sandbox; readOnlyPaths = the binary and the directories of the
    /// shared libraries it needs outside the system directories.
    public static func command(binary: String, app: String) -> RuntimeCommand {
        RuntimeCommand(
            executable: binary,
            arguments: [subcommand, "--app", app],
            readOnlyPaths: RuntimePaths.minimal([binary] + libraryDirectories(binary: binary))
        )
    }

    /// The default binary: this process's executable (/proc/self/exe resolved).
    public static func defaultBinary() -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let length = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        if length > 0 {
            let bytes = buffer[0..<length].map { UInt8(bitPattern: $0) }
            return String(decoding: bytes, as: UTF8.self)
        }
        return PythonRuntime.realPath(CommandLine.arguments.first ?? "swiftlet")
    }

    /// Directories outside the system ones that hold shared libraries `binary` may load: the binary's ELF RUNPATH/RPATH
    /// (with $ORIGIN expanded) and, as the worker is usually the same binary, the libraries mapped into this process.
    static func libraryDirectories(binary: String) -> [String] {
        let candidates = ELFRunPath.directories(ofBinary: binary) + mappedLibraryDirectories
        var seen = Set<String>()
        return candidates.filter { directory in
            !RuntimePaths.isSystemPath(directory) && FileManager.default.fileExists(atPath: directory)
                && seen.insert(directory).inserted
        }
    }

    /// Directories of the shared objects mapped into this process at first use.
    static let mappedLibraryDirectories: [String] = {
        guard let maps = try? String(contentsOfFile: "/proc/self/maps", encoding: .utf8) else { return [] }
        var directories: [String] = []
        for line in maps.split(separator: "\n") {
            guard let slash = line.firstIndex(of: "/") else { continue }
            let path = String(line[slash...])
            let file = (path as NSString).lastPathComponent
            guard file.hasSuffix(".so") || file.contains(".so.") else { continue }
            let directory = (PythonRuntime.realPath(path) as NSString).deletingLastPathComponent
            if !directories.contains(directory) { directories.append(directory) }
        }
        return directories
    }()
}

/// Reads DT_RUNPATH / DT_RPATH from a 64-bit little-endian ELF file without running ldd.
enum ELFRunPath {
    static func directories(ofBinary path: String) -> [String] {
        guard let handle = FileHandle(forReadingAtPath: path) else { return [] }
        defer { try? handle.close() }
        func read(_ offset: UInt64, _ count: Int) -> [UInt8]? {
            guard (try? handle.seek(toOffset: offset)) != nil,
                  let data = try? handle.read(upToCount: count), data.count == count else { return nil }
            return [UInt8](data)
        }
        func integer(_ bytes: [UInt8], _ at: Int, _ size: Int) -> UInt64 {
            var value: UInt64 = 0
            for index in (0..<size).reversed() { value = value << 8 | UInt64(bytes[at + index]) }
            return value
        }
        // ELF64, little endian.
        guard let header = read(0, 64), header[0..<4] == [0x7F, 0x45, 0x4C, 0x46], header[4] == 2, header[5] == 1 else {
            return []
        }
        let programOffset = integer(header, 32, 8)
        let entrySize = Int(integer(header, 54, 2))
        let entryCount = Int(integer(header, 56, 2))
        guard entrySize >= 56, entryCount > 0, entryCount < 256,
              let table = read(programOffset, entrySize * entryCount) else { return [] }
        var loads: [(address: UInt64, offset: UInt64, size: UInt64)] = []
        var dynamic: (offset: UInt64, size: UInt64)?
        for index in 0..<entryCount {
            let base = index * entrySize
            let type = integer(table, base, 4)
            let offset = integer(table, base + 8, 8)
            let address = integer(table, base + 16, 8)
            let fileSize = integer(table, base + 32, 8)
            if type == 1 { loads.append((address, offset, fileSize)) }
            if type == 2 { dynamic = (offset, fileSize) }
        }
        guard let dynamic, dynamic.size < 1 << 20, let entries = read(dynamic.offset, Int(dynamic.size)) else { return [] }
        var stringTable: UInt64?
        var pathOffsets: [UInt64] = []
        for base in stride(from: 0, to: entries.count - 15, by: 16) {
            let tag = integer(entries, base, 8)
            let value = integer(entries, base + 8, 8)
            if tag == 0 { break }
            if tag == 5 { stringTable = value }  // DT_STRTAB (an address)
            if tag == 15 || tag == 29 { pathOffsets.append(value) }  // DT_RPATH, DT_RUNPATH
        }
        guard let stringTable,
              let segment = loads.first(where: { stringTable >= $0.address && stringTable < $0.address + $0.size })
        else { return [] }
        let tableOffset = stringTable - segment.address + segment.offset
        let origin = (PythonRuntime.realPath(path) as NSString).deletingLastPathComponent
        var result: [String] = []
        for pathOffset in pathOffsets {
            guard let bytes = readShort(handle, tableOffset + pathOffset) else {
                continue
            }
            let text = String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
            for entry in text.split(separator: ":") {
                let expanded = entry.replacingOccurrences(of: "$ORIGIN", with: origin)
                    .replacingOccurrences(of: "${ORIGIN}", with: origin)
                if expanded.hasPrefix("/") {
                    result.append((expanded as NSString).standardizingPath)
                }
            }
        }
        return result
    }

    /// Up to 4 KiB from `offset` (less near the end of the file).
    private static func readShort(_ handle: FileHandle, _ offset: UInt64) -> [UInt8]? {
        guard (try? handle.seek(toOffset: offset)) != nil, let data = try? handle.read(upToCount: 4096) else { return nil }
        return [UInt8](data)
    }
}

/// Runs inside the sandbox: serves one built-in app over the wire protocol.
public enum SwiftRuntimeHost {
    /// Serves requests on fd 3 with `app` until EOF; returns the process exit code. Sends WireReady {runtime:"swift"} first.
    /// An app that throws AppError answers with its status and error {kind:"exception", message}; any other error → 500.
    /// Uses blocking I/O on `fd` (the host process does nothing else).
    public static func serve(app: any SwiftApp, fd: Int32) async -> Int32 {
        var reader = WireFrameReader(fd: fd)
        do {
            let ready = WireReady(ready: true, runtime: "swift", pid: Int(getpid()))
            try WireFrameWriter.writeAll(try WireFrame.encode(header: ready, body: []), to: fd)
            var out: [UInt8] = []
            out.reserveCapacity(64 * 1024)
            while let frame = try reader.next() {
                // Parsing and encoding stay synchronous: only the app call is async, so a request costs one small
                // async frame rather than a chain of them.
                let answer: (WireResponse, [UInt8])
                switch appRequest(from: frame) {
                case .request(let request):
                    do {
                        answer = response(try await app.handle(request))
                    } catch {
                        answer = failure(error)
                    }
                case .refused(let refused):
                    answer = (refused, [])
                }
                WireFrame.encode(into: &out, body: answer.1) { answer.0.appendJSON(to: &$0) }
                try WireFrameWriter.writeAll(out, to: fd)
                if out.capacity > 1 << 20 { out = [] }  // do not keep a large response's buffer
            }
            return 0
        } catch let error as WireFrameError {
            if case .io(_, let code) = error, code == EPIPE || code == ECONNRESET { return 0 }
            FileHandle.standardError.write(Data("swiftlet runtime: \(error)\n".utf8))
            return 2
        } catch {
            FileHandle.standardError.write(Data("swiftlet runtime: \(error)\n".utf8))
            return 1
        }
    }

    enum PreparedRequest {
        case request(AppRequest)
        case refused(WireResponse)
    }

    /// The app's view of a request frame, or the 400 answer to a header that is not a valid `WireRequest`.
    static func appRequest(from frame: WireFrame) -> PreparedRequest {
        let request: WireRequest
        do {
            request = try WireRequest(json: frame.header)
        } catch {
            let failure = WireError(kind: "bad_request", message: "invalid WireRequest header: \(error)")
            return .refused(WireResponse(status: 400, headers: [], error: failure))
        }
        var headers: [(name: String, value: String)] = []
        headers.reserveCapacity(request.headers.count)
        for pair in request.headers where pair.count == 2 { headers.append((pair[0], pair[1])) }
        return .request(AppRequest(
            method: request.method, path: request.path, query: request.query, headers: headers, body: frame.body))
    }

    static func response(_ response: AppResponse) -> (WireResponse, [UInt8]) {
        (WireResponse(status: response.status, headers: response.headers.map { [$0.name, $0.value] }), response.body)
    }

    /// An app that throws AppError answers with its status; any other error is a 500.
    static func failure(_ error: any Error) -> (WireResponse, [UInt8]) {
        if let error = error as? AppError {
            return (WireResponse(status: error.status, headers: [], error: WireError(kind: "exception", message: error.message)), [])
        }
        let failure = WireError(kind: "exception", message: "\(type(of: error)): \(error)")
        return (WireResponse(status: 500, headers: [], error: failure), [])
    }
}
