import NIOCore

/// Where a client's answer goes: back out of the listener it came in on.
enum ReplyTarget {
    /// A UDP listener bound to one local address, so replies leave from that address.
    case udp(any Channel, SocketAddress)
    /// A client TCP connection (length framing is added by its pipeline).
    case tcp(any Channel)

    func send(_ bytes: ByteBuffer) {
        switch self {
        case .udp(let channel, let client):
            channel.writeAndFlush(AddressedEnvelope(remoteAddress: client, data: bytes), promise: nil)
        case .tcp(let channel):
            channel.writeAndFlush(bytes, promise: nil)
        }
    }
}
