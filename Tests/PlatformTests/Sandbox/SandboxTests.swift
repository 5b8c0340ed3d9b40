import Foundation
import NIOCore
import XCTest

@testable import Platform

/// Python expression: the environment's names, without LC_CTYPE (added by Python's own locale coercion).
let environmentNames = "','.join(sorted(k for k in os.environ if k != 'LC_CTYPE'))"
/// Python expression: open descriptors, minus the highest one, which is the listing's own directory descriptor.
let openDescriptors = "str(sorted(int(f) for f in os.listdir('/proc/self/fd'))[:-1])"

final class SandboxCgroupTests: XCTestCase {
    func testParsesV1ControllersAndOwnPaths() {
        let mounts = """
            tmpfs /sys/fs/cgroup tmpfs rw,relatime,mode=755 0 0
            cgroup /sys/fs/cgroup/cpu,cpuacct cgroup rw,relatime,cpu,cpuacct 0 0
            cgroup /sys/fs/cgroup/memory cgroup rw,relatime,memory 0 0
            cgroup /sys/fs/cgroup/freezer cgroup rw,relatime,freezer 0 0
            cgroup /sys/fs/cgroup/pids cgroup rw,relatime,pids 0 0
            cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0
            """
        let selfCgroup = "5:pids:/\n4:memory:/jobs/42\n3:freezer:/\n2:cpu,cpuacct:/\n0::/\n"
        let found = CgroupLayout.candidates(mounts: mounts, selfCgroup: selfCgroup)
        XCTAssertEqual(found.unifiedMount, "/sys/fs/cgroup/unified")
        XCTAssertEqual(found.unifiedPath, "/")
        XCTAssertEqual(found.v1["memory"]?.mount, "/sys/fs/cgroup/memory")
        XCTAssertEqual(found.v1["memory"]?.path, "/jobs/42")
        XCTAssertEqual(found.v1["cpu"]?.mount, "/sys/fs/cgroup/cpu,cpuacct")
        XCTAssertEqual(Set(found.v1.keys), ["memory", "pids", "cpu", "freezer"])
    }

    func testParsesPureV2() {
        let mounts = "cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid,nodev,noexec,relatime 0 0\nproc /proc proc rw 0 0\n"
        let found = CgroupLayout.candidates(mounts: mounts, selfCgroup: "0::/user.slice/session-1.scope\n")
        XCTAssertEqual(found.unifiedMount, "/sys/fs/cgroup")
        XCTAssertEqual(found.unifiedPath, "/user.slice/session-1.scope")
        XCTAssertTrue(found.v1.isEmpty)
    }

