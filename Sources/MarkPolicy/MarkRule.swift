import MarkCore
import MarkSessions

/// `[[mark]]`: what queries carrying this mark (in the masked bits) may do.
public struct MarkRule: Sendable, Equatable {
    public static let defaultBlockTTL: UInt32 = 300

    /// The mark value, inside the mask, non-zero.
    public var value: UInt32
    public var name: String
    public var action: MarkAction
    /// Blocked domains (each blocks itself and its subdomains): the inline names and the
    /// contents of the `file:` entries, normalised (lower case, no trailing dot).
    public var block: [String]
    /// The `file:` entries of `block`, as written (for display).
    public var blockFiles: [String]
    public var blockAnswer: BlockAnswer
    /// TTL of null-address block answers.
    public var blockTTL: UInt32
    /// Routing-table hint: `ip rule add fwmark VALUE/MASK table N`.
    public var table: UInt32?
    /// `sessions = true`: `markdns session login` may give this mark to a client.
    public var sessions: Bool
    /// `session-timeout`: the default length of a session of this mark, seconds.
    public var sessionTimeout: UInt32?
    /// `range`: one value per user (accounting); `value` is then the range's lower bound.
    public var range: MarkRange?
    /// `user-portal-url`: the RFC 8908 `user-portal-url` of clients with this mark.
    public var userPortalURL: String?

    public init(value: UInt32, name: String, action: MarkAction, block: [String] = [],
                blockFiles: [String] = [], blockAnswer: BlockAnswer = .nxdomain,
                blockTTL: UInt32 = MarkRule.defaultBlockTTL, table: UInt32? = nil,
                sessions: Bool = false, sessionTimeout: UInt32? = nil, range: MarkRange? = nil,
                userPortalURL: String? = nil) {
        self.value = value; self.name = name; self.action = action; self.block = block
        self.blockFiles = blockFiles; self.blockAnswer = blockAnswer; self.blockTTL = blockTTL
        self.table = table; self.sessions = sessions; self.sessionTimeout = sessionTimeout
        self.range = range; self.userPortalURL = userPortalURL
    }

    /// Every value this mark stands for: its value, or each of its range.
    public var values: ClosedRange<UInt32> { range.map { $0.lower...$0.upper } ?? value...value }
}

/// The DNS action of a mark.
public enum MarkAction: Sendable, Equatable, Hashable {
    /// Forward to the named pool.
    case forward(pool: String)
    /// Captive portal: answer A/AAAA of every name with the portal, except allow-listed
    /// names (and their subdomains), which are forwarded to `pool`.
    case walledGarden(WalledGarden)
    /// Answer REFUSED.
    case refuse

    /// The kind alone, for views, metrics and logs.
    public var kind: ActionKind {
        switch self {
        case .forward: return .forward
        case .walledGarden: return .walledGarden
        case .refuse: return .refuse
        }
    }

    /// The pool queries are forwarded to (allow-listed ones, for a walled garden).
    public var pool: String? {
        switch self {
        case .forward(let p): return p
        case .walledGarden(let w): return w.pool
        case .refuse: return nil
        }
    }
}

public enum ActionKind: String, Sendable, Hashable, CaseIterable {
    case forward
    case walledGarden = "walled-garden"
    case refuse
}

public struct WalledGarden: Sendable, Equatable, Hashable {
    public static let defaultTTL: UInt32 = 30
    /// Portal addresses: IPv4 ones answer A, IPv6 ones AAAA.
    public var portal: [IPAddress]
    /// Names (and their subdomains) forwarded normally, normalised.
    public var allow: [String]
    public var ttl: UInt32
    public var pool: String
    public init(portal: [IPAddress], allow: [String], ttl: UInt32 = WalledGarden.defaultTTL, pool: String) {
        self.portal = portal; self.allow = allow; self.ttl = ttl; self.pool = pool
    }
}

/// How a blocked name is answered.
public enum BlockAnswer: String, Sendable, Equatable, CaseIterable {
    /// NXDOMAIN for every type.
    case nxdomain
    /// 0.0.0.0 for A, :: for AAAA, NODATA for other types (`block-answer = "null"`).
    case nullAddress = "null"
}
