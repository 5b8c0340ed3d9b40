import ArgumentParser
import Foundation
import Platform

struct InvokeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "invoke", abstract: "Invoke a lambda and print its response body.")
    @Argument(help: "Lambda name.") var name: String
    @Argument(help: "JSON body (default: empty, which the Python contract turns into {}).") var json: String?
    @Option(name: .long, help: "Worker URL.") var url: String = "http://127.0.0.1:5000"
    @Option(name: [.short, .long], help: "HTTP method.") var method: String = "POST"
    @Flag(name: [.short, .long], help: "Print the status line and headers to stderr.") var verbose = false

    func run() async throws {
        let body = Array((json ?? "").utf8)
        let target = url.trimmingCharacters(in: CharacterSet(charactersIn: "/")) + "/run/" + name
        let response = try SimpleHTTPClient.request(
            method.uppercased(), target, headers: body.isEmpty ? [] : [("Content-Type", "application/json")], body: body)
        if verbose {
            FileHandle.standardError.write(Data("HTTP \(response.status)\n".utf8))
            for (k, v) in response.headers { FileHandle.standardError.write(Data("\(k): \(v)\n".utf8)) }
        }
        FileHandle.standardOutput.write(Data(response.body))
        if response.body.last != 10 { print() }
        if response.status >= 400 { throw ExitCode(response.status >= 500 ? 2 : 1) }
    }
}
