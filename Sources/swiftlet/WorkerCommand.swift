import ArgumentParser
import Apps
import Foundation
import Logging
import Platform

struct WorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker", abstract: "Start, inspect and stop a worker.",
        subcommands: [Up.self, Status.self, Down.self])

    struct DirectoryOption: ParsableArguments {
        @Option(name: .long, help: "Worker directory (config.json, registry/, logs/).")
        var dir: String = "swiftlet-worker"
    }

    struct Up: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Serve lambdas; creates the directory with a default config.json on first use.")
        @OptionGroup var directory: DirectoryOption
        @Option(name: .long, help: "TCP port (overrides config.json; 0 picks a free port).") var port: Int?
        @Flag(name: [.customShort("d"), .long], help: "Run in the background; wait until it answers.") var detach = false

        func run() async throws {
            let layout = try WorkerDirectory.prepare(directory.dir, port: port)
            if let running = layout.runningPID() {
                throw ValidationError("a worker is already running in \(layout.path) (pid \(running)); stop it with `swiftlet worker down --dir \(directory.dir)`")
            }
            if detach {
                let (pid, url) = try layout.startDetached(port: port)
                print("worker running (pid \(pid)) at \(url); log: \(layout.logFile)")
                return
            }
            var config = try layout.loadConfig()
            if let port { config.port = port }
            var logger = Logger(label: "swiftlet.worker")
            logger.logLevel = Logger.Level(rawValue: config.logLevel) ?? .info
            let worker = try Worker(directory: layout.path, config: config, builtins: BuiltinApps.all.map { $0.name }, logger: logger)
            defer { layout.clearPID() }
            try await worker.run { port in layout.writePID(port: port) }
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show whether the worker runs and its sandbox backend.")
        @OptionGroup var directory: DirectoryOption

        func run() async throws {
            let layout = WorkerDirectory(path: directory.dir)
            guard let pid = layout.runningPID(), let port = layout.port() else {
                print("no worker running in \(layout.path)")
                throw ExitCode(3)
            }
            let response = try SimpleHTTPClient.request("GET", "http://127.0.0.1:\(port)/status", timeoutSeconds: 5)
            print("worker pid \(pid), http://127.0.0.1:\(port)")
            print(response.text)
        }
    }

    struct Down: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Stop gracefully: in-flight requests finish, every sandbox, cgroup and mount is removed.")
        @OptionGroup var directory: DirectoryOption
        @Option(name: .long, help: "Seconds to wait before giving up.") var timeout: Double = 60

        func run() async throws {
            let layout = WorkerDirectory(path: directory.dir)
            guard let pid = layout.runningPID() else {
                print("no worker running in \(layout.path)")
                throw ExitCode(3)
            }
            kill(pid, SIGTERM)
            let deadline = Date().addingTimeInterval(timeout)
            while WorkerDirectory.alive(pid) {
                if Date() > deadline {
                    throw ValidationError("worker (pid \(pid)) did not stop within \(Int(timeout)) s")
                }
                try await Task.sleep(for: .milliseconds(50))
            }
            layout.clearPID()
            print("worker (pid \(pid)) stopped")
        }
    }
}
