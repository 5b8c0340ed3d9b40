import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A lambda the worker can run.
public struct LambdaSource: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// A folder lambda; `directory` is the absolute path of its folder (holding f.py).
        case python(directory: String)
        /// A built-in Swift app.
        case builtin(app: String)
    }

    public var name: String
    public var kind: Kind
    public var config: LambdaConfig
    /// Changes whenever f.py, ol.yaml or requirements.txt change (or the folder is replaced).
    public var version: String

    public init(name: String, kind: Kind, config: LambdaConfig, version: String) {
        self.name = name
        self.kind = kind
        self.config = config
        self.version = version
    }
}

/// One row of `GET /registry/`.
public struct RegistryEntry: Sendable, Codable, Equatable {
    public var name: String
    /// "python" or "swift".
    public var kind: String

    public init(name: String, kind: String) {
        self.name = name
        self.kind = kind
    }
}

/// The OpenLambda-style registry: a directory with one folder per lambda (`f.py`, optional `ol.yaml`,
/// optional `requirements.txt`), plus the built-in Swift apps.
public final class Registry: Sendable {
    /// Uncompressed size cap of an upload (stops gzip bombs).
    public static let maxUncompressedBytes = 256 * 1024 * 1024
    /// Folder-name prefixes of work in progress; "~" cannot appear in a lambda name, so they never collide.
    static let stagingPrefix = ".~staging-"
    static let retiredPrefix = ".~old-"

    /// Absolute path of the registry directory.
    public let directory: String
    public let cacheMilliseconds: Int
    public let builtins: Set<String>
    private let displayRoot: String
    private let state = Mutex(State())

    private struct CachedLookup {
        var checkedAt: ContinuousClock.Instant
        var result: Result<LambdaSource?, RegistryError>
    }

    private struct State {
        var cache: [String: CachedLookup] = [:]
        /// Bumped by install and remove so a lookup that raced with them does not cache stale results.
        var generation = 0
    }

