import MarkCore

/// `[[pool]]`: a named, ordered list of upstream servers.
public struct Pool: Sendable, Equatable {
    public var name: String
    public var servers: [Endpoint]
    public var strategy: PoolStrategy
    /// Names under these domains go to this pool whatever pool the client's mark uses
    /// (dnsmasq's `server=/corp.example/10.1.1.1`); the most specific domain wins.
    /// Normalised: lower-case, no trailing dot.
    public var domains: [String]
    public init(name: String, servers: [Endpoint], strategy: PoolStrategy = .failover, domains: [String] = []) {
        self.name = name; self.servers = servers; self.strategy = strategy; self.domains = domains
    }
}

/// How a pool's servers are used (see `UpstreamStrategy`).
public typealias PoolStrategy = UpstreamStrategy
