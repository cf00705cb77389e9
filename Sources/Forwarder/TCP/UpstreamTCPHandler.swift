import NIOCore
import QueryCore

/// Our TCP connection to an upstream for one query attempt: its answer and its end go
/// to the engine, named by the attempt.
final class UpstreamTCPHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let engine: QueryEngine
    private let ref: AttemptRef

    init(engine: QueryEngine, ref: AttemptRef) {
        self.engine = engine
        self.ref = ref
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        engine.tcpAnswer(unwrapInboundIn(data), ref: ref)
    }

    func channelInactive(context: ChannelHandlerContext) {
        engine.tcpUpstreamClosed(ref)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
