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
///
/// This is the worker's hottest path, so it stays lean: a round trip is one buffer written from the caller's thread when
/// that thread is the connection's event loop (the lambda layer arranges that), one continuation resumed by the frame
/// parser, and no per-request timer (one lazily re-armed timer per connection covers every deadline).
public final class RuntimeConnection: Sendable {
    private let channel: any Channel
    private let handler: NIOLoopBound<RuntimeFrameHandler>
    private let readyFrame: EventLoopFuture<WireFrameBuffers>

    private init(channel: any Channel, handler: NIOLoopBound<RuntimeFrameHandler>, readyFrame: EventLoopFuture<WireFrameBuffers>) {
        self.channel = channel
        self.handler = handler
        self.readyFrame = readyFrame
    }

    /// The loop serving this connection.
    public var eventLoop: any EventLoop { channel.eventLoop }

    /// Takes ownership of a connected Unix stream socket fd (the worker's end of a socketpair).
    public static func open(socket fd: Int32) async throws -> RuntimeConnection {
        let parts = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .withConnectedSocket(fd) { channel in
                channel.eventLoop.makeCompletedFuture {
                    let ready = channel.eventLoop.makePromise(of: WireFrameBuffers.self)
                    let handler = RuntimeFrameHandler(ready: ready)
                    try channel.pipeline.syncOperations.addHandler(handler)
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

    /// A round trip that throws `RuntimeTimeout` when no answer arrived within `timeout`; the caller decides what to do
    /// with the runtime (kill it).
    public nonisolated(nonsending) func roundTrip(
        _ request: WireRequest, body: ByteBuffer, timeout: Duration?
    ) async throws -> WireResponse {
        if body.readableBytes > wireMaxBodyBytes {
            throw RuntimeConnectionError.protocolViolation(
                "request body of \(body.readableBytes) bytes exceeds the limit of \(wireMaxBodyBytes) bytes")
        }
        let headerData = request.encodedJSON()
        if headerData.count > wireMaxHeaderBytes {
            throw RuntimeConnectionError.protocolViolation(
                "request header of \(headerData.count) bytes exceeds the limit of \(wireMaxHeaderBytes) bytes")
        }
        let outgoing = OutgoingFrame(header: headerData, body: body, timeout: timeout)
        let handler = self.handler
        let loop = channel.eventLoop
        let reply: WireFrameBuffers
        do {
            reply = try await withTaskCancellationHandler {
                try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<WireFrameBuffers, any Error>) in
                    if loop.inEventLoop {
                        handler.value.send(outgoing, continuation: continuation)
                    } else {
                        loop.execute { handler.value.send(outgoing, continuation: continuation) }
                    }
                }
            } onCancel: { [channel] in
                channel.close(promise: nil)
            }
        } catch {
            if Task.isCancelled { throw CancellationError() }
            throw error
        }
        var response: WireResponse
        do {
            response = try reply.header.withUnsafeReadableBytes { try WireResponse(json: $0) }
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

/// A request frame on its way to the connection's loop.
struct OutgoingFrame: Sendable {
    var header: [UInt8]
    var body: ByteBuffer
    var timeout: Duration?
}

/// Writes request frames, splits the incoming byte stream into frames (enforcing the protocol's size limits before
/// buffering one), hands the first frame to the ready promise and each later frame to the oldest waiting round trip.
/// Lives on the channel's event loop only.
final class RuntimeFrameHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private struct Waiter {
        /// nil once the round trip gave up (timed out); its late answer is then read and dropped.
        var continuation: UnsafeContinuation<WireFrameBuffers, any Error>?
        var deadline: NIODeadline?
        var timeout: Duration?
    }

    /// Bodies below this size are copied into the frame's single buffer; larger ones are written without a copy.
    private static let copyBodyBelow = 16 * 1024

    private let ready: EventLoopPromise<WireFrameBuffers>
    private var readySettled = false
    private var waiting = CircularBuffer<Waiter>()
    private var failure: RuntimeConnectionError?
    private var context: ChannelHandlerContext?
    private var incoming: ByteBuffer?
    /// The one deadline timer: armed for the earliest deadline, re-armed when it fires early or late.
    private var timer: Scheduled<Void>?
    private var timerDeadline: NIODeadline?

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

    func send(_ frame: OutgoingFrame, continuation: UnsafeContinuation<WireFrameBuffers, any Error>) {
        if let failure {
            continuation.resume(throwing: failure)
            return
        }
        guard let context else {
            continuation.resume(throwing: RuntimeConnectionError.closed)
            return
        }
        let deadline = frame.timeout.map { NIODeadline.now() + .nanoseconds(RuntimeConnection.nanoseconds($0)) }
        waiting.append(Waiter(continuation: continuation, deadline: deadline, timeout: frame.timeout))
        if let deadline { arm(deadline, context: context) }

        let bodyLength = frame.body.readableBytes
        let joinBody = bodyLength < Self.copyBodyBelow
        var buffer = context.channel.allocator.buffer(
            capacity: WireFrame.prefixBytes + frame.header.count + (joinBody ? bodyLength : 0))
        buffer.writeInteger(UInt32(frame.header.count))
        buffer.writeInteger(UInt32(bodyLength))
        buffer.writeBytes(frame.header)
        // A failed write closes the channel, which fails every waiting round trip with `closed`.
        if joinBody {
            buffer.writeImmutableBuffer(frame.body)
            context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
        } else {
            context.write(wrapOutboundOut(buffer), promise: nil)
            context.writeAndFlush(wrapOutboundOut(frame.body), promise: nil)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        if incoming != nil {
            incoming!.writeBuffer(&buffer)
            buffer = incoming!
            incoming = nil
        }
        do {
            while let frame = try Self.nextFrame(&buffer) {
                deliver(frame, context: context)
                if failure != nil { return }
            }
        } catch {
            fail(error as? RuntimeConnectionError ?? .protocolViolation("\(error)"))
            context.close(promise: nil)
            return
        }
        if buffer.readableBytes > 0 {
            buffer.discardReadBytes()
            incoming = buffer
        }
    }

    /// Cuts one whole frame off the front of `buffer`; nil when it does not hold one yet.
    static func nextFrame(_ buffer: inout ByteBuffer) throws -> WireFrameBuffers? {
        guard let headerLength = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self),
              let bodyLength = buffer.getInteger(at: buffer.readerIndex + 4, as: UInt32.self)
        else { return nil }
        do {
            try WireFrame.checkLengths(header: Int(headerLength), body: Int(bodyLength))
        } catch {
            throw RuntimeConnectionError.protocolViolation(error.description)
        }
        guard buffer.readableBytes >= WireFrame.prefixBytes + Int(headerLength) + Int(bodyLength) else { return nil }
        buffer.moveReaderIndex(forwardBy: WireFrame.prefixBytes)
        let header = buffer.readSlice(length: Int(headerLength))!
        let body = buffer.readSlice(length: Int(bodyLength))!
        return WireFrameBuffers(header: header, body: body)
    }

    private func deliver(_ frame: WireFrameBuffers, context: ChannelHandlerContext) {
        if !readySettled {
            readySettled = true
            ready.succeed(frame)
        } else if let waiter = waiting.popFirst() {
            waiter.continuation?.resume(returning: frame)
        } else {
            fail(.protocolViolation("runtime sent a frame while no request was outstanding"))
            context.close(promise: nil)
        }
    }

    /// Makes sure the timer fires no later than `deadline`.
    private func arm(_ deadline: NIODeadline, context: ChannelHandlerContext) {
        if let current = timerDeadline, current <= deadline { return }
        timer?.cancel()
        timerDeadline = deadline
        timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in
            timerFired()
        }
    }

    /// Fails the round trips whose deadline passed and re-arms for the earliest remaining one.
    private func timerFired() {
        timer = nil
        timerDeadline = nil
        let now = NIODeadline.now()
        var earliest: NIODeadline?
        for index in waiting.indices {
            guard waiting[index].continuation != nil, let deadline = waiting[index].deadline else { continue }
            if deadline <= now {
                let timeout = waiting[index].timeout ?? .zero
                waiting[index].continuation?.resume(throwing: RuntimeTimeout(timeout: timeout))
                waiting[index].continuation = nil
            } else if earliest.map({ deadline < $0 }) ?? true {
                earliest = deadline
            }
        }
        if let earliest, let context { arm(earliest, context: context) }
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
        while let waiter = waiting.popFirst() {
            waiter.continuation?.resume(throwing: reported)
        }
        timer?.cancel()
        timer = nil
        timerDeadline = nil
    }
}
