#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The worker's parent cgroup(s) `swiftlet-<pid>-<random>`, holding one child group per sandbox.
public final class CgroupManager: Sendable {
    public static let namePrefix = "swiftlet-"

    public let layout: CgroupLayout
    public let parentName: String
    /// Controller (v1) or "unified" (v2) -> parent directory.
    public let parents: [String: String]

    public init(layout: CgroupLayout) throws {
        self.layout = layout
        parentName = "\(Self.namePrefix)\(getpid())-\(String(UInt32.random(in: 0...UInt32.max), radix: 16))"
        var parents: [String: String] = [:]
        for (controller, base) in layout.bases { parents[controller] = CgroupLayout.join(base, parentName) }
        self.parents = parents
        var created: [String] = []
        do {
            if layout.version == .v2, let base = layout.bases["unified"] {
                try Self.enableControllers(in: base)
            }
            for directory in Set(parents.values).sorted() {
                try CgroupFiles.makeDirectory(directory)
                created.append(directory)
            }
            if layout.version == .v2, let parent = parents["unified"] {
                try Self.enableControllers(in: parent)
            }
        } catch {
            for directory in created { rmdir(directory) }
            throw error
        }
    }

    static func enableControllers(in directory: String) throws {
        let file = CgroupLayout.join(directory, "cgroup.subtree_control")
        let enabled = Set(((try? CgroupFiles.read(file)) ?? "").split(whereSeparator: \.isWhitespace).map(String.init))
        let missing = CgroupLayout.requiredControllers.filter { !enabled.contains($0) }
        if missing.isEmpty { return }
        do {
            try CgroupFiles.write(file, missing.map { "+" + $0 }.joined(separator: " "))
        } catch let error as CgroupError {
            throw CgroupError("cannot delegate \(missing.joined(separator: ",")) controllers (\(error.message))"
                + " — a cgroup v2 group holding processes cannot enable controllers for children")
        }
    }

    /// Creates the group of one sandbox and applies its limits.
    public func makeGroup(name: String, limits: SandboxLimits) throws -> CgroupGroup {
        var directories: [String: String] = [:]
        for (controller, parent) in parents { directories[controller] = CgroupLayout.join(parent, name) }
        let group = CgroupGroup(layout: layout, directories: directories)
        do {
            for directory in group.uniqueDirectories { try CgroupFiles.makeDirectory(directory) }
            try group.apply(limits)
        } catch {
            for directory in group.uniqueDirectories { rmdir(directory) }
            throw error
        }
        return group
    }

    /// Removes every sandbox group still below the parent (killing their processes) and the parent itself.
    public func removeAll() async {
        await Self.removeTree(parents: parents.map { ($0.key, $0.value) }, layout: layout)
    }

    /// Removes parents `swiftlet-<pid>-*` left by workers that are no longer running (killing what is left in them).
    /// Blocking (it runs once, when a backend starts). Returns the removed directories.
    @discardableResult
    public static func removeStale(layout: CgroupLayout) -> [String] {
        var stale: [String] = []
        for base in Set(layout.bases.values) {
            for name in CgroupFiles.list(base) where name.hasPrefix(namePrefix) {
                let pidText = name.dropFirst(namePrefix.count).prefix { $0 != "-" }
                guard let pid = Int32(pidText), pid != getpid() else { continue }
                if kill(pid, 0) != 0 && errno == ESRCH { stale.append(CgroupLayout.join(base, name)) }
            }
        }
        for parent in stale {
            let children = CgroupFiles.list(parent).map { CgroupLayout.join(parent, $0) }
                .filter { CgroupFiles.exists(CgroupLayout.join($0, "cgroup.procs")) }
            for child in children {
                let freezer = CgroupLayout.join(child, "freezer.state")
                if CgroupFiles.exists(freezer) { try? CgroupFiles.write(freezer, "THAWED") }
                let freeze = CgroupLayout.join(child, "cgroup.freeze")
                if CgroupFiles.exists(freeze) { try? CgroupFiles.write(freeze, "0") }
                for pid in CgroupFiles.pids(inProcsFile: CgroupLayout.join(child, "cgroup.procs")) { kill(pid, SIGKILL) }
            }
            for directory in children + [parent] {
                for _ in 0..<400 {
                    if rmdir(directory) == 0 || (errno != EBUSY && errno != EAGAIN) { break }
                    usleep(5000)
                }
            }
        }
        return stale.filter { !CgroupFiles.exists($0) }
    }

