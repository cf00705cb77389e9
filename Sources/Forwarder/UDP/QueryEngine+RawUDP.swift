import MarkCore
import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// The UDP fast path: the engine reads its raw listeners when the notifier says they are
/// readable, a bounded number of batches per turn so TCP, upstream answers and timers on
/// the same loop are not starved, and re-arms each one once it has been emptied.
extension QueryEngine {
    /// Batches of `RawUDPListener.batch` datagrams read from one listener per loop turn.
    static let batchesPerTurn = 4

    /// Adopts `listener` (bound for this loop) and starts watching it.
    func adopt(_ listener: RawUDPListener) throws {
        guard let notifier else { throw IOError(errnoCode: EINVAL, reason: "no notifier") }
        try notifier.watch(listener.fd, token: listeners.count)
        listeners.append(listener)
    }

    /// The notifier reported these listeners readable.
    func listenersReady(_ tokens: [Int]) {
        for token in tokens {
            if token >= Self.firstSocketToken { upstreamReady(token) } else if token < listeners.count { drain(token) }
        }
    }

    private func drain(_ token: Int) {
        let listener = listeners[token]
        let local = listener.local
        for _ in 0..<Self.batchesPerTurn {
            let n = listener.receive(with: receiver) { d in
                guard let client = d.source else { return }
                receive(d.bytes, cut: d.truncated, flow: FlowTuple(proto: .udp, client: client, local: local),
                        reply: .udp(listener, client, scope: d.scope), interfaceIndex: d.interfaceIndex, packetMark: d.mark)
            }
            if listener.isClosed { return }
            if n < RawUDPListener.batch {
                // Emptied (or close to it: re-arming reports it again at once if not).
                notifier?.rearm(listener.fd, token: token)
                return
            }
        }
        // Still busy: go on after the loop's other work.
        let bound = NIOLoopBound(self, eventLoop: loop)
        loop.execute { bound.value.drain(token) }
    }

    /// Stops reading and closes the listeners (shutdown, after the drain).
    func closeListeners() {
        for listener in listeners {
            listener.flush()
            notifier?.unwatch(listener.fd)
            listener.close()
        }
        closeUpstreamSockets()
        notifier?.stop()
        notifier = nil
    }
}
