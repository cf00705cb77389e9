/// Transport protocol of a flow.
public enum TransportProtocol: UInt8, Hashable, Sendable, CustomStringConvertible {
    case tcp = 6
    case udp = 17

    public var description: String { self == .tcp ? "tcp" : "udp" }
}

/// A client's flow to markdns as markdns's socket sees it: who sent the query, to which
/// of our addresses, over which protocol.
public struct FlowTuple: Hashable, Sendable, CustomStringConvertible {
    public var proto: TransportProtocol
    public var client: Endpoint
    public var local: Endpoint

    public init(proto: TransportProtocol, client: Endpoint, local: Endpoint) {
        self.proto = proto; self.client = client; self.local = local
    }

    /// The conntrack REPLY-direction tuple of this flow: from our address to the client.
    ///
    /// Without NAT the original tuple is client -> local and the reply tuple is its
    /// mirror. When the query was DNAT/REDIRECTed to us the original tuple names the
    /// address the client *meant* (e.g. 8.8.8.8:53), which we cannot see, but the reply
    /// tuple is still local -> client. So a lookup by reply tuple finds the entry in both
    /// cases with one request.
    public var replyTuple: (source: Endpoint, destination: Endpoint) {
        (source: local, destination: client)
    }

    /// Both ends must be of one address family for a conntrack entry to exist.
    public var isConsistent: Bool { client.address.isIPv6 == local.address.isIPv6 }

    public var description: String { "\(proto) \(client) -> \(local)" }
}
