import MarkCore
import NIOConcurrencyHelpers
import NIOCore

/// What the engines of all event loops must agree on, behind one lock. Touched only when
/// an upstream socket opens or closes and when a TCP client connects or leaves, never per
/// UDP query.
final class SharedState: Sendable {
    private struct State {
        /// A 5-tuple never carries two marks, whichever loop opened the socket.
        var quarantine = PortQuarantine()
        var tcpConnections = 0
        var tcpPerClient: [IPAddress: Int] = [:]
    }

    private let state = NIOLockedValueBox(State())
    let maxTCPConnections: Int
    let maxTCPConnectionsPerClient: Int

    init(config: ForwarderConfig) {
        maxTCPConnections = config.maxTCPConnections
        maxTCPConnectionsPerClient = config.maxTCPConnectionsPerClient
    }

    func portAllowed(_ key: PortQuarantine.Key, mark: UInt32, now: Double) -> Bool {
        state.withLockedValue { $0.quarantine.allows(key, mark: mark, now: now) }
    }

    func recordPort(_ key: PortQuarantine.Key, mark: UInt32, now: Double) {
        state.withLockedValue { $0.quarantine.record(key, mark: mark, now: now) }
    }

    /// Admits a new client TCP connection within the global and per-client limits.
    func admitTCP(from client: IPAddress) -> Bool {
        state.withLockedValue { s in
            let mine = s.tcpPerClient[client, default: 0]
            guard s.tcpConnections < maxTCPConnections, mine < maxTCPConnectionsPerClient else { return false }
            s.tcpConnections += 1
            s.tcpPerClient[client] = mine + 1
            return true
        }
    }

    func releaseTCP(from client: IPAddress) {
        state.withLockedValue { s in
            s.tcpConnections -= 1
            let mine = s.tcpPerClient[client, default: 1] - 1
            s.tcpPerClient[client] = mine > 0 ? mine : nil
        }
    }
}
