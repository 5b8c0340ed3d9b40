import ArgumentParser
import Foundation
import Platform

struct AdminCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "admin", abstract: "Manage a worker's registry.", subcommands: [Install.self])

    struct Install: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Upload a lambda directory (f.py, optional ol.yaml) to a worker's registry.")
        @Argument(help: "Directory holding f.py.") var directory: String
        @Option(name: .long, help: "Lambda name (default: the directory's name).") var name: String?
        @Option(name: .long, help: "Worker URL.") var url: String = "http://127.0.0.1:5000"

        func run() async throws {
            let lambda = name ?? URL(fileURLWithPath: directory).standardizedFileURL.lastPathComponent
            let archive = try LambdaArchive.make(directory: directory)
            let target = url.trimmingCharacters(in: CharacterSet(charactersIn: "/")) + "/registry/" + lambda
            let response = try SimpleHTTPClient.request(
                "POST", target, headers: [("Content-Type", "application/gzip")], body: archive)
            guard response.status < 300 else {
                FileHandle.standardError.write(Data("install failed (HTTP \(response.status)): \(response.text)\n".utf8))
                throw ExitCode(1)
            }
            print("installed \(lambda) (\(archive.count) bytes)")
        }
    }
}
