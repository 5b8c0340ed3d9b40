import Foundation
import Platform
import XCTest

final class RegistryInstallTests: XCTestCase {
    func testInstallLookupListRemove() throws {
        let directory = try makeTemporaryRegistryDirectory(self)
        let registry = try Registry(directory: directory, cacheMilliseconds: 5000, builtins: ["noop", "echo"])
        try registry.install(name: "hello", archive: tarGz {
            $0.addFile("f.py", contents: Array(helloCode.utf8))
            $0.addFile("ol.yaml", contents: Array("triggers:\n  http:\n    - method: POST\n".utf8))
            $0.addFile("lib/util.py", contents: Array("X = 1\n".utf8))
            $0.addFile("run.sh", contents: Array("#!/bin/sh\n".utf8), mode: 0o755)
            $0.addSymlink("util.py", target: "lib/util.py")
        })
        XCTAssertEqual(try String(contentsOfFile: directory + "/hello/f.py", encoding: .utf8), helloCode)
        XCTAssertEqual(try String(contentsOfFile: directory + "/hello/util.py", encoding: .utf8), "X = 1\n")
        XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: directory + "/hello/util.py"), "lib/util.py")
        XCTAssertTrue(FileManager.default.isExecutableFile(atPath: directory + "/hello/run.sh"))
        XCTAssertFalse(FileManager.default.isExecutableFile(atPath: directory + "/hello/f.py"))

        let source = try XCTUnwrap(try registry.lookup("hello"))
        XCTAssertEqual(source.kind, .python(directory: directory + "/hello"))
        XCTAssertEqual(source.config.httpMethods, ["POST"])
        XCTAssertEqual(try registry.config(of: "hello").httpMethods, ["POST"])
        XCTAssertEqual(try registry.lookup("echo")?.kind, .builtin(app: "echo"))
        XCTAssertNil(try registry.lookup("missing"))
        XCTAssertThrowsError(try registry.lookup("a/b")) { XCTAssertEqual(($0 as? RegistryError).map { "\($0)" }?.hasPrefix("invalid lambda name"), true) }
        XCTAssertThrowsError(try registry.config(of: "missing")) { XCTAssertEqual($0 as? RegistryError, .notFound("missing")) }
        XCTAssertEqual(registry.list(), [
            RegistryEntry(name: "echo", kind: "swift"), RegistryEntry(name: "hello", kind: "python"), RegistryEntry(name: "noop", kind: "swift"),
        ])

        try registry.remove(name: "hello")
        XCTAssertNil(try registry.lookup("hello"), "remove must invalidate the cache")
        XCTAssertFalse(FileManager.default.fileExists(atPath: directory + "/hello"))
        XCTAssertThrowsError(try registry.remove(name: "hello")) { XCTAssertEqual($0 as? RegistryError, .notFound("hello")) }
        XCTAssertThrowsError(try registry.remove(name: "echo")) { XCTAssertEqual($0 as? RegistryError, .builtin("echo")) }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory), [])
    }

    func testTopLevelDirectoryIsStripped() throws {
        let directory = try makeTemporaryRegistryDirectory(self)
        let registry = try Registry(directory: directory, cacheMilliseconds: 0, builtins: [])
        try registry.install(name: "wrapped", archive: tarGz {
            $0.addDirectory("./project")
            $0.addFile("./project/f.py", contents: Array(helloCode.utf8))
            $0.addFile("project/data/x.txt", contents: Array("x".utf8))
            $0.addHardLink("project/copy.py", target: "project/f.py")
        })
        XCTAssertEqual(snapshot(directory + "/wrapped"), ["copy.py=\(helloCode)", "data=<dir>", "data/x.txt=x", "f.py=\(helloCode)"].sorted())
    }

    func testGnuLongNamesAndPaxHeaders() throws {
        let directory = try makeTemporaryRegistryDirectory(self)
        let registry = try Registry(directory: directory, cacheMilliseconds: 0, builtins: [])
        let longName = "deep/" + String(repeating: "n", count: 150) + ".py"
        var writer = TarWriter()
        writer.addFile("f.py", contents: Array(helloCode.utf8))
        writer.addEntry(path: "././@LongLink", type: .gnuLongName, contents: Array(longName.utf8) + [0])
        writer.addFile(String(longName.prefix(100)), contents: Array("gnu".utf8))
        writer.addEntry(path: "pax_global_header", type: .paxGlobal, contents: TarWriter.paxData([("comment", "made by a test")]))
        writer.addEntry(path: "PaxHeaders/x", type: .paxExtended, contents: TarWriter.paxData([("path", "pax/renamed.txt")]))
        writer.addFile("short-name-overridden", contents: Array("pax".utf8))
        writer.addFile("other/" + String(repeating: "p", count: 120), contents: Array("auto".utf8))  // writer emits pax
        try registry.install(name: "long", archive: Gzip.compress(writer.finished()))
        XCTAssertEqual(try String(contentsOfFile: directory + "/long/" + longName, encoding: .utf8), "gnu")
        XCTAssertEqual(try String(contentsOfFile: directory + "/long/pax/renamed.txt", encoding: .utf8), "pax")
        XCTAssertEqual(try String(contentsOfFile: directory + "/long/other/" + String(repeating: "p", count: 120), encoding: .utf8), "auto")
        XCTAssertFalse(FileManager.default.fileExists(atPath: directory + "/long/short-name-overridden"))
    }

    func testPaxPathCannotSmuggleDotDot() throws {
        let directory = try makeTemporaryRegistryDirectory(self)
        let registry = try Registry(directory: directory, cacheMilliseconds: 0, builtins: [])
        var writer = TarWriter()
        writer.addFile("f.py", contents: [1])
        writer.addEntry(path: "PaxHeaders/x", type: .paxExtended, contents: TarWriter.paxData([("path", "../../escape")]))
        writer.addFile("innocent", contents: [1])
        XCTAssertThrowsError(try registry.install(name: "x", archive: Gzip.compress(writer.finished()))) { error in
            XCTAssertEqual(error as? RegistryError, .unsafeArchive(entry: "../../escape", reason: "path contains a \"..\" component"))
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory), [])
    }

    func testReinstallReplacesTheOldVersion() throws {
        let directory = try makeTemporaryRegistryDirectory(self)
        let registry = try Registry(directory: directory, cacheMilliseconds: 60_000, builtins: [])
        try registry.install(name: "app", archive: tarGz { $0.addFile("f.py", contents: Array("v1".utf8)); $0.addFile("old.txt", contents: [1]) })
        let v1 = try XCTUnwrap(try registry.lookup("app")).version
        try registry.install(name: "app", archive: tarGz { $0.addFile("f.py", contents: Array("v2".utf8)) })
        XCTAssertEqual(snapshot(directory + "/app"), ["f.py=v2"])
        let v2 = try XCTUnwrap(try registry.lookup("app")).version
        XCTAssertNotEqual(v1, v2, "install must invalidate the cache even with a long cache time")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory), ["app"])
    }

    func testInvalidOlYamlOrRequirementsRefuseTheUpload() throws {
        let directory = try makeTemporaryRegistryDirectory(self)
        let registry = try Registry(directory: directory, cacheMilliseconds: 0, builtins: [])
        let root = URL(fileURLWithPath: directory).lastPathComponent
        XCTAssertThrowsError(try registry.install(name: "bad", archive: tarGz {
            $0.addFile("f.py", contents: [1]); $0.addFile("ol.yaml", contents: Array("limits:\n  memory_mb: x\n".utf8))
        })) { error in
            XCTAssertEqual(error as? RegistryError, .invalidLambda(name: "bad", message: "\(root)/bad/ol.yaml:2: limits.memory_mb: expected a whole number"))
        }
        XCTAssertThrowsError(try registry.install(name: "bad", archive: tarGz {
            $0.addFile("f.py", contents: [1]); $0.addFile("requirements.txt", contents: Array("requests==2.0\n".utf8))
        })) { error in
            XCTAssertEqual(error as? RegistryError, .invalidLambda(name: "bad", message: "requirements.txt lists packages, but package installation is not supported yet; remove it or leave it empty"))
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory), [])
        // Comments and blank lines list no packages.
        try registry.install(name: "ok", archive: tarGz {
            $0.addFile("f.py", contents: [1]); $0.addFile("requirements.txt", contents: Array("# none yet\n\n".utf8))
        })
        XCTAssertNotNil(try registry.lookup("ok"))
    }

    func testBrokenFolderLambdasAreReportedOnLookup() throws {
        let directory = try makeTemporaryRegistryDirectory(self)
        let registry = try Registry(directory: directory, cacheMilliseconds: 0, builtins: [])
        try FileManager.default.createDirectory(atPath: directory + "/nocode", withIntermediateDirectories: true)
        XCTAssertThrowsError(try registry.lookup("nocode")) { error in
            guard case .invalidLambda("nocode", let message)? = error as? RegistryError else { return XCTFail("\(error)") }
            XCTAssertTrue(message.contains("f.py is missing"), message)
        }
        try write(helloCode, to: directory + "/needs/f.py")
        try write("numpy\n", to: directory + "/needs/requirements.txt")
        XCTAssertThrowsError(try registry.lookup("needs")) { error in
            guard case .invalidLambda("needs", let message)? = error as? RegistryError else { return XCTFail("\(error)") }
            XCTAssertTrue(message.hasPrefix("requirements.txt lists packages"), message)
        }
        try write("", to: directory + "/needs/requirements.txt")
        XCTAssertNotNil(try registry.lookup("needs"))
        try write("reuse-sandbox: sometimes\n", to: directory + "/needs/ol.yaml")
        XCTAssertThrowsError(try registry.config(of: "needs")) { error in
            XCTAssertEqual("\(error)", "lambda \"needs\" is invalid: \(URL(fileURLWithPath: directory).lastPathComponent)/needs/ol.yaml:1: reuse-sandbox: expected true or false")
        }
    }

    func testLookupCachingAndPickUpOfChangedCode() throws {
        let directory = try makeTemporaryRegistryDirectory(self)
        let registry = try Registry(directory: directory, cacheMilliseconds: 300, builtins: [])
        try write("def f(e): return 1\n", to: directory + "/hot/f.py")
        let first = try XCTUnwrap(try registry.lookup("hot"))
        try write("def f(e): return 2\n", to: directory + "/hot/f.py")
        try write("reuse-sandbox: false\n", to: directory + "/hot/ol.yaml")
        let cached = try XCTUnwrap(try registry.lookup("hot"))
        XCTAssertEqual(cached, first, "within the cache time the old result is served")
        Thread.sleep(forTimeInterval: 0.4)
        let fresh = try XCTUnwrap(try registry.lookup("hot"))
        XCTAssertNotEqual(fresh.version, first.version)
        XCTAssertFalse(fresh.config.reuseSandbox)

        // Any change of f.py content changes the version, even at the same size.
        let uncached = try Registry(directory: directory, cacheMilliseconds: 0, builtins: [])
        let before = try XCTUnwrap(try uncached.lookup("hot")).version
        XCTAssertEqual(try uncached.lookup("hot")?.version, before, "unchanged code keeps its version")
        try write("def f(e): return 3\n", to: directory + "/hot/f.py")
        XCTAssertNotEqual(try uncached.lookup("hot")?.version, before)
        XCTAssertEqual(before.count, 16)
    }

    func testArchiveRoundTrip() throws {
        let source = try makeTemporaryRegistryDirectory(self)
        try write(helloCode, to: source + "/f.py")
        try write("environment: {A: b}\n", to: source + "/ol.yaml")
        try write("nested", to: source + "/pkg/sub/mod.py")
        try write("cache", to: source + "/__pycache__/f.cpython.pyc")
        try FileManager.default.createSymbolicLink(atPath: source + "/mod.py", withDestinationPath: "pkg/sub/mod.py")
        let archive = try LambdaArchive.make(directory: source)

        let directory = try makeTemporaryRegistryDirectory(self)
        let registry = try Registry(directory: directory, cacheMilliseconds: 0, builtins: [])
        try registry.install(name: "round", archive: archive)
        XCTAssertEqual(snapshot(directory + "/round"), [
            "f.py=\(helloCode)", "mod.py=nested", "ol.yaml=environment: {A: b}\n", "pkg=<dir>", "pkg/sub=<dir>", "pkg/sub/mod.py=nested",
        ].sorted())
        XCTAssertEqual(try registry.config(of: "round").environment, ["A": "b"])
    }

    func testArchiveMakeRefusesLinksOutAndMissingCode() throws {
        let source = try makeTemporaryRegistryDirectory(self)
        XCTAssertThrowsError(try LambdaArchive.make(directory: source)) { XCTAssertTrue("\($0)".contains("has no f.py"), "\($0)") }
        try write(helloCode, to: source + "/f.py")
        try FileManager.default.createSymbolicLink(atPath: source + "/passwd", withDestinationPath: "/etc/passwd")
        XCTAssertThrowsError(try LambdaArchive.make(directory: source)) { XCTAssertTrue("\($0)".contains("absolute path"), "\($0)") }
        try FileManager.default.removeItem(atPath: source + "/passwd")
        try FileManager.default.createSymbolicLink(atPath: source + "/up", withDestinationPath: "../..")
        XCTAssertThrowsError(try LambdaArchive.make(directory: source)) { XCTAssertTrue("\($0)".contains("points outside"), "\($0)") }
        XCTAssertThrowsError(try LambdaArchive.make(directory: source + "/nope")) { XCTAssertTrue("\($0)".contains("not a directory"), "\($0)") }
    }

    func testLeftoversOfInterruptedInstallsAreCleanedAtStart() throws {
        let directory = try makeTemporaryRegistryDirectory(self)
        try write("x", to: directory + "/.~staging-app-123/f.py")
        try write(helloCode, to: directory + "/app/f.py")
        let registry = try Registry(directory: directory, cacheMilliseconds: 0, builtins: [])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory), ["app"])
        XCTAssertEqual(registry.list(), [RegistryEntry(name: "app", kind: "python")])
    }

    func testRegistryPathThatIsAFileIsRefused() throws {
        let directory = try makeTemporaryRegistryDirectory(self)
        try write("x", to: directory + "/file")
        XCTAssertThrowsError(try Registry(directory: directory + "/file", cacheMilliseconds: 0, builtins: [])) {
            XCTAssertTrue("\($0)".contains("not a directory"), "\($0)")
        }
        _ = try Registry(directory: directory + "/created/registry", cacheMilliseconds: 0, builtins: [])
        XCTAssertTrue(FileManager.default.fileExists(atPath: directory + "/created/registry"))
    }
}
