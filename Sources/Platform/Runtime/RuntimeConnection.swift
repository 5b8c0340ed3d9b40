import Foundation
import NIOCore
import NIOPosix

public enum RuntimeConnectionError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The runtime closed its end of the socket (it exited or was killed).
    case closed
    /// The runtime sent something the wire protocol does not allow.
    case protocolViolation(String)

    public var description: String {
        switch self {
        case .closed: return "the runtime closed its connection"
        case .protocolViolation(let why): return "runtime broke the wire protocol: \(why)"
        }
    }
}

/// No answer arrived within the round trip's timeout (the runtime is still running).
public struct RuntimeTimeout: Error, Sendable, Equatable {
    public var timeout: Duration
}

/// The worker's end of the socket to one sandbox runtime: reads the ready frame, then does request/response round trips.
/// Round trips are answered in the order they were sent. Cancelling a round trip closes the connection.
public final class RuntimeConnection: Sendable {
    private let channel: any Channel
    private let handler: NIOLoopBound<RuntimeFrameHandler>
    private let readyFrame: EventLoopFuture<WireFrameBuffers>

    private init(channel: any Channel, handler: NIOLoopBound<RuntimeFrameHandler>, readyFrame: EventLoopFuture<WireFrameBuffers>) {
        self.channel = channel
        self.handler = handler
        self.readyFrame = readyFrame
    }

    /// Takes ownership of a connected Unix stream socket fd (the worker's end of a socketpair).
    public static func open(socket fd: Int32) async throws -> RuntimeConnection {
        let parts = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .withConnectedSocket(fd) { channel in
                channel.eventLoop.makeCompletedFuture {
                    let ready = channel.eventLoop.makePromise(of: WireFrameBuffers.self)
                    let handler = RuntimeFrameHandler(ready: ready)
                    try channel.pipeline.syncOperations.addHandlers(
                        ByteToMessageHandler(WireFrameDecoder()),
                        WireFrameEncoder(),
                        handler
                    )
                    return ConnectionParts(
                        channel: channel,
                        handler: NIOLoopBound(handler, eventLoop: channel.eventLoop),
                        ready: ready.futureResult
                    )
                }
            }
        return RuntimeConnection(channel: parts.channel, handler: parts.handler, readyFrame: parts.ready)
    }

    /// Reads the first frame (WireReady). Throws RuntimeConnectionError.closed on EOF.
    public func readReady() async throws -> WireReady {
        let frame = try await readyFrame.get()
        return try Self.decodeHeader(WireReady.self, from: frame.header)
    }

    /// One request/response round trip. Throws RuntimeConnectionError.closed if the runtime closes/dies mid-way.
    public func roundTrip(_ request: WireRequest, body: ByteBuffer) async throws -> WireResponse {
        try await roundTrip(request, body: body, timeout: nil)
    }

    /// A round trip that throws `RuntimeTimeout` when no answer arrived within `timeout`. The timer is an event-loop
    /// scheduled task (no extra Swift task per request); the caller decides what to do with the runtime (kill it).
    public func roundTrip(_ request: WireRequest, body: ByteBuffer, timeout: Duration?) async throws -> WireResponse {
        if body.readableBytes > wireMaxBodyBytes {
            throw RuntimeConnectionError.protocolViolation(
                "request body of \(body.readableBytes) bytes exceeds the limit of \(wireMaxBodyBytes) bytes")
        }
        let headerData = request.encodedJSON()
        if headerData.count > wireMaxHeaderBytes {
            throw RuntimeConnectionError.protocolViolation(
                "request header of \(headerData.count) bytes exceeds the limit of \(wireMaxHeaderBytes) bytes")
        }
        let frame = WireFrameBuffers(header: channel.allocator.buffer(bytes: headerData), body: body)
        let answer = channel.eventLoop.makePromise(of: WireFrameBuffers.self)
        let handler = self.handler
        if channel.eventLoop.inEventLoop {
            handler.value.send(frame, answer: answer)  // already on the channel's loop (NIO is the task executor): no hop
        } else {
            channel.eventLoop.execute { handler.value.send(frame, answer: answer) }
        }
        if let timeout {
            let timer = channel.eventLoop.scheduleTask(in: .nanoseconds(Self.nanoseconds(timeout))) {
                answer.fail(RuntimeTimeout(timeout: timeout))
            }
            answer.futureResult.whenComplete { _ in timer.cancel() }
        }

        let reply: WireFrameBuffers
        do {
            reply = try await withTaskCancellationHandler {
                try await answer.futureResult.get()
            } onCancel: { [channel] in
                channel.close(promise: nil)
            }
        } catch {
            if Task.isCancelled { throw CancellationError() }
            throw error
        }
        var response: WireResponse
        do {
            response = try WireResponse(json: Array(reply.header.readableBytesView))
        } catch {
            let text = String(decoding: reply.header.readableBytesView.prefix(200), as: UTF8.self)
            throw RuntimeConnectionError.protocolViolation("invalid WireResponse header \(text): \(error)")
        }
        response.body = reply.body
        return response
    }

    static func nanoseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        let (product, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        return overflow ? Int64.max : product &+ attoseconds / 1_000_000_000
    }

