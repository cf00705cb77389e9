import MarkCore
import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// The UDP data plane: the loop reports a listener readable and the engine reads it on
/// the same thread, a bounded number of batches per wake so TCP work, upstream answers
/// and timers on the same loop are not starved. Interest is level-triggered: a listener
/// left with datagrams is reported again by the loop's next wait, nothing is re-armed.
extension QueryEngine {
    /// Batches of `RawUDPListener.batch` datagrams read from one socket per wake.
    static let batchesPerTurn = 4

    /// Adopts `listener` (bound for this loop) and starts watching it.
    func adopt(_ listener: RawUDPListener) throws {
        try loop.watch(listener.fd, token: listeners.count)
        listeners.append(listener)
    }

    /// The loop reported a descriptor of this engine readable.
    func ready(_ token: Int) {
        if token == SetWriter.token { setSocketReady() } else if token >= Self.firstSocketToken { upstreamReady(token) } else if token < listeners.count { drain(token) }
    }

    private func drain(_ token: Int) {
        spread?.tick()
        let listener = listeners[token]
        let local = listener.local
        for _ in 0..<Self.batchesPerTurn {
            let n = listener.receive(with: receiver) { d in
                guard let client = d.source else { return }
                receive(d.bytes, cut: d.truncated, flow: FlowTuple(proto: .udp, client: client, local: local),
                        reply: .udp(listener, client, scope: d.scope), interfaceIndex: d.interfaceIndex, packetMark: d.mark)
            }
            // Emptied (or close to it: the next wait reports it again at once if not).
            if listener.isClosed || n < RawUDPListener.batch { return }
        }
    }

    /// Stops reading and closes the listeners and upstream sockets (shutdown, after the
    /// drain).
    func closeListeners() {
        for listener in listeners {
            listener.flush()
            loop.unwatch(listener.fd)
            listener.close()
        }
        closeUpstreamSockets()
        socketsClosed = true
    }
}
