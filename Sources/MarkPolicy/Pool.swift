import MarkCore

/// `[[pool]]`: a named, ordered list of upstream servers.
public struct Pool: Sendable, Equatable {
    public var name: String
    public var servers: [Endpoint]
    public var strategy: PoolStrategy
    public init(name: String, servers: [Endpoint], strategy: PoolStrategy = .failover) {
        self.name = name; self.servers = servers; self.strategy = strategy
    }
}

/// How a pool's servers are used. Only the forwarder's existing behaviour for now.
public enum PoolStrategy: String, Sendable, Equatable, CaseIterable {
    /// First server first; the next one on timeout, error, SERVFAIL or REFUSED.
    case failover
}