    static func removeTree(parents: [(controller: String, directory: String)], layout: CgroupLayout) async {
        var children: [String: [String: String]] = [:]
        for parent in parents {
            for name in CgroupFiles.list(parent.directory) {
                let child = CgroupLayout.join(parent.directory, name)
                guard CgroupFiles.exists(CgroupLayout.join(child, "cgroup.procs")) else { continue }
                children[name, default: [:]][parent.controller] = child
            }
        }
        for (_, directories) in children {
            let group = CgroupGroup(layout: layout, directories: directories)
            await group.killAll()
            await group.remove()
        }
        for directory in Set(parents.map(\.directory)) { await CgroupGroup.removeDirectory(directory) }
    }
}

/// The cgroup(s) of one sandbox.
public final class CgroupGroup: Sendable {
    public let layout: CgroupLayout
    /// Controller (v1) or "unified" (v2) -> directory.
    public let directories: [String: String]

    init(layout: CgroupLayout, directories: [String: String]) {
        self.layout = layout
        self.directories = directories
    }

    var uniqueDirectories: [String] { Array(Set(directories.values)).sorted() }

    /// The files a new single-threaded process writes "0" to, to join the sandbox's groups. On v1 this is `tasks`:
    /// moving the calling thread itself skips the global threadgroup lock that a `cgroup.procs` write takes,
    /// whose RCU grace period otherwise adds 0-10 ms to every sandbox start.
    public var procsFiles: [String] {
        uniqueDirectories.map { CgroupLayout.join($0, layout.version == .v1 ? "tasks" : "cgroup.procs") }
    }

    private func file(_ controller: String, _ name: String) -> String? {
        let key = layout.version == .v2 ? "unified" : controller
        return directories[key].map { CgroupLayout.join($0, name) }
    }

    func apply(_ limits: SandboxLimits) throws {
        let memoryBytes = max(limits.memoryMB, 1) << 20
        let pidsMax = limits.procs > 0 ? String(limits.procs) : "max"
        let period = 100_000
        switch layout.version {
        case .v2:
            try write("memory", "memory.max", String(memoryBytes))
            if let swap = file("memory", "memory.swap.max"), CgroupFiles.exists(swap) { try CgroupFiles.write(swap, "0") }
            try write("pids", "pids.max", pidsMax)
            let quota = limits.cpuPercent > 0 ? String(limits.cpuPercent * period / 100) : "max"
            try write("cpu", "cpu.max", "\(quota) \(period)")
        case .v1:
            try write("memory", "memory.limit_in_bytes", String(memoryBytes))
            if let swap = file("memory", "memory.memsw.limit_in_bytes"), CgroupFiles.exists(swap) {
                try CgroupFiles.write(swap, String(memoryBytes))
            }
            try write("pids", "pids.max", pidsMax)
            try write("cpu", "cpu.cfs_period_us", String(period))
            try write("cpu", "cpu.cfs_quota_us", limits.cpuPercent > 0 ? String(limits.cpuPercent * period / 100) : "-1")
        }
    }

    private func write(_ controller: String, _ name: String, _ value: String) throws {
        guard let path = file(controller, name) else { throw CgroupError("no \(controller) cgroup for \(name)") }
        try CgroupFiles.write(path, value)
    }

    /// Pids of every process in the group.
    public func processes() -> [Int32] {
        let key = layout.version == .v2 ? "unified" : "pids"
        guard let directory = directories[key] ?? directories.values.first else { return [] }
        return CgroupFiles.pids(inProcsFile: CgroupLayout.join(directory, "cgroup.procs"))
    }

    /// Freezes every process and waits until the kernel reports the group frozen. No-op without a freezer.
    public func freeze() async throws {
        try await setFrozen(true)
    }

    public func thaw() async throws {
        try await setFrozen(false)
    }

