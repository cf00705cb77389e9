import MarkCore
import MarkSessions

/// A parsed, validated markdns policy: which client gets which mark, what each mark may do
/// in DNS, and the upstream pools. Plain values; `PolicyConfig.load` builds one from TOML,
/// `PolicyEngine` turns it into per-query decisions, the renderers into kernel rules.
public struct PolicyConfig: Sendable, Equatable {
    public var server: ServerConfig
    public var conntrack: ConntrackConfig
    /// Upstream pools in file order.
    public var pools: [Pool]
    /// Client rules in file order; the first rule with a matching selector wins.
    public var clients: [ClientRule]
    /// Mark rules in file order.
    public var marks: [MarkRule]
    /// Name of the pool used for unmarked queries, unknown marks and rules without a
    /// pool: the `[[pool]]` with `default = true`, else the first pool.
    public var defaultPool: String
    /// Local data: static records, hosts files, local domain, private reverse zones.
    public var local: LocalConfig
    /// `[sessions]`: where sessions are stored and controlled.
    public var sessions: SessionsConfig
    /// `[[set]]`s in file order: resolved addresses into nft sets.
    public var sets: [SetRule]

    public init(server: ServerConfig = ServerConfig(), conntrack: ConntrackConfig = ConntrackConfig(),
                pools: [Pool], clients: [ClientRule] = [], marks: [MarkRule] = [],
                defaultPool: String? = nil, local: LocalConfig = LocalConfig(),
                sessions: SessionsConfig = SessionsConfig(), sets: [SetRule] = []) {
        self.server = server; self.conntrack = conntrack; self.pools = pools; self.local = local
        self.sessions = sessions; self.sets = sets
        self.clients = clients; self.marks = marks
        self.defaultPool = defaultPool ?? pools.first?.name ?? ""
    }

    public func pool(named name: String) -> Pool? { pools.first { $0.name == name } }
    public func mark(value: UInt32) -> MarkRule? { marks.first { $0.values.contains(value) } }
    public func mark(named name: String) -> MarkRule? { marks.first { $0.name == name } }

    /// Policy-routing hints: mark value -> routing table, from `[[mark]] table = N`.
    /// Each becomes `ip rule add fwmark MARK/MASK table N`.
    public var routing: [UInt32: UInt32] {
        var r: [UInt32: UInt32] = [:]
        for m in marks { if let t = m.table { r[m.value] = t } }
        return r
    }
}

/// `[sessions]`: the session store, the control socket and the Captive Portal API.
public struct SessionsConfig: Sendable, Equatable {
    public static let defaultDatabase = "/var/lib/markdns/sessions.db"
    public static let defaultControl = "/run/markdns/control.sock"
    public var database: String
    public var control: String
    /// `portal-api = "ADDR:PORT"`: the RFC 8908 API listener (HTTPS with `portalTLS`, else
    /// plain HTTP).
    public var portalAPI: Endpoint?
    /// `portal-tls-cert` and `portal-tls-key`: read when the policy is loaded (as root,
    /// before `serve --user` drops it).
    public var portalTLS: PortalTLSFiles?

    public init(database: String = SessionsConfig.defaultDatabase, control: String = SessionsConfig.defaultControl,
                portalAPI: Endpoint? = nil, portalTLS: PortalTLSFiles? = nil) {
        self.database = database; self.control = control; self.portalAPI = portalAPI; self.portalTLS = portalTLS
    }
}

/// The Captive Portal API's certificate (chain) and private key, PEM, as read from their files.
public struct PortalTLSFiles: Sendable, Equatable {
    public var certFile: String
    public var keyFile: String
    public var certPEM: String
    public var keyPEM: String

    public init(certFile: String, keyFile: String, certPEM: String, keyPEM: String) {
        self.certFile = certFile; self.keyFile = keyFile; self.certPEM = certPEM; self.keyPEM = keyPEM
    }

