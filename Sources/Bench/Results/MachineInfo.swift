import Foundation
import Platform

/// The environment a run records so two runs can be compared honestly.
public struct MachineInfo: Sendable, Equatable {
    public var cpuModel: String
    public var cores: Int
    public var memoryBytes: Int64
    public var kernel: String
    public var gitRevision: String
    public var swiftletVersion: String

    /// The version recorded with every run.
    public static let swiftletVersion = Platform.swiftletVersion

    public static func current(gitDirectory: String = FileManager.default.currentDirectoryPath) -> MachineInfo {
        MachineInfo(
            cpuModel: cpuModelName(), cores: ProcessInfo.processInfo.activeProcessorCount,
            memoryBytes: Int64(ProcessInfo.processInfo.physicalMemory), kernel: kernelDescription(),
            gitRevision: gitRevision(in: gitDirectory), swiftletVersion: swiftletVersion)
    }

    static func cpuModelName() -> String {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return "unknown" }
        for line in text.split(separator: "\n") where line.hasPrefix("model name") {
            if let colon = line.firstIndex(of: ":") {
                return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
        }
        return "unknown"
    }

    static func kernelDescription() -> String {
        var name = utsname()
        guard uname(&name) == 0 else { return "unknown" }
        func field<T>(_ value: T) -> String {
            withUnsafeBytes(of: value) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
        }
        return "\(field(name.sysname)) \(field(name.release)) \(field(name.machine))"
    }

    /// `git rev-parse HEAD` (with a `+dirty` suffix when the tree has changes), or "unknown".
    static func gitRevision(in directory: String) -> String {
        guard let head = runGit(["rev-parse", "HEAD"], in: directory), !head.isEmpty else { return "unknown" }
        let status = runGit(["status", "--porcelain", "--untracked-files=no"], in: directory) ?? ""
        return status.isEmpty ? head : head + "+dirty"
    }

    static func runGit(_ arguments: [String], in directory: String) -> String? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["git", "-C", directory] + arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        do { try process.run() } catch { return nil }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { return nil }
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
