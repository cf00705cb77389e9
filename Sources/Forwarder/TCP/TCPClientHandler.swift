import MarkCore
import NIOCore

/// One client TCP connection (RFC 7766): several queries, answered as they complete (out
/// of order), closed when idle with nothing in flight. Runs on a NIO loop; each query is
/// handed to its engine's data-plane loop, and the answer comes back through the channel
/// (thread-safe) and `TCPClientToken`.
final class TCPClientHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let engine: NIOLoopBound<QueryEngine>
    private let shared: SharedState
    private let maxQueries: Int
    private var flow: FlowTuple?
    private var channel: (any Channel)?
    private var token: TCPClientToken?
    private var inFlight = 0
    private var paused = false
    private var counted = false

    init(engine: NIOLoopBound<QueryEngine>, shared: SharedState, maxQueries: Int) {
        self.engine = engine
        self.shared = shared
        self.maxQueries = maxQueries
    }

    func channelActive(context: ChannelHandlerContext) {
        channel = context.channel
        guard let client = context.channel.remoteAddress?.endpoint,
              let local = context.channel.localAddress?.endpoint
        else {
            context.close(promise: nil)
            return
        }
        guard shared.admitTCP(from: client.address) else {
            let engine = self.engine
            engine.eventLoop.execute { engine.value.core.counters.tcpRejected += 1 }
            context.close(promise: nil)
            return
        }
        counted = true
        flow = FlowTuple(proto: .tcp, client: client, local: local)
        token = TCPClientToken(NIOLoopBound(self, eventLoop: context.eventLoop))
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if counted, let flow { shared.releaseTCP(from: flow.client.address); counted = false }
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        guard let flow, let token, let channel else { return }
        inFlight += 1
        if inFlight >= maxQueries, !paused {
            paused = true
            context.channel.setOption(.autoRead, value: false).whenComplete { _ in }
        }
        let engine = self.engine
        engine.eventLoop.execute {
            frame.withUnsafeReadableBytes {
                engine.value.receive($0, flow: flow, reply: .tcp(channel), tcpClient: token)
            }
        }
    }

    /// A query of this connection has been answered or dropped (on the channel's loop).
    func queryDone() {
        inFlight -= 1
        if paused, inFlight < maxQueries, let channel {
            paused = false
            channel.setOption(.autoRead, value: true).whenComplete { _ in }
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            if inFlight == 0 { context.close(promise: nil) }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // Oversized or broken framing, resets: drop the connection, never the process.
        context.close(promise: nil)
    }
}

/// How the engine (on its data-plane loop) tells a client connection that one of its
/// queries is done: on the connection's own loop.
struct TCPClientToken: Sendable {
    private let handler: NIOLoopBound<TCPClientHandler>

    init(_ handler: NIOLoopBound<TCPClientHandler>) { self.handler = handler }

    func queryDone() {
        let handler = self.handler
        handler.eventLoop.execute { handler.value.queryDone() }
    }
}
