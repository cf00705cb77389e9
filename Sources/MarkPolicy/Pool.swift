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
    /// The servers written `tls://` or `https://`, with the pool's trust settings (`tls-ca`,
    /// `tls-pin`, `max-connections`, `https-method`); the others are plain DNS.
    public var secure: [Endpoint: StreamUpstream] = [:]
    /// `max-connections`: pooled connections per (mark, server) for its encrypted servers and
    /// the TCP queries of its plain ones.
    public var maxConnections = StreamUpstream.defaultMaxConnections
    public init(name: String, servers: [Endpoint], strategy: PoolStrategy = .failover, domains: [String] = []) {
        self.name = name; self.servers = servers; self.strategy = strategy; self.domains = domains
    }
}

/// How a pool's servers are used (see `UpstreamStrategy`).
public typealias PoolStrategy = UpstreamStrategy

extension Pool {
    /// The pool's servers as written (plain or encrypted), in order.
    public var upstreams: [UpstreamAddress] {
        servers.map { e in secure[e].map(UpstreamAddress.secure) ?? .plain(e) }
    }

    /// Replaces the servers (`--upstream`, `servers = [...]`), keeping the encrypted ones'
    /// settings as they are written.
    public mutating func setUpstreams(_ list: [UpstreamAddress]) {
        servers = list.map(\.endpoint)
        secure = [:]
        for case .secure(let s) in list { secure[s.endpoint] = s }
    }
}
