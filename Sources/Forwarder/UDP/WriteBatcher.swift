import MarkCore
import NIOCore

/// UDP replies (and, through `upstream`, upstream queries) of one event-loop tick, flushed together once the tick's events are
/// handled: each listener hands its queued replies to the kernel with one `sendmmsg`
/// instead of one `sendmsg` each. No added latency: the flush runs in the same loop
/// iteration, after the reads that caused the replies.
final class WriteBatcher {
    private let loop: any EventLoop
    private var dirty: [RawUDPListener] = []
    private var scheduled = false
    /// Sends the engine's queued upstream queries (set by the engine).
    var upstream: (() -> Void)?

    init(loop: any EventLoop) { self.loop = loop }

    func write(_ listener: RawUDPListener, _ bytes: ByteBuffer, to client: Endpoint, scope: UInt32) {
        listener.enqueue(bytes, to: client, scope: scope)
        if !dirty.contains(where: { $0 === listener }) { dirty.append(listener) }
        scheduleFlush()
    }

    /// Makes sure `flush` runs at the end of this tick.
    func scheduleFlush() {
        guard !scheduled else { return }
        scheduled = true
        let bound = NIOLoopBound(self, eventLoop: loop)
        loop.execute { bound.value.flush() }
    }

    func flush() {
        scheduled = false
        upstream?()
        for listener in dirty { listener.flush() }
        dirty.removeAll(keepingCapacity: true)
    }
}
