import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The validated content of an uploaded archive: nothing is written until every entry passed every check.
struct ExtractionPlan {
    enum Item: Equatable {
        case directory(path: String)
        case file(path: String, data: Range<Int>, executable: Bool)
        case symlink(path: String, target: String)

        var path: String {
            switch self {
            case .directory(let p), .file(let p, _, _), .symlink(let p, _): return p
            }
        }
    }

    /// In archive order; directories before their contents, symlinks last.
    private(set) var items: [Item] = []

    func file(at path: String) -> Item? {
        items.last { $0.path == path }
    }

    /// Checks every entry: no absolute paths, no "..", links stay inside, no devices or fifos, no paths through links.
    /// Strips one top-level directory when every entry lives inside it.
    static func make(entries: [TarEntry]) throws(RegistryError) -> ExtractionPlan {
        struct Normalized { var entry: TarEntry; var components: [String] }
        var normalized: [Normalized] = []
        for entry in entries {
            let shown = entry.path
            switch entry.kind {
            case .characterDevice: throw .unsafeArchive(entry: shown, reason: "character device entries are not allowed")
            case .blockDevice: throw .unsafeArchive(entry: shown, reason: "block device entries are not allowed")
            case .fifo: throw .unsafeArchive(entry: shown, reason: "FIFO entries are not allowed")
            case .unsupported(let type):
                let text = (0x20..<0x7f).contains(type) ? "'\(Character(Unicode.Scalar(type)))'" : "\(type)"
                throw .unsafeArchive(entry: shown, reason: "unsupported entry type \(text)")
            default: break
            }
            let components = try relativeComponents(entry.path, entry: shown, what: "path")
            if components.isEmpty {
                if entry.kind == .directory { continue }
                throw .unsafeArchive(entry: shown, reason: "the entry has an empty path")
            }
            normalized.append(Normalized(entry: entry, components: components))
        }

        // One shared top-level directory (and no top-level file of that name) is stripped.
        var strip: String?
        if let first = normalized.first?.components.first,
           normalized.allSatisfy({ $0.components.first == first && ($0.components.count > 1 || $0.entry.kind == .directory) }) {
            strip = first
        }

        var plan = ExtractionPlan()
        var kinds: [String: TarEntry.Kind] = [:]
        var fileItems: [String: Item] = [:]
        var symlinks: [String: String] = [:]
        var deferredLinks: [Item] = []
        for var n in normalized {
            if let strip {
                n.components.removeFirst()
                if n.components.isEmpty { continue }
                _ = strip
            }
            let path = n.components.joined(separator: "/")
            let shown = n.entry.path
            var kind = n.entry.kind
            var item: Item
            switch kind {
            case .directory:
                item = .directory(path: path)
            case .file:
                item = .file(path: path, data: n.entry.data, executable: n.entry.mode & 0o111 != 0)
            case .symlink:
                let target = n.entry.linkTarget
                if target.isEmpty { throw .unsafeArchive(entry: shown, reason: "the symlink has an empty target") }
                if target.hasPrefix("/") { throw .unsafeArchive(entry: shown, reason: "symlink target \"\(target)\" is absolute") }
                if target.utf8.contains(0) { throw .unsafeArchive(entry: shown, reason: "symlink target contains a NUL byte") }
                item = .symlink(path: path, target: target)
                symlinks[path] = target
            case .hardLink:
                var target = try relativeComponents(n.entry.linkTarget, entry: shown, what: "hard link target")
                if let strip {
                    guard target.first == strip, target.count > 1 else {
                        throw .unsafeArchive(entry: shown, reason: "hard link target \"\(n.entry.linkTarget)\" is outside the lambda")
                    }
                    target.removeFirst()
                }
                guard case .file(_, let data, let executable)? = fileItems[target.joined(separator: "/")] else {
                    throw .unsafeArchive(entry: shown, reason: "hard link target \"\(n.entry.linkTarget)\" is not a regular file earlier in the archive")
                }
                item = .file(path: path, data: data, executable: executable)
                kind = .file
            default:
                throw .unsafeArchive(entry: shown, reason: "unsupported entry")
            }
            if let previous = kinds[path] {
                let bothDirectories = previous == .directory && kind == .directory
                let bothFiles = previous == .file && kind == .file
                guard bothDirectories || bothFiles else {
                    throw .unsafeArchive(entry: shown, reason: "the path appears more than once in the archive with different types")
                }
                if bothDirectories { continue }
            }
            kinds[path] = kind
            if kind == .file { fileItems[path] = item }
            if case .symlink = item { deferredLinks.append(item) } else { plan.items.append(item) }
        }

        // Parents must be directories (declared or implied), never files or symlinks.
        for (path, _) in kinds {
            var prefix = ""
            for component in path.split(separator: "/").dropLast() {
                prefix = prefix.isEmpty ? String(component) : prefix + "/" + component
                if let parentKind = kinds[prefix], parentKind != .directory {
                    let what = parentKind == .symlink ? "symlink" : "file"
                    throw .unsafeArchive(entry: path, reason: "the path goes through the \(what) \"\(prefix)\"")
                }
            }
        }
        for case .symlink(let path, let target) in deferredLinks {
            switch resolve(link: path, target: target, symlinks: symlinks) {
            case .inside: break
            case .escapes: throw .unsafeArchive(entry: path, reason: "symlink target \"\(target)\" points outside the lambda")
            case .loop: throw .unsafeArchive(entry: path, reason: "symlink target \"\(target)\" is a symlink loop")
            }
        }
        plan.items += deferredLinks
        return plan
    }

