import MarkCore
import NIOCore

/// UDP replies (and, through `upstream`, upstream queries) of one event-loop tick, flushed
/// together once the tick's events are handled: each listener hands its queued replies to
/// the kernel with one `sendmmsg` instead of one `sendmsg` each. No added latency: the flush
/// is the loop's tick-end hook (`DataPlaneLoop.onTickEnd`), run in the same loop iteration,
/// after the reads that caused the replies and before the loop waits again.
final class WriteBatcher {
    private let loop: DataPlaneLoop
    private var dirty: [RawUDPListener] = []
    /// Sends the engine's queued upstream queries (set by the engine).
    var upstream: (() -> Void)?
    /// Sends the tick's set elements and releases the answers they complete (set by the
    /// engine); before the listeners flush, so those answers leave in this tick.
    var sets: (() -> Void)?

    /// Registers itself as `loop`'s tick-end hook: call on the loop.
    init(loop: DataPlaneLoop) {
        self.loop = loop
        loop.onTickEnd { [unowned self] in self.flush() }
    }

    /// Queues a reply of `count` bytes, written by `fill` into the listener's send slot.
    func write(_ listener: RawUDPListener, count: Int, to client: Endpoint, scope: UInt32,
               _ fill: (UnsafeMutableRawBufferPointer) -> Void) {
        listener.enqueue(count: count, to: client, scope: scope, fill)
        if !dirty.contains(where: { $0 === listener }) { dirty.append(listener) }
        loop.requestTickEnd()
    }

    /// Makes sure `flush` runs at the end of this tick.
    func scheduleFlush() {
        loop.requestTickEnd()
    }

    func flush() {
        upstream?()
        sets?()
        for listener in dirty { listener.flush() }
        dirty.removeAll(keepingCapacity: true)
    }
}
