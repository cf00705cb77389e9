import NIOCore

/// Datagram writes of one event-loop tick, flushed together once the tick's I/O events
/// are handled: NIO then hands each socket's pending datagrams to the kernel with one
/// `sendmmsg` instead of one `sendmsg` each. No added latency: the flush runs in the same
/// loop iteration, after the reads that caused the writes.
final class WriteBatcher {
    private let loop: any EventLoop
    private var dirty: [any Channel] = []
    private var scheduled = false

    init(loop: any EventLoop) { self.loop = loop }

    func write(_ channel: any Channel, _ datagram: AddressedEnvelope<ByteBuffer>) {
        channel.write(datagram, promise: nil)
        markDirty(channel)
    }

    func write(_ channel: any Channel, _ bytes: ByteBuffer) {
        channel.write(bytes, promise: nil)
        markDirty(channel)
    }

    private func markDirty(_ channel: any Channel) {
        if !dirty.contains(where: { $0 === channel }) { dirty.append(channel) }
        guard !scheduled else { return }
        scheduled = true
        let bound = NIOLoopBound(self, eventLoop: loop)
        loop.execute { bound.value.flush() }
    }

    func flush() {
        scheduled = false
        let channels = dirty
        dirty.removeAll(keepingCapacity: true)
        for channel in channels { channel.flush() }
    }
}
