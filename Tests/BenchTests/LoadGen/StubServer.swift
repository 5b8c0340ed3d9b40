import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// A tiny HTTP server for load generator tests: answers `/run/*` after a programmable delay with
/// X-Swiftlet-* headers, and `/stats` with Swiftlet-format JSON (or 404 when `hasStats` is false).
final class StubServer: Sendable {
    /// Delay in ms for the n-th `/run` request (0-based, in arrival order).
    let delayMs: @Sendable (Int) -> Int
    let hasStats: Bool
    let runRequests = Atomic<Int>(0)
    let statsRequests = Atomic<Int>(0)
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let channel: Mutex<Channel?> = Mutex(nil)

    init(hasStats: Bool = true, delayMs: @escaping @Sendable (Int) -> Int) {
        self.hasStats = hasStats
        self.delayMs = delayMs
    }

    func start() async throws -> String {
        let server = self
        let bound = try await ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(StubHandler(server: server))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        channel.withLock { $0 = bound }
        return "http://127.0.0.1:\(bound.localAddress!.port!)"
    }

    func stop() async {
        let bound = channel.withLock { $0 }
        try? await bound?.close()
        try? await group.shutdownGracefully()
    }
}

final class StubHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart
    let server: StubServer
    var uri = ""

    init(server: StubServer) { self.server = server }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): uri = head.uri
        case .body: break
        case .end:
            if uri == "/stats" {
                let n = server.statsRequests.wrappingAdd(1, ordering: .relaxed).oldValue
                guard server.hasStats else {
                    respond(context: context, status: .notFound, body: "no such route", headers: [:])
                    return
                }
                let body = """
                    {"backend":"process","worker":"w1","memory":{"pool_mb":1000,"reserved_mb":\(n)},
                    "lambdas":{"spin":{"running":2,"idle":1,"paused":0,"starting":1,"queued":3,"sandboxes_created":\(n),
                    "sandboxes_destroyed":0,"memory_reserved_mb":256}}}
                    """
                respond(context: context, status: .ok, body: body, headers: [:])
                return
            }
            let n = server.runRequests.wrappingAdd(1, ordering: .relaxed).oldValue
            let delay = server.delayMs(n)
            let headers = [
                "X-Swiftlet-Start": n == 0 ? "cold" : "warm", "X-Swiftlet-Init-Ms": n == 0 ? "12.5" : "0",
                "X-Swiftlet-Run-Ms": String(delay), "X-Swiftlet-Billed-Ms": "100", "X-Swiftlet-Sandbox": "sb-\(n % 3)",
                "X-Swiftlet-Worker": "stub",
            ]
            if delay == 0 {
                respond(context: context, status: .ok, body: "ok:\(n)", headers: headers)
            } else {
                let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
                context.eventLoop.scheduleTask(in: .milliseconds(Int64(delay))) {
                    bound.value.0.respond(context: bound.value.1, status: .ok, body: "ok:\(n)", headers: headers)
                }
            }
        }
    }

    func respond(context: ChannelHandlerContext, status: HTTPResponseStatus, body: String, headers: [String: String]) {
        var responseHeaders = HTTPHeaders()
        responseHeaders.add(name: "Content-Length", value: String(body.utf8.count))
        for (name, value) in headers { responseHeaders.add(name: name, value: value) }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: responseHeaders))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: body)))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }
}