    func testDetectRefusesWithoutControllersNamingWhatIsMissing() {
        let found = CgroupLayout.Candidates(unifiedMount: nil, unifiedPath: nil, v1: [:])
        XCTAssertThrowsError(try CgroupLayout.detect(found)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("no cgroup v2 mount"), text)
            XCTAssertTrue(text.contains("memory,pids,cpu"), text)
        }
    }

    func testDetectsThisMachineAndCreatesAndRemovesGroups() async throws {
        try requireRootAndPython()
        let layout = try CgroupLayout.detect()
        let mounts = try String(contentsOfFile: "/proc/self/mounts", encoding: .utf8)
        let unifiedControllers = (try? String(contentsOfFile: "/sys/fs/cgroup/unified/cgroup.controllers", encoding: .utf8)) ?? ""
        if mounts.contains(" /sys/fs/cgroup/memory cgroup ") && !unifiedControllers.contains("memory") {
            XCTAssertEqual(layout.version, .v1, "v1 controllers are mounted and the unified hierarchy has no memory controller")
        }
        for controller in CgroupLayout.requiredControllers {
            XCTAssertNotNil(layout.version == .v2 ? layout.bases["unified"] : layout.bases[controller], controller)
        }
        let manager = try CgroupManager(layout: layout)
        let group = try manager.makeGroup(
            name: "probe", limits: SandboxLimits(memoryMB: 64, timeoutSeconds: 1, procs: 7, cpuPercent: 50))
        for directory in group.directories.values { XCTAssertTrue(FileManager.default.fileExists(atPath: directory)) }
        if layout.version == .v1 {
            let memory = try String(contentsOfFile: group.directories["memory"]! + "/memory.limit_in_bytes", encoding: .utf8)
            XCTAssertEqual(Int(memory.trimmingCharacters(in: .whitespacesAndNewlines)), 64 << 20)
            let pids = try String(contentsOfFile: group.directories["pids"]! + "/pids.max", encoding: .utf8)
            XCTAssertEqual(pids.trimmingCharacters(in: .whitespacesAndNewlines), "7")
            let quota = try String(contentsOfFile: group.directories["cpu"]! + "/cpu.cfs_quota_us", encoding: .utf8)
            XCTAssertEqual(quota.trimmingCharacters(in: .whitespacesAndNewlines), "50000")
        }
        XCTAssertFalse(group.recordedOutOfMemoryKill())
        await manager.removeAll()
        for directory in manager.parents.values { XCTAssertFalse(FileManager.default.fileExists(atPath: directory), directory) }
    }

    func testRemovesStaleParentsOfDeadWorkers() throws {
        try requireRootAndPython()
        let layout = try CgroupLayout.detect()
        // A pid above pid_max cannot be alive.
        let stale = layout.bases.values.map { $0 + "/swiftlet-99999999-abc" }
        for directory in stale {
            try FileManager.default.createDirectory(atPath: directory + "/sandbox-1", withIntermediateDirectories: true)
        }
        let removed = CgroupManager.removeStale(layout: layout)
        for directory in stale {
            XCTAssertTrue(removed.contains(directory), directory)
            XCTAssertFalse(FileManager.default.fileExists(atPath: directory), directory)
        }
    }
}

final class SandboxIsolatedTests: XCTestCase {
    func testIsolationFromInside() async throws {
        try requireRootAndPython()
        let fixture = try SandboxFixture()
        defer { fixture.cleanUp() }
        let secretDirectory = fixture.base + "/secret"
        try FileManager.default.createDirectory(atPath: secretDirectory, withIntermediateDirectories: true)
        chmod(secretDirectory, 0o755)
        try "top secret".write(toFile: secretDirectory + "/secret.txt", atomically: true, encoding: .utf8)
        chmod(secretDirectory + "/secret.txt", 0o644)
        let listener = try LoopbackListener()

        let backend = try IsolatedBackend(workerDirectory: fixture.workerDirectory, extraReadOnlyPaths: [], logger: testLogger)
        XCTAssertTrue(backend.summary.hasPrefix("isolated: pid,mnt,uts,ipc,net namespaces"), backend.summary)
        let sandbox = try await backend.create(fixture.spec(id: "iso-1"))
        XCTAssertGreaterThan(sandbox.initMilliseconds, 0)
        XCTAssertGreaterThan(sandbox.pid, 1)

        var (status, body) = try await sandbox.run("import os\nresult = os.getpid()")
        XCTAssertEqual(status, 200)
        XCTAssertEqual(body, "1", "the runtime is PID 1 of a new PID namespace")

        (status, body) = try await sandbox.run("result = open('\(secretDirectory)/secret.txt').read()")
        XCTAssertEqual(status, 500, "a file planted outside the sandbox root must not be readable, got \(body)")
        XCTAssertTrue(body.contains("FileNotFoundError"), body)

        (status, body) = try await sandbox.run("open('/handler/new.txt', 'w').write('x')")
        XCTAssertEqual(status, 500)
        XCTAssertTrue(body.contains("Read-only file system") || body.contains("Permission denied"), body)
        XCTAssertFalse(FileManager.default.fileExists(atPath: fixture.codeDirectory + "/new.txt"))
        (status, body) = try await sandbox.run("result = open('/handler/f.py').read()")
        XCTAssertTrue(body.contains("def f(event)"), body)

        (status, body) = try await sandbox.run("open('/usr/evil', 'w')")
        XCTAssertEqual(status, 500, body)
        (status, body) = try await sandbox.run("open('/evil', 'w')")
        XCTAssertEqual(status, 500, body)

        (status, body) = try await sandbox.run(
            "import socket\ns = socket.socket()\ns.settimeout(2)\ns.connect(('127.0.0.1', \(listener.port)))\nresult = 'connected'")
        XCTAssertEqual(status, 500, "the host loopback must be unreachable, got \(body)")

        (status, body) = try await sandbox.run(
            "import os, socket\nopen('/scratch/a', 'w').write('s')\nopen('/tmp/b', 'w').write('t')\n"
                + "result = ' '.join([open('/scratch/a').read(), open('/tmp/b').read(), str(os.getuid()), str(os.getgid()), "
                + "socket.gethostname(), \(environmentNames), \(openDescriptors)])")
        XCTAssertEqual(status, 200, body)
        XCTAssertEqual(body, "s t 65534 65534 sandbox SANDBOX_TEST [0, 1, 2, 3]")

        (status, body) = try await sandbox.run("import os\nresult = len([p for p in os.listdir('/proc') if p.isdigit()])")
        XCTAssertEqual(body, "1", "only the runtime is visible in /proc")

        await sandbox.destroy()
        await backend.shutdown()
    }

