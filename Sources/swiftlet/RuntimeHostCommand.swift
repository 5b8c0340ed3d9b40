import ArgumentParser
import Apps
import Foundation
import Platform

/// The hidden runtime mode: the worker re-executes this binary inside a sandbox to host one built-in app.
struct RuntimeHostCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "__runtime", abstract: "Host a built-in Swift app inside a sandbox (used by the worker).",
        shouldDisplay: false)
    @Option(name: .long) var app: String
    @Option(name: .long) var fd: Int32 = 3

    func run() async throws {
        guard let type = BuiltinApps.named(app) else {
            FileHandle.standardError.write(Data("unknown built-in app \(app)\n".utf8))
            throw ExitCode(2)
        }
        let code = await SwiftRuntimeHost.serve(app: type.init(), fd: fd)
        throw ExitCode(code)
    }
}
