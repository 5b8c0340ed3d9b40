import ArgumentParser
import Platform

@main
struct Swiftlet: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "swiftlet",
        abstract: "A serverless research platform: a worker that runs lambdas in sandboxes, and the harness that measures it.",
        version: swiftletVersion,
        subcommands: [
            WorkerCommand.self, InvokeCommand.self, AdminCommand.self, BenchCommand.self, BaselineServerCommand.self,
            RuntimeHostCommand.self,
        ])
}