    func testMemoryLimitKillsHogAsOutOfMemory() async throws {
        try requireRootAndPython()
        let fixture = try SandboxFixture()
        defer { fixture.cleanUp() }
        let backend = try IsolatedBackend(workerDirectory: fixture.workerDirectory, extraReadOnlyPaths: [], logger: testLogger)
        let sandbox = try await backend.create(
            fixture.spec(id: "hog", limits: SandboxLimits(memoryMB: 50, timeoutSeconds: 10, procs: 16, cpuPercent: 100)))
        do {
            _ = try await sandbox.run("data = b'x' * (200 << 20)\nresult = len(data)")
            XCTFail("allocating 200 MB under a 50 MB limit must kill the sandbox")
        } catch let error as SandboxError {
            XCTAssertEqual(error, .died(cause: "out of memory (limit 50 MB)"))
        }
        do {
            _ = try await sandbox.run("result = 1")
            XCTFail("a dead sandbox must not serve")
        } catch let error as SandboxError {
            guard case .died = error else { return XCTFail("\(error)") }
        }
        await sandbox.destroy()
        await backend.shutdown()
    }

    func testPidsLimitMakesForkFail() async throws {
        try requireRootAndPython()
        let fixture = try SandboxFixture()
        defer { fixture.cleanUp() }
        let backend = try IsolatedBackend(workerDirectory: fixture.workerDirectory, extraReadOnlyPaths: [], logger: testLogger)
        let sandbox = try await backend.create(
            fixture.spec(id: "forks", limits: SandboxLimits(memoryMB: 128, timeoutSeconds: 10, procs: 6, cpuPercent: 100)))
        let code = """
            import os, time
            count, failure = 0, 'none'
            for _ in range(40):
                try:
                    pid = os.fork()
                except OSError as error:
                    failure = type(error).__name__
                    break
                if pid == 0:
                    time.sleep(30)
                    os._exit(0)
                count += 1
            result = f'{count} {failure}'
            """
        let (status, body) = try await sandbox.run(code)
        XCTAssertEqual(status, 200, body)
        XCTAssertEqual(body, "5 BlockingIOError", "pids.max 6 leaves room for the runtime and five children")
        let pid = sandbox.pid
        await sandbox.destroy()
        XCTAssertTrue(processIsGone(pid))
        await backend.shutdown()
    }

    func testTimeoutKillsTheSandbox() async throws {
        try requireRootAndPython()
        let fixture = try SandboxFixture()
        defer { fixture.cleanUp() }
        let backend = try IsolatedBackend(workerDirectory: fixture.workerDirectory, extraReadOnlyPaths: [], logger: testLogger)
        let sandbox = try await backend.create(fixture.spec(id: "slow"))
        let started = ContinuousClock.now
        do {
            _ = try await sandbox.run("import time\ntime.sleep(20)", timeout: .milliseconds(300))
            XCTFail("must time out")
        } catch let error as SandboxError {
            XCTAssertEqual(error, .timedOut(seconds: 0.3))
        }
        XCTAssertLessThan(ContinuousClock.now - started, .seconds(5))
        XCTAssertEqual(kill(sandbox.pid, 0) == 0 ? (try? String(contentsOfFile: "/proc/\(sandbox.pid)/stat", encoding: .utf8))?.split(separator: " ")[2] : "Z", "Z",
                       "the runtime was killed (only its zombie is left until destroy)")
        await sandbox.destroy()
        XCTAssertTrue(processIsGone(sandbox.pid))
        await backend.shutdown()
    }

