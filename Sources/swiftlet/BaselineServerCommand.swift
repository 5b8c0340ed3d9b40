import ArgumentParser
import Hummingbird
import NIOCore

/// A bare Hummingbird route in the same binary: the baseline benchmarks compare the worker against.
struct BaselineServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "baseline-server",
        abstract: "Serve a bare Hummingbird route (ANY /run/noop → null) as a benchmark baseline.")
    @Option(name: .long) var port: Int = 8081
    @Option(name: .long) var host: String = "127.0.0.1"

    func run() async throws {
        let router = Router()
        let body = ByteBuffer(string: "null")
        let handler: @Sendable (Request, BasicRequestContext) async throws -> Response = { _, _ in
            var fields = HTTPFields()
            fields[.contentType] = "application/json"
            return Response(status: .ok, headers: fields, body: .init(byteBuffer: body))
        }
        router.get("/run/noop", use: handler)
        router.post("/run/noop", use: handler)
        let app = Application(router: router, configuration: .init(address: .hostname(host, port: port)))
        try await app.runService()
    }
}
