import MarkCore
import NIOCore

/// One client TCP connection (RFC 7766): several queries, answered as they complete (out
/// of order), closed when idle with nothing in flight.
final class TCPClientHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let engine: QueryEngine
    private var flow: FlowTuple?
    private var channel: (any Channel)?
    private var inFlight = 0
    private var paused = false
    private var counted = false

    init(engine: QueryEngine) { self.engine = engine }

    func channelActive(context: ChannelHandlerContext) {
        channel = context.channel
        guard let client = context.channel.remoteAddress?.endpoint,
              let local = context.channel.localAddress?.endpoint,
              engine.admitTCP(from: client.address)
        else {
            context.close(promise: nil)
            return
        }
        counted = true
        flow = FlowTuple(proto: .tcp, client: client, local: local)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if counted, let flow { engine.releaseTCP(from: flow.client.address); counted = false }
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        guard let flow, !engine.draining else { return }
        inFlight += 1
        if inFlight >= engine.config.maxQueriesPerTCPConnection, !paused {
            paused = true
            context.channel.setOption(.autoRead, value: false).whenComplete { _ in }
        }
        frame.withUnsafeReadableBytes {
            engine.receive($0, flow: flow, reply: .tcp(context.channel), tcpClient: self)
        }
    }

    /// Called by the engine when a query of this connection has been answered or dropped.
    func queryDone() {
        inFlight -= 1
        if paused, inFlight < engine.config.maxQueriesPerTCPConnection, let channel {
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