    func testPauseAndUnpause() async throws {
        try requireRootAndPython()
        let fixture = try SandboxFixture()
        defer { fixture.cleanUp() }
        let backend = try IsolatedBackend(workerDirectory: fixture.workerDirectory, extraReadOnlyPaths: [], logger: testLogger)
        guard backend.cgroups.layout.hasFreezer else { throw unavailable("no cgroup freezer") }
        let sandbox = try await backend.create(fixture.spec(id: "sleepy"))
        try await sandbox.pause()
        if backend.cgroups.layout.version == .v1 {
            let state = try String(contentsOfFile: backend.cgroups.parents["freezer"]! + "/sleepy/freezer.state", encoding: .utf8)
            XCTAssertEqual(state.trimmingCharacters(in: .whitespacesAndNewlines), "FROZEN")
        }
        let pending = Task { try await sandbox.run("result = 'awake'") }
        try await Task.sleep(for: .milliseconds(300))
        let procState = try String(contentsOfFile: "/proc/\(sandbox.pid)/stat", encoding: .utf8).split(separator: " ")[2]
        XCTAssertNotEqual(procState, "R", "a frozen runtime does not run")
        try await sandbox.unpause()
        let (status, body) = try await pending.value
        XCTAssertEqual(status, 200)
        XCTAssertEqual(body, "awake")
        await sandbox.destroy()
        await backend.shutdown()
    }