    /// Creates `directory` if missing and removes leftovers of interrupted installs.
    public init(directory: String, cacheMilliseconds: Int, builtins: [String]) throws {
        let absolute = URL(fileURLWithPath: directory).standardizedFileURL.path
        self.directory = absolute
        self.cacheMilliseconds = max(0, cacheMilliseconds)
        self.builtins = Set(builtins)
        self.displayRoot = URL(fileURLWithPath: absolute).lastPathComponent
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: absolute, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else {
                throw RegistryStorageError(path: absolute, message: "the registry path exists but is not a directory")
            }
        } else {
            do {
                try FileManager.default.createDirectory(atPath: absolute, withIntermediateDirectories: true)
            } catch {
                throw RegistryStorageError(path: absolute, message: "cannot create the registry directory: \(error.localizedDescription)")
            }
        }
        for leftover in (try? FileManager.default.contentsOfDirectory(atPath: absolute)) ?? []
        where leftover.hasPrefix(Self.stagingPrefix) || leftover.hasPrefix(Self.retiredPrefix) {
            try? FileManager.default.removeItem(atPath: absolute + "/" + leftover)
        }
    }

    // MARK: Lookup

    /// The lambda called `name`, or nil when there is none. Throws `invalidName` for a bad name and `invalidLambda`
    /// for a broken folder. Folder results are cached for `cacheMilliseconds`.
    public func lookup(_ name: String) throws(RegistryError) -> LambdaSource? {
        try LambdaName.validate(name)
        if builtins.contains(name) {
            return LambdaSource(name: name, kind: .builtin(app: name), config: .default, version: "builtin")
        }
        let now = ContinuousClock.now
        let ttl = Duration.milliseconds(cacheMilliseconds)
        let (cached, generation) = state.withLock { state -> (CachedLookup?, Int) in
            (state.cache[name], state.generation)
        }
        if let cached, now - cached.checkedAt < ttl {
            return try cached.result.get()
        }
        let result: Result<LambdaSource?, RegistryError>
        do throws(RegistryError) {
            result = .success(try loadFolder(name))
        } catch {
            result = .failure(error)
        }
        if cacheMilliseconds > 0 {
            state.withLock { state in
                guard state.generation == generation else { return }
                if state.cache.count >= 10_000 { state.cache.removeAll() }
                state.cache[name] = CachedLookup(checkedAt: now, result: result)
            }
        }
        return try result.get()
    }

    /// The lambda's ol.yaml settings (defaults for built-ins). Throws `notFound` when there is no such lambda.
    public func config(of name: String) throws(RegistryError) -> LambdaConfig {
        guard let source = try lookup(name) else { throw .notFound(name) }
        return source.config
    }

    /// Folder lambdas and built-ins, sorted by name.
    public func list() -> [RegistryEntry] {
        var entries = builtins.map { RegistryEntry(name: $0, kind: "swift") }
        for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        where LambdaName.isValid(name) && !builtins.contains(name) && isDirectory(directory + "/" + name) {
            entries.append(RegistryEntry(name: name, kind: "python"))
        }
        return entries.sorted { $0.name < $1.name }
    }

    private func loadFolder(_ name: String) throws(RegistryError) -> LambdaSource? {
        let folder = directory + "/" + name
        guard isDirectory(folder) else { return nil }
        var hasher = FNV1a()
        var info = stat()
        if stat(folder, &info) == 0 {
            // A replaced folder or added/removed files change the folder's inode or mtime.
            hasher.add(UInt64(info.st_ino))
            hasher.add(UInt64(bitPattern: Int64(info.st_mtim.tv_sec)))
            hasher.add(UInt64(bitPattern: Int64(info.st_mtim.tv_nsec)))
        }
        guard let code = readRegularFile(folder + "/f.py") else {
            throw .invalidLambda(name: name, message: "f.py is missing (a lambda folder needs f.py defining f(event))")
        }
        hasher.add(bytes: code)
        var config = LambdaConfig.default
        if let yaml = readRegularFile(folder + "/ol.yaml") {
            hasher.add(1)
            hasher.add(bytes: yaml)
            config = try Self.parseConfig(yaml, name: name, file: "\(displayRoot)/\(name)/ol.yaml")
        }
        if let requirements = readRegularFile(folder + "/requirements.txt") {
            hasher.add(2)
            hasher.add(bytes: requirements)
            try Self.checkRequirements(requirements, name: name)
        }
        return LambdaSource(name: name, kind: .python(directory: folder), config: config, version: hasher.hex)
    }

    static func parseConfig(_ yaml: [UInt8], name: String, file: String) throws(RegistryError) -> LambdaConfig {
        guard let text = String(validating: yaml, as: UTF8.self) else {
            throw .invalidLambda(name: name, message: "\(file): not valid UTF-8")
        }
        do {
            return try LambdaConfig.parse(yaml: text, file: file)
        } catch {
            throw .invalidLambda(name: name, message: error.description)
        }
    }

    /// Package installation does not exist yet: a requirements.txt that lists packages is refused.
    static func checkRequirements(_ bytes: [UInt8], name: String) throws(RegistryError) {
        let text = String(decoding: bytes, as: UTF8.self)
        let listsPackages = text.split(whereSeparator: \.isNewline).contains { line in
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            return !trimmed.isEmpty && !trimmed.hasPrefix("#")
        }
        if listsPackages {
            throw .invalidLambda(name: name, message: "requirements.txt lists packages, but package installation is not supported yet; remove it or leave it empty")
        }
    }

    // MARK: Install and remove

    /// Installs a .tar.gz upload as lambda `name`, replacing an older version atomically. Everything is validated
    /// before anything is written; on refusal the registry is unchanged.
    public func install(name: String, archive: [UInt8]) throws {
        try LambdaName.validate(name)
        if builtins.contains(name) { throw RegistryError.builtin(name) }
        let tar = try Gzip.decompress(archive, maxOutputBytes: Self.maxUncompressedBytes)
        let plan = try ExtractionPlan.make(entries: try TarReader.entries(of: tar))
        guard case .file(_, let code, _)? = plan.file(at: "f.py") else {
            throw RegistryError.invalidLambda(name: name, message: "the archive has no f.py at its top level (a lambda needs f.py defining f(event))")
        }
        _ = code
        if let yamlItem = plan.file(at: "ol.yaml") {
            guard case .file(_, let data, _) = yamlItem else {
                throw RegistryError.invalidLambda(name: name, message: "ol.yaml must be a regular file")
            }
            _ = try Self.parseConfig(Array(tar[data]), name: name, file: "\(displayRoot)/\(name)/ol.yaml")
        }
        if let requirements = plan.file(at: "requirements.txt") {
            guard case .file(_, let data, _) = requirements else {
                throw RegistryError.invalidLambda(name: name, message: "requirements.txt must be a regular file")
            }
            try Self.checkRequirements(Array(tar[data]), name: name)
        }

        let staging = directory + "/" + Self.stagingPrefix + name + "-" + UUID().uuidString
        guard mkdir(staging, 0o755) == 0 else { throw RegistryStorageError.errno(staging, "mkdir") }
        do {
            try plan.extract(tar: tar, into: staging)
            let target = directory + "/" + name
            try state.withLock { state throws(RegistryStorageError) in
                state.generation += 1
                state.cache[name] = nil
                try Self.swapIn(staging: staging, target: target)
            }
        } catch {
            try? FileManager.default.removeItem(atPath: staging)
            throw error
        }
        // After a swap the staging path holds the previous version (or nothing).
        try? FileManager.default.removeItem(atPath: staging)
    }

    /// Deletes folder lambda `name`. Throws `notFound` or `builtin`.
    public func remove(name: String) throws {
        try LambdaName.validate(name)
        if builtins.contains(name) { throw RegistryError.builtin(name) }
        let target = directory + "/" + name
        let retired = directory + "/" + Self.retiredPrefix + name + "-" + UUID().uuidString
        try state.withLock { state throws(any Error) in
            guard isDirectory(target) else { throw RegistryError.notFound(name) }
            state.generation += 1
            state.cache[name] = nil
            guard rename(target, retired) == 0 else { throw RegistryStorageError.errno(target, "rename") }
        }
        try? FileManager.default.removeItem(atPath: retired)
    }

    /// Moves `staging` to `target`; an existing target is exchanged atomically (renameat2) so `target` never disappears,
    /// with a two-rename fallback on kernels or filesystems without RENAME_EXCHANGE.
    private static func swapIn(staging: String, target: String) throws(RegistryStorageError) {
        var info = stat()
        guard lstat(target, &info) == 0 else {
            guard rename(staging, target) == 0 else { throw .errno(target, "rename") }
            return
        }
        typealias RenameAt2 = @convention(c) (Int32, UnsafePointer<CChar>?, Int32, UnsafePointer<CChar>?, UInt32) -> Int32
        let renameExchange: UInt32 = 1 << 1
        if let symbol = dlsym(nil, "renameat2") {
            let renameat2 = unsafeBitCast(symbol, to: RenameAt2.self)
            if renameat2(AT_FDCWD, staging, AT_FDCWD, target, renameExchange) == 0 { return }
        }
        let aside = staging + ".previous"
        guard rename(target, aside) == 0 else { throw .errno(target, "rename") }
        guard rename(staging, target) == 0 else {
            let code = errno
            _ = rename(aside, target)
            throw .errno(target, "rename", code)
        }
        guard rename(aside, staging) == 0 else { throw .errno(aside, "rename") }
    }

    // MARK: Files

    private func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && info.st_mode & S_IFMT == S_IFDIR
    }

    /// Contents of a regular file (following symlinks), nil when missing or not a regular file.
    private func readRegularFile(_ path: String) -> [UInt8]? {
        var info = stat()
        guard stat(path, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { return nil }
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return [UInt8](data)
    }
}

/// 64-bit FNV-1a, used to fingerprint lambda code (change detection, not security).
struct FNV1a {
    private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325

    mutating func add(bytes: [UInt8]) {
        add(UInt64(bytes.count))
        for b in bytes {
            value ^= UInt64(b)
            value &*= 0x0000_0100_0000_01b3
        }
    }

    mutating func add(_ number: UInt64) {
        var n = number
        for _ in 0..<8 {
            value ^= n & 0xff
            value &*= 0x0000_0100_0000_01b3
            n >>= 8
        }
    }

    var hex: String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}
