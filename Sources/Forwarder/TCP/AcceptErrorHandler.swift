import NIOCore

/// On a TCP listener: counts and logs accept() failures (out of descriptors or memory) and
/// stops accepting for `pause`. (NIO keeps the listener registered for reading after a
/// failed accept, and its AcceptBackoffHandler never sees a read to delay, so without
/// this the loop spins on accept() returning EMFILE.)
final class AcceptErrorHandler: ChannelInboundHandler {
    typealias InboundIn = any Channel
    typealias InboundOut = any Channel

    private let engine: NIOLoopBound<QueryEngine>
    private let pause: TimeAmount
    private var paused = false

    init(engine: NIOLoopBound<QueryEngine>, pause: TimeAmount = .milliseconds(500)) {
        self.engine = engine
        self.pause = pause
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        let engine = self.engine
        let text = "\(error)"
        engine.eventLoop.execute { engine.value.acceptFailed(text) }
        guard !paused, let options = context.channel.syncOptions else { return }
        paused = true
        try? options.setOption(.autoRead, value: false)
        context.eventLoop.assumeIsolated().scheduleTask(in: pause) {
            self.paused = false
            try? options.setOption(.autoRead, value: true)
        }
    }
}