    func testDestroyAndShutdownLeaveNothingBehind() async throws {
        try requireRootAndPython()
        let fixture = try SandboxFixture()
        defer { fixture.cleanUp() }
        let backend = try IsolatedBackend(workerDirectory: fixture.workerDirectory, extraReadOnlyPaths: [], logger: testLogger)
        let first = try await backend.create(fixture.spec(id: "gone"))
        let second = try await backend.create(fixture.spec(id: "kept"))
        let (status, body) = try await first.run(
            "import os, time\nif os.fork() == 0:\n    time.sleep(30)\n    os._exit(0)\nresult = 'forked'")
        XCTAssertEqual(body, "forked")
        XCTAssertEqual(status, 200)
        let groupDirectories = backend.cgroups.parents.values.map { $0 + "/gone" }
        await first.destroy()
        await first.destroy()
        XCTAssertTrue(processIsGone(first.pid))
        for directory in groupDirectories { XCTAssertFalse(FileManager.default.fileExists(atPath: directory), directory) }
        XCTAssertFalse(FileManager.default.fileExists(atPath: fixture.workerDirectory + "/sandboxes/gone"))
        XCTAssertEqual(backend.liveCount, 1)

        await backend.shutdown()
        XCTAssertTrue(processIsGone(second.pid))
        for directory in backend.cgroups.parents.values { XCTAssertFalse(FileManager.default.fileExists(atPath: directory), directory) }
        XCTAssertFalse(FileManager.default.fileExists(atPath: fixture.workerDirectory + "/sandboxes"))
        let mountInfo = try String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)
        XCTAssertFalse(mountInfo.contains(fixture.workerDirectory), "no mount may appear in the host mount namespace")
    }

    func testDestroyOfPausedSandboxKillsItsWholeNamespaceAndRemovesScratchFiles() async throws {
        try requireRootAndPython()
        let fixture = try SandboxFixture()
        defer { fixture.cleanUp() }
        let backend = try IsolatedBackend(workerDirectory: fixture.workerDirectory, extraReadOnlyPaths: [], logger: testLogger)
        guard backend.cgroups.layout.hasFreezer else { throw unavailable("no cgroup freezer") }
        let sandbox = try await backend.create(fixture.spec(id: "frozen"))
        let (status, body) = try await sandbox.run("""
            import os, time
            open('/scratch/left-behind', 'w').write('x')
            for _ in range(3):
                if os.fork() == 0:
                    os.setsid()
                    time.sleep(60)
                    os._exit(0)
            result = 'forked'
            """)
        XCTAssertEqual(status, 200, body)
        let group = try XCTUnwrap(backend.cgroups.parents["pids"]) + "/frozen/cgroup.procs"
        let hostPids = try String(contentsOfFile: group, encoding: .utf8).split(separator: "\n").compactMap { Int32($0) }
        XCTAssertEqual(hostPids.count, 4, "the runtime and its three children")
        try await sandbox.pause()
        let started = ContinuousClock.now
        await sandbox.destroy()
        XCTAssertLessThan(ContinuousClock.now - started, .seconds(2), "a frozen sandbox is thawed and killed at once")
        for pid in hostPids { XCTAssertTrue(processIsGoneOrZombie(pid), "process \(pid) survived destroy") }
        XCTAssertTrue(processIsGone(sandbox.pid))
        for directory in backend.cgroups.parents.values {
            XCTAssertFalse(FileManager.default.fileExists(atPath: directory + "/frozen"), directory)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: fixture.workerDirectory + "/sandboxes/frozen"),
                       "a scratch directory with files in it is removed too")
        await backend.shutdown()
    }

    func testStartFailuresNameTheProblem() async throws {
        try requireRootAndPython()
        let fixture = try SandboxFixture()
        defer { fixture.cleanUp() }
        let backend = try IsolatedBackend(workerDirectory: fixture.workerDirectory, extraReadOnlyPaths: [], logger: testLogger)
        var spec = fixture.spec(id: "broken")
        spec.runtime.executable = "/opt/missing/python3"
        do {
            _ = try await backend.create(spec)
            XCTFail("must not start")
        } catch let error as SandboxError {
            guard case .startFailed(let why) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(why.contains("/opt/missing/python3"), why)
        }
        spec = fixture.spec(id: "crashes")
        spec.runtime.arguments = ["-c", "import sys; print('boom at import'); sys.exit(3)"]
        do {
            _ = try await backend.create(spec)
            XCTFail("must not start")
        } catch let error as SandboxError {
            guard case .startFailed(let why) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(why.contains("exited with status 3"), why)
            XCTAssertTrue(why.contains("boom at import"), why)
        }
        spec = fixture.spec(id: "../escape")
        do {
            _ = try await backend.create(spec)
            XCTFail("must refuse the id")
        } catch let error as SandboxError {
            XCTAssertTrue("\(error)".contains("invalid sandbox id"), "\(error)")
        }
        XCTAssertEqual(backend.liveCount, 0)
        await backend.shutdown()
        for directory in backend.cgroups.parents.values { XCTAssertFalse(FileManager.default.fileExists(atPath: directory)) }
    }

    func testColdStartTimes() async throws {
        try requireRootAndPython()
        let fixture = try SandboxFixture()
        defer { fixture.cleanUp() }
        let isolated = try IsolatedBackend(workerDirectory: fixture.workerDirectory, extraReadOnlyPaths: [], logger: testLogger)
        var isolatedTimes: [Double] = []
        for index in 0..<21 {
            let sandbox = try await isolated.create(fixture.spec(id: "cold-\(index)"))
            isolatedTimes.append(sandbox.initMilliseconds)
            await sandbox.destroy()
        }
        await isolated.shutdown()
        let process = try ProcessBackend(workerDirectory: fixture.workerDirectory)
        var processTimes: [Double] = []
        for index in 0..<21 {
            let sandbox = try await process.create(fixture.spec(id: "cold-\(index)"))
            processTimes.append(sandbox.initMilliseconds)
            await sandbox.destroy()
        }
        await process.shutdown()
        print(String(format: "cold start create→ready, median of 21: isolated %.1f ms (min %.1f), process %.1f ms (min %.1f)",
                     median(isolatedTimes), isolatedTimes.min()!, median(processTimes), processTimes.min()!))
        XCTAssertLessThan(median(isolatedTimes), 500, "isolated cold start is far slower than expected")
    }
}

