import MarkCore

/// Who a session is for: an IPv4 or IPv6 address, or a MAC address (the client's link-layer
/// source on a bridge or LAN). One session per client.
public enum SessionClient: Sendable, Hashable, Comparable, CustomStringConvertible {
    case address(IPAddress)
    case mac(MACAddress)

    /// Which kernel map holds the client: `_v4`, `_v6` or `_mac`.
    public enum Family: String, Sendable, CaseIterable {
        case v4, v6, mac
    }

    public struct ParseError: Error, Equatable, Sendable, CustomStringConvertible {
        public let text: String
        public var description: String { "'\(text)' is not an IPv4 or IPv6 address or a MAC address (aa:bb:cc:dd:ee:ff)" }
    }

    /// An address or a MAC; unspecified and multicast-like nonsense is refused by the
    /// address parsers, `0.0.0.0` and `::` here.
    public static func parse(_ text: String) -> Result<SessionClient, ParseError> {
        if let m = MACAddress(text) { return .success(.mac(m)) }
        if let a = IPAddress(text), !a.isUnspecified { return .success(.address(a)) }
        return .failure(ParseError(text: text))
    }

    public var family: Family {
        switch self {
        case .address(let a): return a.isIPv6 ? .v6 : .v4
        case .mac: return .mac
        }
    }

    public var description: String {
        switch self {
        case .address(let a): return a.description
        case .mac(let m): return m.description
        }
    }

    public static func < (a: SessionClient, b: SessionClient) -> Bool {
        if a.family != b.family { return a.family.rawValue < b.family.rawValue }
        switch (a, b) {
        case (.address(let x), .address(let y)): return x.bytes.lexicographicallyPrecedes(y.bytes)
        case (.mac(let x), .mac(let y)): return x.bytes.lexicographicallyPrecedes(y.bytes)
        default: return false
        }
    }
}
