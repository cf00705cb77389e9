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

/// How a pool's servers are used (see `UpstreamStrategy`).
public typealias PoolStrategy = UpstreamStrategy
