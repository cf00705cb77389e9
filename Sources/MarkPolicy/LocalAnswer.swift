import MarkCore

/// An answer markdns makes itself instead of forwarding.
public struct LocalAnswer: Sendable, Hashable {
    public static let typeA: UInt16 = 1
    public static let typeAAAA: UInt16 = 28

    public enum Kind: Sendable, Hashable {
        /// NOERROR with these A or AAAA records (of the question's name and type).
        case addresses([IPAddress])
        /// NOERROR, no records.
        case noData
        /// NXDOMAIN.
        case nxDomain
        /// NOERROR with these records (local data; a CNAME chain first, owners as given).
        case records([LocalRecord])
    }

    public enum Reason: String, Sendable, Hashable, CaseIterable {
        case walledGarden = "walled-garden"
        case blocked
        /// Static records, hosts files, the local domain.
        case local
        /// A private reverse zone (RFC 6303) nothing local answers.
        case privateReverse = "private-reverse"
    }

    public let kind: Kind
    /// TTL of the records (and a hint for negative caching).
    public let ttl: UInt32
    public let reason: Reason

    public init(kind: Kind, ttl: UInt32, reason: Reason) {
        self.kind = kind; self.ttl = ttl; self.reason = reason
    }
}
