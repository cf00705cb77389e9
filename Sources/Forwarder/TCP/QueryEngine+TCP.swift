import DNSWire
import MarkCore
import NIOCore
import QueryCore

#if canImport(Glibc)
import Glibc
#endif

/// TCP upstream attempts (client queries over TCP, retries after TC) go on the pooled
/// connections of their (mark, upstream), like DoT's but without TLS (RFC 7766: persistent,
/// pipelined, answers matched by ID): the client's mark is set before connect, so the SYN and
/// the conntrack entry carry it, and a connection never carries another mark's queries.
extension QueryEngine {
    func sendTCP(_ start: StartAttempt) {
        sendPooled(start, tcpUpstreams[start.upstream] ?? StreamUpstream(kind: .tcp, endpoint: start.upstream))
    }

    func socketAddress(_ e: Endpoint) -> SocketAddress {
        if let a = addresses[e] { return a }
        let a = e.socketAddress
        addresses[e] = a
        return a
    }

    /// The TCP listener could not accept (EMFILE, ENFILE, ENOBUFS, ENOMEM); it backs off.
    func acceptFailed(_ error: String) {
        core.counters.acceptErrors += 1
        logFault("accept", "cannot accept TCP connections: \(error); accepting again shortly")
    }
}
