/// `[[set]]`: addresses answered for names under `domains` go into the nft sets
/// `NAME_v4` / `NAME_v6` of `table inet markdns`, with a timeout of
/// max(answer TTL, `timeoutMin`), before the answer is released to the client.
public struct SetRule: Sendable, Equatable {
    /// Largest `timeout-min` (a week, as the other TTL settings).
    public static let maxTimeoutMin: UInt32 = 604_800
    /// TTLs above 2^31 - 1 mean 0 (RFC 2181 8); element timeouts are never 0 (a set's
    /// element without a timeout would stay for ever).
    public static let maxTTL: UInt32 = 0x7fff_ffff

    /// A policy name (see `PolicyConfig.isValidName`), not starting with `client_`.
    public var name: String
    /// Normalised names, each standing for itself and its subdomains.
    public var domains: [String]
    /// Masked mark values whose clients fill the set; empty: every client (marked or not).
    public var marks: [UInt32]
    /// Seconds; the element timeout is max(TTL, this), at least 1.
    public var timeoutMin: UInt32
    /// Packets to the set's members get these bits (outside the policy mask), saved to the
    /// connection's mark.
    public var routeMark: UInt32?
    /// With `routeMark`: the `ip rule add fwmark ROUTE/ROUTE table N` hint.
    public var table: UInt32?

    public init(name: String, domains: [String], marks: [UInt32] = [], timeoutMin: UInt32 = 0,
                routeMark: UInt32? = nil, table: UInt32? = nil) {
        self.name = name; self.domains = domains; self.marks = marks; self.timeoutMin = timeoutMin
        self.routeMark = routeMark; self.table = table
    }

    /// The nft set of one family.
    public var v4Name: String { name + "_v4" }
    public var v6Name: String { name + "_v6" }

    /// Whether a client with this masked mark (0: none) fills the set.
    public func admits(mark: UInt32) -> Bool { marks.isEmpty || marks.contains(mark) }

    /// The element timeout for an address record's TTL: max(TTL, timeout-min), at least
    /// one second; a TTL above 2^31 - 1 counts as 0.
    public func timeout(ttl: UInt32) -> UInt32 {
        Swift.max(ttl > Self.maxTTL ? 0 : ttl, timeoutMin, 1)
    }
}

/// What one answer fills: a set (by its name and minimum timeout) chosen for a question
/// name and a client's mark. Carried by queries in flight, so a reload meanwhile does not
/// change what their answer fills.
public struct SetTarget: Sendable, Equatable, Hashable {
    public var name: String
    public var timeoutMin: UInt32

    public init(name: String, timeoutMin: UInt32) { self.name = name; self.timeoutMin = timeoutMin }

    public init(_ rule: SetRule) { self.init(name: rule.name, timeoutMin: rule.timeoutMin) }

    /// See `SetRule.timeout(ttl:)`.
    public func timeout(ttl: UInt32) -> UInt32 {
        SetRule(name: name, domains: [], timeoutMin: timeoutMin).timeout(ttl: ttl)
    }
}