    /// What the file is meant to hold, for `PEMCheck`.
    public enum Kind: Sendable { case certificateChain, privateKey }
}

/// Parses a PEM text of some kind; nil when it is usable, else the reason. The policy
/// module only checks the PEM markers (`markersOnly`); the shell passes a TLS library's parser.
public typealias PEMCheck = @Sendable (_ kind: PortalTLSFiles.Kind, _ pem: String) -> String?

public enum PEMChecks {
    /// The markers a PEM certificate or private key starts with.
    public static let markersOnly: PEMCheck = { kind, pem in
        switch kind {
        case .certificateChain:
            return pem.contains("-----BEGIN CERTIFICATE-----") ? nil : "holds no PEM certificate"
        case .privateKey:
            return pem.contains("-----BEGIN") && pem.contains("PRIVATE KEY-----") ? nil : "holds no PEM private key"
        }
    }
}

extension PolicyConfig {
    /// True when some `[[mark]]` has `sessions = true`.
    public var hasSessions: Bool { marks.contains(where: \.sessions) }

    /// What the session state machine needs of this policy.
    public var sessionRules: SessionRules {
        SessionRules(mask: conntrack.mask, marks: marks.filter(\.sessions).map {
            SessionMark(name: $0.name, value: $0.value, range: $0.range,
                        timeout: $0.sessionTimeout ?? SessionMark.defaultTimeout,
                        captive: $0.action.kind == .walledGarden, portalURL: $0.userPortalURL)
        }, otherMarks: marks.filter { !$0.sessions }.map(\.name))
    }
}

/// `[server]`.
public struct ServerConfig: Sendable, Equatable {
    /// Addresses to listen on (default port 53); nil when the file does not say (the
    /// command line or the built-in default applies).
    public var listen: [Endpoint]?
    public init(listen: [Endpoint]? = nil) { self.listen = listen }
}

/// `[conntrack]`: which connmark bits are ours and what to do without them.
public struct ConntrackConfig: Sendable, Equatable {
    /// Only these bits of the connmark select a policy and travel to the upstream socket.
    public var mask: UInt32
    /// The bits outside `mask` of every upstream SO_MARK (for other mark users: a
    /// multi-WAN manager's routing bits, say). Must have no bits inside `mask`.
    public var base: UInt32
    public var onMissing: OnMissing
    /// Where marks come from: UDP packet marks once verified against ctnetlink (`auto`), or
    /// ctnetlink for every query (`conntrack`). `--mark-source` overrides it.
    public var markSource: PacketMarkTrust.Mode

    public init(mask: UInt32 = 0xffff_ffff, base: UInt32 = 0, onMissing: OnMissing = .unmarked,
                markSource: PacketMarkTrust.Mode = .auto) {
        self.mask = mask; self.base = base; self.onMissing = onMissing; self.markSource = markSource
    }
}

/// What to do with a query whose flow has no mark in our bits (no conntrack entry, lookup
/// failed, or the masked connmark is 0).
public enum OnMissing: String, Sendable, Equatable, CaseIterable {
    /// Take the mark of the first `[[client]]` rule whose selectors match the client, and
    /// set it on the upstream socket; unmatched clients are forwarded unmarked.
    case policy
    /// Forward to the default pool without a policy mark.
    case unmarked
    /// Answer REFUSED (fail closed).
    case refuse
}

/// `[[client]]`: clients matched by any of `match` get `mark`.
public struct ClientRule: Sendable, Equatable {
    public var name: String
    /// A client matches when any selector matches.
    public var match: [ClientSelector]
    /// The mark value (always one defined by a `[[mark]]`).
    public var mark: UInt32
    public init(name: String, match: [ClientSelector], mark: UInt32) {
        self.name = name; self.match = match; self.mark = mark
    }

    public func matches(_ client: ClientIdentity) -> Bool { match.contains { $0.matches(client) } }
}