final class SandboxProcessTests: XCTestCase {
    func testFactoryModes() async throws {
        let fixture = try SandboxFixture()
        defer { fixture.cleanUp() }
        XCTAssertThrowsError(
            try SandboxBackends.make(mode: "jail", workerDirectory: fixture.workerDirectory, extraReadOnlyPaths: [], logger: testLogger)
        ) { error in
            XCTAssertEqual("\(error)", "unknown sandbox mode \"jail\" (expected auto, isolated or process)")
        }
        let process = try SandboxBackends.make(
            mode: "process", workerDirectory: fixture.workerDirectory, extraReadOnlyPaths: [], logger: testLogger)
        XCTAssertEqual(process.kind, .process)
        let auto = try SandboxBackends.make(
            mode: "auto", workerDirectory: fixture.workerDirectory, extraReadOnlyPaths: [], logger: testLogger)
        XCTAssertEqual(auto.kind, geteuid() == 0 ? .isolated : .process)
        if geteuid() != 0 {
            XCTAssertThrowsError(try SandboxBackends.make(
                mode: "isolated", workerDirectory: fixture.workerDirectory, extraReadOnlyPaths: [], logger: testLogger)
            ) { error in XCTAssertTrue("\(error)".contains("need root"), "\(error)") }
        } else {
            XCTAssertThrowsError(try SandboxBackends.make(
                mode: "isolated", workerDirectory: fixture.workerDirectory, extraReadOnlyPaths: ["/no/such/path"], logger: testLogger)
            ) { error in XCTAssertTrue("\(error)".contains("/no/such/path"), "\(error)") }
        }
        await auto.shutdown()
        await process.shutdown()
    }

    func testStartsAndInvokes() async throws {
        try requirePython()
        let fixture = try SandboxFixture()
        defer { fixture.cleanUp() }
        let listener = try LoopbackListener()
        let backend = try ProcessBackend(workerDirectory: fixture.workerDirectory)
        XCTAssertEqual(backend.kind, .process)
        XCTAssertTrue(backend.summary.contains("REDUCED ISOLATION"))
        let sandbox = try await backend.create(fixture.spec(id: "plain"))
        XCTAssertGreaterThan(sandbox.initMilliseconds, 0)
        var (status, body) = try await sandbox.run("import os\nresult = os.getpid()")
        XCTAssertEqual(status, 200)
        XCTAssertEqual(body, String(sandbox.pid))
        (status, body) = try await sandbox.run(
            "import os\nresult = ' '.join([\(environmentNames), os.getcwd(), \(openDescriptors)])")
        XCTAssertEqual(body, "SANDBOX_TEST \(fixture.codeDirectory) [0, 1, 2, 3]")
        // Reduced isolation: the host loopback is reachable (the isolated test asserts the opposite).
        (status, body) = try await sandbox.run(
            "import socket\ns = socket.socket()\ns.settimeout(2)\ns.connect(('127.0.0.1', \(listener.port)))\nresult = 'connected'")
        XCTAssertEqual(body, "connected")
        (status, body) = try await sandbox.run(
            "import os, time\npid = os.fork()\nif pid == 0:\n    time.sleep(30)\n    os._exit(0)\nresult = pid")
        let grandchild = try XCTUnwrap(Int32(body), body)

        do {
            _ = try await sandbox.run("import time\ntime.sleep(20)", timeout: .milliseconds(200))
            XCTFail("must time out")
        } catch let error as SandboxError {
            XCTAssertEqual(error, .timedOut(seconds: 0.2))
        }
        do {
            try await sandbox.pause()
            XCTFail("a killed sandbox cannot be paused")
        } catch let error as SandboxError {
            guard case .died = error else { return XCTFail("\(error)") }
        }
        let pid = sandbox.pid
        await sandbox.destroy()
        XCTAssertTrue(processIsGone(pid))
        XCTAssertTrue(processIsGoneOrZombie(grandchild), "the runtime's children die with it (process group)")
        await backend.shutdown()
        XCTAssertFalse(FileManager.default.fileExists(atPath: fixture.workerDirectory + "/sandboxes"))
    }
}
