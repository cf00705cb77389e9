import MarkCore
import NIOCore

/// One connected UDP socket to one upstream, carrying one mark only. Connected, so the
/// kernel drops datagrams from any other address/port and reports ICMP unreachable.
final class UpstreamUDPSocket {
    let channel: any Channel
    let pool: UpstreamUDPPool
    let localPort: UInt16
    /// In flight on this socket, by the ID we sent.
    var pending: [UInt16: Transaction] = [:]
    /// Every ID this socket has sent.
    var usedIDs: Set<UInt16> = []
    var used = 0
    /// When the last query was sent on it (monotonic seconds).
    var lastUsed: Double = 0
    var retired = false
    var closed = false

    init(channel: any Channel, pool: UpstreamUDPPool, localPort: UInt16) {
        self.channel = channel
        self.pool = pool
        self.localPort = localPort
    }
}

/// The sockets of one (mark, upstream) pair.
final class UpstreamUDPPool {
    struct Key: Hashable {
        var mark: UInt32
        var upstream: Endpoint
    }

    let key: Key
    let upstream: Endpoint
    var ready: [UpstreamUDPSocket] = []
    var opening = 0
    /// Transactions waiting for a socket (only while the first sockets are opening).
    var waiting: [(Transaction, Int)] = []

    init(key: Key) {
        self.key = key
        self.upstream = key.upstream
    }
}

/// Reads answers from an upstream UDP socket and hands them to the engine.
final class UpstreamUDPHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>

    private let engine: QueryEngine
    var socket: UpstreamUDPSocket?

    init(engine: QueryEngine) { self.engine = engine }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        guard let socket else { return }
        engine.udpAnswer(envelope.data, from: envelope.remoteAddress, on: socket)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let socket else { return }
        engine.udpSocketError(error, on: socket)
    }

    func channelInactive(context: ChannelHandlerContext) {
        guard let socket else { return }
        engine.udpSocketClosed(socket)
    }
}
