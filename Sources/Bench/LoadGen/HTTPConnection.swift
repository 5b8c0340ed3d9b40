import NIOCore
import NIOHTTP1
import NIOPosix

/// `http://host[:port][/prefix]`, the only form of target URL the load generator accepts.
public struct TargetURL: Sendable, Equatable {
    public var host: String
    public var port: Int
    /// Path prefix without a trailing slash ("" for none).
    public var prefix: String

    public init(parsing text: String) throws {
        guard text.hasPrefix("http://") else {
            throw LoadGenError(message: "target URL '\(text)': expected http://HOST[:PORT][/PATH] (https is not supported)")
        }
        let rest = text.dropFirst("http://".count)
        let slash = rest.firstIndex(of: "/") ?? rest.endIndex
        let authority = rest[..<slash]
        var path = String(rest[slash...])
        while path.hasSuffix("/") { path.removeLast() }
        prefix = path
        if let colon = authority.lastIndex(of: ":") {
            guard let port = Int(authority[authority.index(after: colon)...]), (1...65535).contains(port) else {
                throw LoadGenError(message: "target URL '\(text)': expected a port number between 1 and 65535")
            }
            host = String(authority[..<colon])
            self.port = port
        } else {
            host = String(authority)
            port = 80
        }
        guard !host.isEmpty else { throw LoadGenError(message: "target URL '\(text)': missing host") }
    }

    public var hostHeader: String { port == 80 ? host : "\(host):\(port)" }
}

public struct LoadGenError: Error, CustomStringConvertible, Equatable {
    public var message: String
    public init(message: String) { self.message = message }
    public var description: String { message }
}

/// What came back for one request.
struct HTTPResult {
    var status: Int
    var bytes: Int
    var headers: HTTPHeaders
    var body: ByteBuffer?
    var keepAlive: Bool
}

/// Receives responses on one keep-alive connection and hands them to `onResponse`. Lives on its event loop only.
final class ResponseHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    var collectBody = false
    var onResponse: ((HTTPResult) -> Void)?
    var onClose: ((String) -> Void)?
    private var context: ChannelHandlerContext?
    private var head: HTTPResponseHead?
    private var bytes = 0
    private var body: ByteBuffer?
    private var lastError: String?

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let response):
            head = response
            bytes = 0
            body = nil
        case .body(var chunk):
            bytes += chunk.readableBytes
            if collectBody {
                if body == nil { body = chunk } else { body!.writeBuffer(&chunk) }
            }
        case .end:
            guard let response = head else { return }
            head = nil
            onResponse?(
                HTTPResult(
                    status: Int(response.status.code), bytes: bytes, headers: response.headers, body: body,
                    keepAlive: response.isKeepAlive))
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if lastError == nil { lastError = "\(error)" }
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        let reason = lastError ?? "connection closed by the server"
        let callback = onClose
        onClose = nil
        onResponse = nil
        callback?(reason)
        context.fireChannelInactive()
    }

    func send(head: HTTPRequestHead, body: ByteBuffer?) {
        guard let context else { return }
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        if let body, body.readableBytes > 0 { context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil) }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    /// Closes the connection, reporting `reason` to `onClose`.
    func close(reason: String) {
        if lastError == nil { lastError = reason }
        context?.close(promise: nil)
    }
}

/// One keep-alive HTTP/1.1 connection, used by one request at a time.
final class HTTPConnection {
    let channel: Channel
    let handler: ResponseHandler

    init(channel: Channel, handler: ResponseHandler) {
        self.channel = channel
        self.handler = handler
    }

    /// Connects on `loop` (must be called on `loop`); `completion` runs on `loop`.
    static func connect(
        on loop: EventLoop, to target: TargetURL, completion: @escaping (Result<HTTPConnection, Error>) -> Void
    ) {
        let future = ClientBootstrap(group: loop)
            .channelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .connectTimeout(.seconds(10))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(ResponseHandler())
                }
            }
            .connect(host: target.host, port: target.port)
        future.assumeIsolated().whenComplete { result in
            switch result {
            case .success(let channel):
                do {
                    let handler = try channel.pipeline.syncOperations.handler(type: ResponseHandler.self)
                    completion(.success(HTTPConnection(channel: channel, handler: handler)))
                } catch {
                    channel.close(promise: nil)
                    completion(.failure(error))
                }
            case .failure(let error):
                completion(.failure(error))
            }
        }
    }
}
