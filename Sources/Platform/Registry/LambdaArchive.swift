import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Packs a lambda folder into the .tar.gz that `POST /registry/NAME` accepts.
public enum LambdaArchive {
    /// Folders skipped when packing (caches and version control, never needed to run a lambda).
    public static let skippedDirectories: Set<String> = [".git", "__pycache__"]

    /// Regular files and directories of `directory` with relative paths; symlinks are kept only when they stay
    /// inside the directory. Throws when the directory has no f.py or holds devices, sockets or links pointing out.
    public static func make(directory: String) throws -> [UInt8] {
        let root = URL(fileURLWithPath: directory).standardizedFileURL.path
        var info = stat()
        guard stat(root, &info) == 0, info.st_mode & S_IFMT == S_IFDIR else {
            throw LambdaArchiveError(path: directory, message: "not a directory")
        }
        guard stat(root + "/f.py", &info) == 0, info.st_mode & S_IFMT == S_IFREG else {
            throw LambdaArchiveError(path: directory, message: "has no f.py (a lambda folder needs f.py defining f(event))")
        }
        var writer = TarWriter()
        var symlinks: [String: String] = [:]
        try add(root: root, relative: "", writer: &writer, symlinks: &symlinks)
        for (path, target) in symlinks where ExtractionPlan.resolve(link: path, target: target, symlinks: symlinks) != .inside {
            throw LambdaArchiveError(path: root + "/" + path, message: "symlink to \"\(target)\" points outside the lambda folder")
        }
        let tar = writer.finished()
        guard tar.count <= Registry.maxUncompressedBytes else {
            throw LambdaArchiveError(path: directory, message: "larger than the registry's \(Registry.maxUncompressedBytes / (1024 * 1024)) MB limit")
        }
        return Gzip.compress(tar)
    }

    private static func add(root: String, relative: String, writer: inout TarWriter, symlinks: inout [String: String]) throws {
        let folder = relative.isEmpty ? root : root + "/" + relative
        let names: [String]
        do { names = try FileManager.default.contentsOfDirectory(atPath: folder).sorted() } catch {
            throw LambdaArchiveError(path: folder, message: "cannot list: \(error.localizedDescription)")
        }
        for name in names {
            let path = relative.isEmpty ? name : relative + "/" + name
            let full = root + "/" + path
            var info = stat()
            guard lstat(full, &info) == 0 else { throw LambdaArchiveError(path: full, message: "cannot stat: \(String(cString: strerror(errno)))") }
            switch info.st_mode & S_IFMT {
            case S_IFDIR:
                if skippedDirectories.contains(name) { continue }
                writer.addDirectory(path)
                try add(root: root, relative: path, writer: &writer, symlinks: &symlinks)
            case S_IFREG:
                guard let data = FileManager.default.contents(atPath: full) else {
                    throw LambdaArchiveError(path: full, message: "cannot read")
                }
                writer.addFile(path, contents: [UInt8](data), mode: Int(info.st_mode) & 0o111 != 0 ? 0o755 : 0o644)
            case S_IFLNK:
                let target = try FileManager.default.destinationOfSymbolicLink(atPath: full)
                if target.hasPrefix("/") {
                    throw LambdaArchiveError(path: full, message: "symlink to the absolute path \"\(target)\" (links must stay inside the lambda folder)")
                }
                symlinks[path] = target
                writer.addSymlink(path, target: target)
            default:
                throw LambdaArchiveError(path: full, message: "not a regular file, directory or symlink")
            }
        }
    }
}

public struct LambdaArchiveError: Error, Sendable, Equatable, CustomStringConvertible {
    public var path: String
    public var message: String
    public var description: String { "\(path): \(message)" }
}