    public func close() async {
        try? await channel.close()
    }

    private static func decodeHeader<Header: Decodable>(_ type: Header.Type, from buffer: ByteBuffer) throws -> Header {
        do {
            return try JSONDecoder().decode(type, from: Data(buffer.readableBytesView))
        } catch {
            let text = String(decoding: buffer.readableBytesView.prefix(200), as: UTF8.self)
            throw RuntimeConnectionError.protocolViolation("invalid \(Header.self) header \(text): \(error)")
        }
    }
}

private struct ConnectionParts: Sendable {
    var channel: any Channel
    var handler: NIOLoopBound<RuntimeFrameHandler>
    var ready: EventLoopFuture<WireFrameBuffers>
}

/// A frame as NIO buffers: JSON header and body.
struct WireFrameBuffers: Sendable {
    var header: ByteBuffer
    var body: ByteBuffer
}

/// Splits the byte stream into frames, enforcing the protocol's size limits before buffering a frame.
final class WireFrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = WireFrameBuffers

    func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let headerLength = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self),
              let bodyLength = buffer.getInteger(at: buffer.readerIndex + 4, as: UInt32.self)
        else { return .needMoreData }
        do {
            try WireFrame.checkLengths(header: Int(headerLength), body: Int(bodyLength))
        } catch {
            throw RuntimeConnectionError.protocolViolation(error.description)
        }
        guard buffer.readableBytes >= WireFrame.prefixBytes + Int(headerLength) + Int(bodyLength) else {
            return .needMoreData
        }
        buffer.moveReaderIndex(forwardBy: WireFrame.prefixBytes)
        let header = buffer.readSlice(length: Int(headerLength))!
        let body = buffer.readSlice(length: Int(bodyLength))!
        context.fireChannelRead(wrapInboundOut(WireFrameBuffers(header: header, body: body)))
        return .continue
    }

    func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        while try decode(context: context, buffer: &buffer) == .continue {}
        // Leftover bytes are a frame cut short by the runtime dying; channelInactive reports that as `closed`.
        return .needMoreData
    }
}

/// Writes the length prefix and header in one buffer; small bodies join it, large ones follow without a copy.
final class WireFrameEncoder: ChannelOutboundHandler {
    typealias OutboundIn = WireFrameBuffers
    typealias OutboundOut = ByteBuffer

    private static let copyBodyBelow = 16 * 1024

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let frame = unwrapOutboundIn(data)
        let bodyLength = frame.body.readableBytes
        let joinBody = bodyLength < Self.copyBodyBelow
        var prefix = context.channel.allocator.buffer(
            capacity: WireFrame.prefixBytes + frame.header.readableBytes + (joinBody ? bodyLength : 0))
        prefix.writeInteger(UInt32(frame.header.readableBytes))
        prefix.writeInteger(UInt32(bodyLength))
        prefix.writeImmutableBuffer(frame.header)
        if joinBody {
            prefix.writeImmutableBuffer(frame.body)
            context.write(wrapOutboundOut(prefix), promise: promise)
        } else {
            context.write(wrapOutboundOut(prefix), promise: nil)
            context.write(wrapOutboundOut(frame.body), promise: promise)
        }
    }
}

/// Hands the first frame to the ready promise and each later frame to the oldest waiting round trip.
/// Lives on the channel's event loop only.
final class RuntimeFrameHandler: ChannelInboundHandler {
    typealias InboundIn = WireFrameBuffers
    typealias OutboundOut = WireFrameBuffers

    private let ready: EventLoopPromise<WireFrameBuffers>
    private var readySettled = false
    private var waiting = CircularBuffer<EventLoopPromise<WireFrameBuffers>>()
    private var failure: RuntimeConnectionError?
    private var context: ChannelHandlerContext?

    init(ready: EventLoopPromise<WireFrameBuffers>) {
        self.ready = ready
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        fail(.closed)
        self.context = nil
    }

    func send(_ frame: WireFrameBuffers, answer: EventLoopPromise<WireFrameBuffers>) {
        if let failure {
            answer.fail(failure)
            return
        }
        guard let context else {
            answer.fail(RuntimeConnectionError.closed)
            return
        }
        waiting.append(answer)
        let written = context.eventLoop.makePromise(of: Void.self)
        let channel = context.channel
        written.futureResult.whenFailure { _ in channel.close(promise: nil) }
        context.writeAndFlush(wrapOutboundOut(frame), promise: written)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        if !readySettled {
            readySettled = true
            ready.succeed(frame)
        } else if let answer = waiting.popFirst() {
            answer.succeed(frame)
        } else {
            fail(.protocolViolation("runtime sent a frame while no request was outstanding"))
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        fail(.closed)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(error as? RuntimeConnectionError ?? .closed)
        context.close(promise: nil)
    }

    private func fail(_ error: RuntimeConnectionError) {
        if failure == nil { failure = error }
        let reported = failure ?? error
        if !readySettled {
            readySettled = true
            ready.fail(reported)
        }
        while let answer = waiting.popFirst() {
            answer.fail(reported)
        }
    }
}
