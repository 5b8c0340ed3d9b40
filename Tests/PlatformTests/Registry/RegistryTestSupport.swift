import Foundation
import Platform
import XCTest

/// A fresh temporary registry directory, removed by the test's teardown.
func makeTemporaryRegistryDirectory(_ test: XCTestCase) throws -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("swiftlet-registry-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    test.addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
    return path
}

/// Every path below `root` (recursive, sorted), with file contents, to prove a directory was left unchanged.
func snapshot(_ root: String) -> [String] {
    var result: [String] = []
    guard let enumerator = FileManager.default.enumerator(atPath: root) else { return result }
    while let relative = enumerator.nextObject() as? String {
        let contents = FileManager.default.contents(atPath: root + "/" + relative).map { String(decoding: $0, as: UTF8.self) } ?? "<dir>"
        result.append("\(relative)=\(contents)")
    }
    return result.sorted()
}

func write(_ text: String, to path: String) throws {
    try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
    try Data(text.utf8).write(to: URL(fileURLWithPath: path))
}

func tarGz(_ build: (inout TarWriter) -> Void) -> [UInt8] {
    var writer = TarWriter()
    build(&writer)
    return Gzip.compress(writer.finished())
}

let helloCode = "def f(event):\n    return {'hello': event}\n"
