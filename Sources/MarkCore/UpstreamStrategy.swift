/// How a pool's servers are ordered for each query.
public enum UpstreamStrategy: String, Sendable, Equatable, CaseIterable {
    /// Configured order: the first server first, the next on timeout, error, SERVFAIL or
    /// REFUSED.
    case failover
    /// Each query starts one server further along the list (load spreading), then fails
    /// over along the list.
    case roundRobin = "round-robin"
    /// The server with the lowest smoothed RTT first. Servers not measured yet count as
    /// fastest (so each is measured), and every 16th query starts with another server so a
    /// server that got faster is noticed.
    case fastest
}
