import MarkCore
import NIOCore

/// Where a client's answer goes: back out of the listener it came in on.
enum ReplyTarget {
    /// A UDP listener bound to one local address, so replies leave from that address (in
    /// sendmmsg batches at the end of the loop tick).
    case udp(RawUDPListener, Endpoint, scope: UInt32)
    /// A client TCP connection (length framing is added by its pipeline).
    case tcp(any Channel)

    /// Sends a reply of `count` bytes that `fill` writes: UDP answers straight into the
    /// listener's send slot (flushed with the batch at the end of the loop tick), TCP ones
    /// into a buffer flushed at once.
    func send(count: Int, batcher: WriteBatcher, allocator: ByteBufferAllocator,
              _ fill: (UnsafeMutableRawBufferPointer) -> Void) {
        switch self {
        case .udp(let listener, let client, let scope):
            batcher.write(listener, count: count, to: client, scope: scope, fill)
        case .tcp(let channel):
            var buffer = allocator.buffer(capacity: count)
            buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { out in
                fill(UnsafeMutableRawBufferPointer(rebasing: out[0..<count]))
                return count
            }
            channel.writeAndFlush(buffer, promise: nil)
        }
    }

    /// Sends `bytes` as they are.
    func send(_ bytes: UnsafeRawBufferPointer, batcher: WriteBatcher, allocator: ByteBufferAllocator) {
        send(count: bytes.count, batcher: batcher, allocator: allocator) { $0.copyMemory(from: bytes) }
    }
}