    private func setFrozen(_ frozen: Bool) async throws {
        guard layout.hasFreezer else { return }
        let deadline = ContinuousClock.now + .seconds(5)
        switch layout.version {
        case .v2:
            guard let control = file("freezer", "cgroup.freeze"), let events = file("freezer", "cgroup.events") else { return }
            try CgroupFiles.write(control, frozen ? "1" : "0")
            while CgroupFiles.keyedValue((try? CgroupFiles.read(events)) ?? "", key: "frozen") != (frozen ? 1 : 0) {
                if ContinuousClock.now > deadline { throw CgroupError("\(events) did not reach frozen \(frozen ? 1 : 0) within 5 s") }
                try await Task.sleep(for: .milliseconds(1))
            }
        case .v1:
            guard let state = file("freezer", "freezer.state") else { return }
            let target = frozen ? "FROZEN" : "THAWED"
            try CgroupFiles.write(state, target)
            while trimmed((try? CgroupFiles.read(state)) ?? "") != target {
                if ContinuousClock.now > deadline { throw CgroupError("\(state) did not reach \(target) within 5 s") }
                try? CgroupFiles.write(state, target)
                try await Task.sleep(for: .milliseconds(1))
            }
        }
    }

    /// Whether the kernel killed a process of this group for exceeding its memory limit.
    /// On v1 kernels without an `oom_kill` counter, a non-zero `memory.failcnt` is reported (combine with SIGKILL).
    public func recordedOutOfMemoryKill() -> Bool {
        switch layout.version {
        case .v2:
            guard let events = file("memory", "memory.events") else { return false }
            return (CgroupFiles.keyedValue((try? CgroupFiles.read(events)) ?? "", key: "oom_kill") ?? 0) > 0
        case .v1:
            guard let control = file("memory", "memory.oom_control") else { return false }
            if let count = CgroupFiles.keyedValue((try? CgroupFiles.read(control)) ?? "", key: "oom_kill") { return count > 0 }
            guard let failcnt = file("memory", "memory.failcnt") else { return false }
            return (Int(trimmed((try? CgroupFiles.read(failcnt)) ?? "0")) ?? 0) > 0
        }
    }

    /// Asks the freezer to thaw the group without waiting for it (a no-op without a freezer).
    func thawWithoutWaiting() {
        guard layout.hasFreezer else { return }
        switch layout.version {
        case .v2:
            if let control = file("freezer", "cgroup.freeze") { try? CgroupFiles.write(control, "0") }
        case .v1:
            if let state = file("freezer", "freezer.state") { try? CgroupFiles.write(state, "THAWED") }
        }
    }

    /// Kills every process of the group (frozen ones too) and waits briefly until the group is empty.
    public func killAll() async {
        if layout.version == .v2, let kill = file("unified", "cgroup.kill"), CgroupFiles.exists(kill) {
            try? CgroupFiles.write(kill, "1")
        } else {
            // Freeze first so a fork bomb cannot outrun the loop; SIGKILL is delivered once thawed.
            try? await freeze()
            for _ in 0..<100 {
                let pids = processes()
                if pids.isEmpty { break }
                for pid in pids { Glibc.kill(pid, SIGKILL) }
                try? await thaw()
                if processes().isEmpty { break }
                try? await Task.sleep(for: .milliseconds(1))
            }
        }
        try? await thaw()
        for _ in 0..<2000 where !processes().isEmpty {
            try? await Task.sleep(for: .milliseconds(1))
        }
    }

    /// Removes the group's directories, retrying while exiting tasks still hold them.
    public func remove() async {
        for directory in uniqueDirectories { await Self.removeDirectory(directory) }
    }

    static func removeDirectory(_ directory: String) async {
        for _ in 0..<400 {
            if rmdir(directory) == 0 || errno == ENOENT { return }
            if errno != EBUSY && errno != EAGAIN { return }
            try? await Task.sleep(for: .milliseconds(5))
        }
    }
}

private func trimmed(_ text: String) -> String {
    var rest = Substring(text)
    while let first = rest.first, first.isWhitespace { rest.removeFirst() }
    while let last = rest.last, last.isWhitespace { rest.removeLast() }
    return String(rest)
}
