/// The connections of one (mark, upstream) pool of persistent TCP/TLS/HTTP/2 connections,
/// as decisions only: which connection a query goes to, when to open one, when one is idle
/// long enough to close, how long to back off after failed opens. The shell owns the
/// channels and tells this what happened; connection ids are its own.
///
/// Queries are packed onto the oldest usable connection until it has `maxInFlight`
/// outstanding, then the next one, opening a new one (up to `maxConnections`) only when
/// every connection is full; when all are full and none may be opened, the least loaded
/// one takes the query (TCP queues it). A connection still opening takes queries too:
/// they are written once it is ready.
public struct ConnectionPoolState: Sendable {
    public struct Limits: Sendable, Equatable {
        public var maxConnections: Int
        /// Queries outstanding on one connection before another is opened.
        public var maxInFlight: Int
        /// A connection with nothing outstanding for this long is closed (RFC 7766 6.2.3);
        /// the server's `edns-tcp-keepalive` (RFC 7828) shortens it.
        public var idleTimeout: Double
        /// After a failed open: `backoffBase` seconds, doubling per failure in a row, at most
        /// `backoffMax`. No new connection is opened meanwhile.
        public var backoffBase: Double
        public var backoffMax: Double
        /// How much sooner than the server's `edns-tcp-keepalive` an idle connection is
        /// closed: the interval at which the shell looks for idle ones (`idle(now:)`), so
        /// that we close it before the server does (RFC 7828 3.2.2) and never send a query
        /// into a connection the server is closing.
        public var keepaliveMargin: Double

        public init(maxConnections: Int = 2, maxInFlight: Int = 100, idleTimeout: Double = 10,
                    backoffBase: Double = 0.25, backoffMax: Double = 8, keepaliveMargin: Double = 1) {
            self.maxConnections = max(1, maxConnections); self.maxInFlight = max(1, maxInFlight)
            self.idleTimeout = idleTimeout; self.backoffBase = backoffBase; self.backoffMax = backoffMax
            self.keepaliveMargin = keepaliveMargin
        }
    }

    public enum Phase: Sendable, Equatable { case opening, ready }

    public struct Connection: Sendable, Equatable {
        public var id: Int
        public var phase: Phase
        public var inFlight: Int
        /// When it last had a query sent or answered (or opened).
        public var lastActive: Double
        /// Queries it has carried.
        public var carried: Int
        public var idleTimeout: Double
    }

    public enum Route: Sendable, Equatable {
        /// Send on this connection (opening or ready); `reused`: it carried queries before.
        case use(Int, reused: Bool)
        /// Open connection `id` and send on it once ready.
        case open(Int)
        /// Opens failed recently and no connection is left: fail the attempt (the next
        /// upstream is tried) until `until`.
        case backedOff(until: Double)
    }

    public let limits: Limits
    public private(set) var connections: [Connection] = []
    /// Failed opens in a row.
    public private(set) var failures = 0
    public private(set) var retryAt = -Double.infinity
    private var nextID = 1

    public init(limits: Limits) { self.limits = limits }

    public var isEmpty: Bool { connections.isEmpty }

    /// Where a new query goes at `now`; the connection counts it as outstanding.
    public mutating func route(now: Double) -> Route {
        var best: Int? = nil
        for (i, c) in connections.enumerated() where c.inFlight < limits.maxInFlight {
            best = i
            break
        }
        if best == nil, connections.count < limits.maxConnections {
            guard now >= retryAt else {
                if let least = leastLoaded() { return take(least, now: now) }
                return .backedOff(until: retryAt)
            }
            let id = nextID
            nextID += 1
            connections.append(Connection(id: id, phase: .opening, inFlight: 1, lastActive: now, carried: 1,
                                          idleTimeout: limits.idleTimeout))
            return .open(id)
        }
        return take(best ?? leastLoaded()!, now: now)
    }

    private func leastLoaded() -> Int? {
        connections.indices.min { connections[$0].inFlight < connections[$1].inFlight }
    }

    private mutating func take(_ i: Int, now: Double) -> Route {
        let reused = connections[i].carried > 0
        connections[i].inFlight += 1
        connections[i].carried += 1
        connections[i].lastActive = now
        return .use(connections[i].id, reused: reused)
    }

    /// Connection `id` finished its handshake.
    public mutating func opened(_ id: Int, now: Double) {
        guard let i = index(id) else { return }
        connections[i].phase = .ready
        connections[i].lastActive = now
        failures = 0
        retryAt = -Double.infinity
    }

    /// A query of connection `id` was answered, timed out or was given up.
    public mutating func finished(_ id: Int, now: Double) {
        guard let i = index(id) else { return }
        connections[i].inFlight = max(0, connections[i].inFlight - 1)
        connections[i].lastActive = now
    }

    /// Connection `id` is gone. `failedToOpen`: it never became ready (refused, handshake or
    /// certificate failure): the pool backs off. Returns whether it was known.
    @discardableResult
    public mutating func closed(_ id: Int, failedToOpen: Bool, now: Double) -> Bool {
        guard let i = index(id) else { return false }
        connections.remove(at: i)
        if failedToOpen {
            failures += 1
            let delay = min(limits.backoffMax, limits.backoffBase * Double(1 << min(failures - 1, 20)))
            retryAt = now + delay
        }
        return true
    }

    /// The server's `edns-tcp-keepalive` on connection `id`, in seconds (RFC 7828: units
    /// of 100 ms): the connection is closed once idle `keepaliveMargin` before it runs out.
    /// 0 asks us to close it once idle; a longer timeout than ours is not taken.
    public mutating func keepalive(_ id: Int, seconds: Double) {
        guard let i = index(id) else { return }
        connections[i].idleTimeout = min(limits.idleTimeout, max(0, seconds - limits.keepaliveMargin))
    }

    /// Connections with nothing outstanding whose idle timeout has run out at `now`: the
    /// shell closes them (and reports `closed`).
    public func idle(now: Double) -> [Int] {
        connections.filter { $0.phase == .ready && $0.inFlight == 0 && now - $0.lastActive >= $0.idleTimeout }.map(\.id)
    }

    public func connection(_ id: Int) -> Connection? { index(id).map { connections[$0] } }

    private func index(_ id: Int) -> Int? { connections.firstIndex { $0.id == id } }
}