    /// Path components of a relative archive path; refuses absolute paths and "..".
    private static func relativeComponents(_ path: String, entry: String, what: String) throws(RegistryError) -> [String] {
        if path.hasPrefix("/") { throw .unsafeArchive(entry: entry, reason: "\(what) is absolute") }
        if path.utf8.contains(0) { throw .unsafeArchive(entry: entry, reason: "\(what) contains a NUL byte") }
        var components: [String] = []
        for part in path.split(separator: "/", omittingEmptySubsequences: true) {
            if part == "." { continue }
            if part == ".." { throw .unsafeArchive(entry: entry, reason: "\(what) contains a \"..\" component") }
            components.append(String(part))
        }
        return components
    }

    enum Resolution { case inside, escapes, loop }

    /// Follows `target` from the link's directory through the archive's own symlinks; `.escapes` when it leaves the root.
    static func resolve(link: String, target: String, symlinks: [String: String]) -> Resolution {
        var stack = link.split(separator: "/").dropLast().map(String.init)
        var queue = target.split(separator: "/").map(String.init).reversed() as [String]
        var hops = 0
        while let component = queue.popLast() {
            if component == "." || component.isEmpty { continue }
            if component == ".." {
                if stack.isEmpty { return .escapes }
                stack.removeLast()
                continue
            }
            stack.append(component)
            if let next = symlinks[stack.joined(separator: "/")] {
                hops += 1
                if hops > 40 { return .loop }
                if next.hasPrefix("/") { return .escapes }
                stack.removeLast()
                queue.append(contentsOf: next.split(separator: "/").map(String.init).reversed())
            }
        }
        return .inside
    }

    /// Writes the plan into `root` (an empty directory). Never follows symlinks while writing.
    func extract(tar: [UInt8], into root: String) throws(RegistryStorageError) {
        for item in items {
            let full = root + "/" + item.path
            try makeParents(of: item.path, root: root)
            switch item {
            case .directory:
                try makeDirectory(full)
            case .file(_, let data, let executable):
                let fd = open(full, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, executable ? 0o755 : 0o644)
                guard fd >= 0 else { throw .errno(full, "open") }
                defer { close(fd) }
                var written = data.lowerBound
                while written < data.upperBound {
                    let n = tar.withUnsafeBytes { raw in
                        Glibc.write(fd, raw.baseAddress! + written, data.upperBound - written)
                    }
                    if n < 0 {
                        if errno == EINTR { continue }
                        throw .errno(full, "write")
                    }
                    written += n
                }
                _ = fchmod(fd, executable ? 0o755 : 0o644)
            case .symlink(_, let target):
                guard symlink(target, full) == 0 else { throw .errno(full, "symlink") }
            }
        }
    }

    private func makeParents(of path: String, root: String) throws(RegistryStorageError) {
        var current = root
        for component in path.split(separator: "/").dropLast() {
            current += "/" + component
            try makeDirectory(current)
        }
    }

    private func makeDirectory(_ path: String) throws(RegistryStorageError) {
        if mkdir(path, 0o755) == 0 { return }
        let code = errno
        var info = stat()
        if code == EEXIST, lstat(path, &info) == 0, info.st_mode & S_IFMT == S_IFDIR { return }
        throw .errno(path, "mkdir", code)
    }
}
