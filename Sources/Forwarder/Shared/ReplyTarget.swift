import MarkCore
import NIOCore

/// Where a client's answer goes: back out of the listener it came in on.
enum ReplyTarget {
    /// A UDP listener bound to one local address, so replies leave from that address (in
    /// sendmmsg batches at the end of the loop tick).
    case udp(RawUDPListener, Endpoint, scope: UInt32)
    /// A client TCP connection (length framing is added by its pipeline).
    case tcp(any Channel)

    /// UDP answers go through the batcher (flushed at the end of the loop tick); TCP ones
    /// are flushed at once.
    func send(_ bytes: ByteBuffer, batcher: WriteBatcher) {
        switch self {
        case .udp(let listener, let client, let scope):
            batcher.write(listener, bytes, to: client, scope: scope)
        case .tcp(let channel):
            channel.writeAndFlush(bytes, promise: nil)
        }
    }
}
