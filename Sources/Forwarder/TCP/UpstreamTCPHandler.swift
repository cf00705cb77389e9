import NIOCore
import QueryCore

/// Our TCP connection to an upstream for one query attempt (on a NIO loop): its answer
/// and its end go to the engine's data-plane loop, named by the attempt.
final class UpstreamTCPHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let engine: NIOLoopBound<QueryEngine>
    private let ref: AttemptRef

    init(engine: NIOLoopBound<QueryEngine>, ref: AttemptRef) {
        self.engine = engine
        self.ref = ref
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let answer = unwrapInboundIn(data)
        let (engine, ref) = (self.engine, self.ref)
        engine.eventLoop.execute { engine.value.tcpAnswer(answer, ref: ref) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        let (engine, ref) = (self.engine, self.ref)
        engine.eventLoop.execute { engine.value.tcpUpstreamClosed(ref) }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
