import Foundation
import Platform
import XCTest

/// Malicious or broken uploads are refused, and the registry directory is left exactly as it was.
final class RegistryArchiveSafetyTests: XCTestCase {
    var directory = ""
    var registry: Registry!

    override func setUpWithError() throws {
        directory = try makeTemporaryRegistryDirectory(self)
        registry = try Registry(directory: directory, cacheMilliseconds: 0, builtins: ["echo"])
        // An existing lambda that a refused upload must not disturb.
        try registry.install(name: "hello", archive: tarGz { $0.addFile("f.py", contents: Array(helloCode.utf8)) })
    }

    /// Installs `archive` as "hello" and as "fresh"; both must fail with an error whose description contains `expected`.
    func assertRefused(_ archive: [UInt8], _ expected: String, file: StaticString = #filePath, line: UInt = #line) {
        let before = snapshot(directory)
        for name in ["hello", "fresh"] {
            do {
                try registry.install(name: name, archive: archive)
                XCTFail("archive was installed as \(name)", file: file, line: line)
            } catch {
                XCTAssertTrue("\(error)".contains(expected), "\(error)", file: file, line: line)
            }
            XCTAssertEqual(snapshot(directory), before, "registry changed after a refused upload", file: file, line: line)
        }
        XCTAssertEqual(try registry.lookup("hello")?.name, "hello", file: file, line: line)
        XCTAssertNil(try registry.lookup("fresh"), file: file, line: line)
    }

    func testAbsolutePath() {
        assertRefused(tarGz { $0.addFile("f.py", contents: [1]); $0.addFile("/tmp/evil", contents: [1]) }, "absolute")
    }

    func testDotDotPaths() {
        assertRefused(tarGz { $0.addFile("f.py", contents: [1]); $0.addFile("../x", contents: [1]) }, "\"..\"")
        assertRefused(tarGz { $0.addFile("f.py", contents: [1]); $0.addFile("a/../../x", contents: [1]) }, "\"..\"")
        assertRefused(tarGz { $0.addFile("f.py", contents: [1]); $0.addDirectory("a/..") }, "\"..\"")
    }

    func testSymlinkToAbsolutePath() {
        assertRefused(tarGz { $0.addFile("f.py", contents: [1]); $0.addSymlink("passwd", target: "/etc/passwd") }, "is absolute")
    }

    func testSymlinksLeavingTheLambda() {
        assertRefused(tarGz { $0.addFile("f.py", contents: [1]); $0.addSymlink("x", target: "../../x") }, "points outside the lambda")
        assertRefused(tarGz { $0.addFile("f.py", contents: [1]); $0.addSymlink("sub/x", target: "../../etc") }, "points outside the lambda")
        // Chained: "up" stays inside on its own, but "up/.." leaves.
        assertRefused(tarGz {
            $0.addFile("f.py", contents: [1])
            $0.addDirectory("d")
            $0.addSymlink("d/up", target: "..")
            $0.addSymlink("escape", target: "d/up/..")
        }, "points outside the lambda")
        assertRefused(tarGz { $0.addFile("f.py", contents: [1]); $0.addSymlink("a", target: "b"); $0.addSymlink("b", target: "a") }, "loop")
    }

    func testWritingThroughASymlinkIsRefused() {
        assertRefused(tarGz {
            $0.addFile("f.py", contents: [1])
            $0.addSymlink("lib", target: "f.py")
            $0.addFile("lib/evil", contents: [1])
        }, "goes through the symlink")
    }

    func testHardLinksOutside() {
        assertRefused(tarGz { $0.addFile("f.py", contents: [1]); $0.addHardLink("h", target: "/etc/passwd") }, "absolute")
        assertRefused(tarGz { $0.addFile("f.py", contents: [1]); $0.addHardLink("h", target: "../outside") }, "\"..\"")
        assertRefused(tarGz { $0.addFile("f.py", contents: [1]); $0.addHardLink("h", target: "missing") }, "not a regular file earlier")
    }

    func testDevicesAndFifos() {
        assertRefused(tarGz { $0.addFile("f.py", contents: [1]); $0.addEntry(path: "null", type: .characterDevice) }, "character device")
        assertRefused(tarGz { $0.addFile("f.py", contents: [1]); $0.addEntry(path: "sda", type: .blockDevice) }, "block device")
        assertRefused(tarGz { $0.addFile("f.py", contents: [1]); $0.addEntry(path: "pipe", type: .fifo) }, "FIFO")
    }

    func testGzipBombBeyondTheCap() {
        let size = Registry.maxUncompressedBytes + 1024 * 1024
        let compressor = GzipCompressor(level: 1)
        compressor.write(TarWriter.header(path: "f.py", type: .file, size: size))
        let zeros = [UInt8](repeating: 0, count: 4 * 1024 * 1024)
        var remaining = size
        while remaining > 0 {
            let n = min(remaining, zeros.count)
            compressor.write(n == zeros.count ? zeros : Array(zeros[0..<n]))
            remaining -= n
        }
        let bomb = compressor.finish()
        XCTAssertLessThan(bomb.count, 2 * 1024 * 1024)
        assertRefused(bomb, "exceeds the limit of 256 MB")
    }

    func testTruncatedGzip() {
        let good = tarGz { $0.addFile("f.py", contents: Array(helloCode.utf8)); $0.addFile("data", contents: (0..<5000).map { UInt8($0 % 251) }) }
        assertRefused(Array(good.prefix(good.count / 2)), "truncated gzip")
    }

    func testCorruptGzip() {
        var bytes = tarGz { $0.addFile("f.py", contents: Array(helloCode.utf8)) }
        for i in 12..<min(40, bytes.count - 8) { bytes[i] ^= 0x5a }
        assertRefused(bytes, "gzip")
    }

    func testNotGzip() {
        var plainTar = TarWriter()
        plainTar.addFile("f.py", contents: Array(helloCode.utf8))
        assertRefused(plainTar.finished(), "not gzip")
        assertRefused(Array("hello world".utf8), "not gzip")
        assertRefused([], "not gzip")
    }

    func testGzipOfNonTarData() {
        assertRefused(Gzip.compress([UInt8](repeating: 0x41, count: 2000)), "checksum")
    }

    func testTruncatedTarInsideValidGzip() {
        var writer = TarWriter()
        writer.addFile("f.py", contents: [UInt8](repeating: 0x61, count: 4000))
        assertRefused(Gzip.compress(Array(writer.bytes.prefix(1500))), "truncated")
    }

    func testMissingFpyIsRefused() {
        assertRefused(tarGz { $0.addFile("main.py", contents: [1]) }, "no f.py")
    }

    func testBuiltinNameIsRefused() {
        let before = snapshot(directory)
        XCTAssertThrowsError(try registry.install(name: "echo", archive: tarGz { $0.addFile("f.py", contents: [1]) })) { error in
            XCTAssertEqual(error as? RegistryError, .builtin("echo"))
        }
        XCTAssertEqual(snapshot(directory), before)
    }

    func testNoStagingLeftoversAfterRefusals() throws {
        testDotDotPaths()
        testTruncatedGzip()
        let names = try FileManager.default.contentsOfDirectory(atPath: directory)
        XCTAssertEqual(names, ["hello"])
    }
}
