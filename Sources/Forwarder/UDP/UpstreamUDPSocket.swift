import MarkCore
import QueryCore

/// One connected UDP socket to one upstream, carrying one mark only. Connected, so the
/// kernel drops datagrams from any other address/port and reports ICMP unreachable. A
/// plain descriptor (see `RawUDPListener`), watched by the engine's loop as `token`.
final class UpstreamUDPSocket {
    let fd: Int32
    let token: Int
    let pool: UpstreamUDPPool
    let local: Endpoint?
    var localPort: UInt16 { local?.port ?? 0 }
    /// In flight on this socket, by the ID we sent.
    var pending: [UInt16: AttemptRef] = [:]
    /// Every ID this socket has sent.
    var usedIDs = UsedIDs()
    var used = 0
    /// When the last query was sent on it (monotonic seconds).
    var lastUsed: Double = 0
    var retired = false
    var closed = false

    init(fd: Int32, token: Int, pool: UpstreamUDPPool, local: Endpoint?) {
        self.fd = fd
        self.token = token
        self.pool = pool
        self.local = local
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

    init(key: Key) {
        self.key = key
        self.upstream = key.upstream
    }
}
