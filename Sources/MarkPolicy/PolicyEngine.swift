import MarkCore

/// The policy as the forwarder uses it per query: connmark and client in, decision out.
/// Immutable and Sendable; a reload builds a new engine and swaps it in, so queries in
/// flight finish under the decision they were given. A class: the forwarder reads it
/// several times per query, and a reference is one retain where the struct's copy
/// retained every field.
public final class PolicyEngine: Sendable {
    public let config: PolicyConfig
    private let marks: [UInt32: CompiledMark]
    /// Per-domain servers: name suffix -> pool.
    private let domainRoutes: DomainMap<String>
    /// `[[set]]` domains: which sets an answer fills.
    public let sets: SetMatcher
    private let poolsByName: [String: Pool]

    public init(_ config: PolicyConfig) {
        self.config = config
        self.poolsByName = Dictionary(config.pools.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        var m: [UInt32: CompiledMark] = [:]
        for rule in config.marks {
            // A range mark (per-user values) stands for each value of its range.
            let compiled = CompiledMark(rule)
            for v in rule.values where m[v & config.conntrack.mask] == nil { m[v & config.conntrack.mask] = compiled }
        }
        self.marks = m
        var routes = DomainMap<String>()
        for p in config.pools { for d in p.domains { routes.set(d, p.name) } }
        self.domainRoutes = routes
        self.sets = SetMatcher(config.sets)
    }

    /// The sets an answer to `wireName` under `decision` fills (by the decision's masked
    /// mark; nothing for refused queries).
    public func setTargets(for decision: PolicyDecision, wireName: [UInt8]) -> [SetTarget] {
        guard !sets.isEmpty, !decision.isRefused else { return [] }
        return sets.targets(wireName: wireName, mark: decision.view.mark)
    }

    /// True when a per-domain pool covers the name (it is forwarded there even when it
    /// is a private reverse name).
    public func routesDomain(wireName: [UInt8]) -> Bool {
        domainRoutes.lookup(wireName: wireName) != nil
    }

    /// The pool a forwarded question goes to: the pool of the most specific per-domain
    /// route covering the name, else the decision's own pool. Nil when the decision does
    /// not forward (refused).
    public func pool(for decision: PolicyDecision, wireName: [UInt8]) -> String? {
        guard let own = decision.pool else { return nil }
        return domainRoutes.lookup(wireName: wireName) ?? own
    }

    /// The pool of that name (as `config.pool(named:)`, without copying the configuration
    /// out of the engine to ask it: the query path asks once per query).
    public func pool(named name: String) -> Pool? { poolsByName[name] }

    public var mask: UInt32 { config.conntrack.mask }

    /// The upstream SO_MARK for a mark: its bits inside the mask, the base's outside.
    public func upstreamMark(for mark: UInt32) -> UInt32 {
        (mark & mask) | (config.conntrack.base & ~mask)
    }

    /// True when `decide` may look at the client's selectors (so MAC and interface are
    /// worth finding): `on-missing = "policy"` with at least one `[[client]]`.
    public var consultsSelectors: Bool { config.conntrack.onMissing == .policy && !config.clients.isEmpty }
    /// True when some selector is a MAC address (the neighbour table is needed).
    public var usesMAC: Bool { selectors.contains { if case .mac = $0 { true } else { false } } }
    /// True when some selector is an interface.
    public var usesInterface: Bool { selectors.contains { if case .interface = $0 { true } else { false } } }
    private var selectors: [ClientSelector] { config.clients.flatMap(\.match) }

    /// The first `[[client]]` rule with a selector matching `client`.
    public func firstMatchingRule(for client: ClientIdentity) -> ClientRule? {
        config.clients.first { $0.matches(client) }
    }

    public func decide(connmark: MarkLookup?, client: ClientIdentity) -> PolicyDecision {
        let reason: NoMarkReason
        switch connmark {
        case .found(let m) where m & mask != 0: return decision(masked: m & mask, origin: .connmark)
        case .found: reason = .markZero
        case .notFound: reason = .noEntry
        case .failed: reason = .lookupFailed
        case nil: reason = .noSource
        }
        switch config.conntrack.onMissing {
        case .policy:
            if let rule = firstMatchingRule(for: client), rule.mark & mask != 0 {
                return decision(masked: rule.mark & mask, origin: .selector(client: rule.name))
            }
            return unmarked(reason)
        case .unmarked:
            return unmarked(reason)
        case .refuse:
            return PolicyDecision(view: PolicyView(mark: 0, kind: .refuse, name: PolicyDecision.noneName),
                                  upstreamMark: 0, action: .refuse, origin: .missing(reason), compiled: nil)
        }
    }

    private func unmarked(_ reason: NoMarkReason) -> PolicyDecision {
        PolicyDecision(view: PolicyView(mark: 0, kind: .forward, name: PolicyDecision.noneName),
                       upstreamMark: upstreamMark(for: 0), action: .forward(pool: config.defaultPool),
                       origin: .missing(reason), compiled: nil)
    }

    private func decision(masked: UInt32, origin: MarkOrigin) -> PolicyDecision {
        guard let c = marks[masked] else {
            return PolicyDecision(view: PolicyView(mark: masked, kind: .forward, name: PolicyDecision.otherName),
                                  upstreamMark: upstreamMark(for: masked),
                                  action: .forward(pool: config.defaultPool), origin: origin, compiled: nil)
        }
        let action = c.rule.action
        return PolicyDecision(view: PolicyView(mark: masked, kind: action.kind, name: c.rule.name),
                              upstreamMark: action == .refuse ? 0 : upstreamMark(for: masked),
                              action: action, origin: origin, compiled: c)
    }
}
