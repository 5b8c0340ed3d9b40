import ArgumentParser
import Dispatch
import Foundation
import NIOCore
import NIOPosix
import Platform

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

@main
enum SwiftletMain {
    static func main() {
        // Servers and the load generator run Swift concurrency on NIO's event loops: a request then no longer hops
        // between the I/O threads and the cooperative pool. The in-sandbox app host keeps the default executor
        // (it does blocking reads on its socket).
        if CommandLine.arguments.dropFirst().first != "__runtime" {
            _ = NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
        }
        Task {
            await Swiftlet.main()
            exit(0)
        }
        dispatchMain()
    }
}
