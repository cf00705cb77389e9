import MarkCore
import NIOCore

/// UDP replies of one event-loop tick, flushed together once the tick's events are
/// handled: each listener hands its queued replies to the kernel with one `sendmmsg`
/// instead of one `sendmsg` each. No added latency: the flush runs in the same loop
/// iteration, after the reads that caused the replies.
final class WriteBatcher {
    private let loop: any EventLoop
    private var dirty: [RawUDPListener] = []
    private var scheduled = false

    init(loop: any EventLoop) { self.loop = loop }

    func write(_ listener: RawUDPListener, _ bytes: ByteBuffer, to client: Endpoint) {
        listener.enqueue(bytes, to: client)
        if !dirty.contains(where: { $0 === listener }) { dirty.append(listener) }
        guard !scheduled else { return }
        scheduled = true
        let bound = NIOLoopBound(self, eventLoop: loop)
        loop.execute { bound.value.flush() }
    }

    func flush() {
        scheduled = false
        for listener in dirty { listener.flush() }
        dirty.removeAll(keepingCapacity: true)
    }
}
