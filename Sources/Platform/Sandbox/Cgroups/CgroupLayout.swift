/// Which cgroup hierarchy the worker uses and where it may create groups.
public struct CgroupLayout: Sendable, Equatable {
    public enum Version: String, Sendable { case v1, v2 }

    /// Controllers a sandbox needs; `freezer` is optional on v1 (v2 always has `cgroup.freeze`).
    public static let requiredControllers = ["memory", "pids", "cpu"]

    public var version: Version
    /// Directory below which the worker creates its parent group: per controller on v1, key "unified" on v2.
    public var bases: [String: String]
    /// Controllers in use, e.g. ["memory", "pids", "cpu", "freezer"].
    public var controllers: [String]

    public init(version: Version, bases: [String: String], controllers: [String]) {
        self.version = version
        self.bases = bases
        self.controllers = controllers
    }

    public var hasFreezer: Bool { version == .v2 || controllers.contains("freezer") }

    /// e.g. "cgroup v1 memory,pids,cpu,freezer".
    public var summary: String { "cgroup \(version.rawValue) \(controllers.joined(separator: ","))" }

    /// What `/proc/self/mounts` and `/proc/self/cgroup` say, before any filesystem check.
    public struct Candidates: Sendable, Equatable {
        /// Mount point of the unified (v2) hierarchy and this process's path in it.
        public var unifiedMount: String?
        public var unifiedPath: String?
        /// v1 controller -> (mount point, this process's path in that hierarchy).
        public var v1: [String: (mount: String, path: String)]

        public static func == (a: Candidates, b: Candidates) -> Bool {
            a.unifiedMount == b.unifiedMount && a.unifiedPath == b.unifiedPath
                && a.v1.keys.sorted() == b.v1.keys.sorted()
                && a.v1.allSatisfy { b.v1[$0.key]?.mount == $0.value.mount && b.v1[$0.key]?.path == $0.value.path }
        }
    }

    /// Parses the text of `/proc/self/mounts` and `/proc/self/cgroup`.
    public static func candidates(mounts: String, selfCgroup: String) -> Candidates {
        var paths: [String: String] = [:]
        var unifiedPath: String?
        for line in selfCgroup.split(separator: "\n") {
            let fields = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard fields.count == 3 else { continue }
            if fields[0] == "0" && fields[1].isEmpty {
                unifiedPath = String(fields[2])
            } else {
                for controller in fields[1].split(separator: ",") { paths[String(controller)] = String(fields[2]) }
            }
        }
        var unifiedMount: String?
        var v1: [String: (mount: String, path: String)] = [:]
        for line in mounts.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count >= 4 else { continue }
            let mountPoint = String(fields[1])
            if fields[2] == "cgroup2" {
                if unifiedMount == nil { unifiedMount = mountPoint }
            } else if fields[2] == "cgroup" {
                for option in fields[3].split(separator: ",") {
                    let name = String(option)
                    guard requiredControllers.contains(name) || name == "freezer", v1[name] == nil else { continue }
                    v1[name] = (mountPoint, paths[name] ?? "/")
                }
            }
        }
        return Candidates(unifiedMount: unifiedMount, unifiedPath: unifiedPath, v1: v1)
    }

    /// Detects the usable hierarchy: v2 when its controllers include memory, pids and cpu and the worker can
    /// delegate them; otherwise v1 when memory, pids and cpu are mounted and writable. Throws naming what is missing.
    public static func detect() throws -> CgroupLayout {
        let mounts = try CgroupFiles.read("/proc/self/mounts")
        let selfCgroup = try CgroupFiles.read("/proc/self/cgroup")
        return try detect(candidates(mounts: mounts, selfCgroup: selfCgroup))
    }

    static func detect(_ found: Candidates) throws -> CgroupLayout {
        var reasons: [String] = []
        if let mount = found.unifiedMount {
            let own = join(mount, found.unifiedPath ?? "/")
            let base = CgroupFiles.exists(own) ? own : mount
            let available = Set(((try? CgroupFiles.read(join(base, "cgroup.controllers"))) ?? "").split(whereSeparator: \.isWhitespace).map(String.init))
            let missing = requiredControllers.filter { !available.contains($0) }
            if !missing.isEmpty {
                reasons.append("cgroup v2 at \(base) lacks controllers \(missing.joined(separator: ","))")
            } else if !CgroupFiles.isWritable(join(base, "cgroup.subtree_control")) {
                reasons.append("cgroup v2 at \(base): cgroup.subtree_control is not writable")
            } else {
                return CgroupLayout(version: .v2, bases: ["unified": base], controllers: requiredControllers)
            }
        } else {
            reasons.append("no cgroup v2 mount")
        }
        var bases: [String: String] = [:]
        for name in requiredControllers + ["freezer"] {
            guard let entry = found.v1[name] else { continue }
            let own = join(entry.mount, entry.path)
            let base = CgroupFiles.exists(own) ? own : entry.mount
            if CgroupFiles.isWritable(base) { bases[name] = base }
        }
        let missing = requiredControllers.filter { bases[$0] == nil }
        if missing.isEmpty {
            let controllers = (requiredControllers + ["freezer"]).filter { bases[$0] != nil }
            return CgroupLayout(version: .v1, bases: bases, controllers: controllers)
        }
        reasons.append("cgroup v1 controllers \(missing.joined(separator: ",")) are not mounted or not writable")
        throw CgroupError("no usable cgroups: " + reasons.joined(separator: "; "))
    }

    static func join(_ directory: String, _ name: String) -> String {
        let trimmed = name.hasPrefix("/") ? String(name.dropFirst()) : name
        if trimmed.isEmpty { return directory }
        return directory.hasSuffix("/") ? directory + trimmed : directory + "/" + trimmed
    }
}
