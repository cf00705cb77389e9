import MarkCore

/// The identity of the policy a query is answered under. Anything the forwarder caches or
/// merges (answers, in-flight coalescing, upstream sockets) must be keyed by it, so nothing
/// crosses policies: a walled-garden answer can never reach an authenticated client.
public struct PolicyView: Sendable, Hashable, CustomStringConvertible {
    /// The masked mark (0 for queries without one).
    public let mark: UInt32
    public let kind: ActionKind
    /// The mark's name, `other` for a mark the policy does not define, `none` without a mark.
    public let name: String

    public init(mark: UInt32, kind: ActionKind, name: String) {
        self.mark = mark; self.kind = kind; self.name = name
    }

    public var description: String { "\(name)(\(hex(mark)), \(kind.rawValue))" }
}

/// Where the mark of a decision came from.
public enum MarkOrigin: Sendable, Hashable {
    /// The masked connmark of the client's flow.
    case connmark
    /// No kernel mark; `on-missing = "policy"` and this `[[client]]` rule matched.
    case selector(client: String)
    /// No mark at all, and why.
    case missing(NoMarkReason)
}

/// What to do with one query. Pure value; `answer(name:qtype:)` gives the local answer
/// (walled garden, block list) when the query must not be forwarded.
public struct PolicyDecision: Sendable, Equatable {
    public static let otherName = "other"
    public static let noneName = "none"

    public let view: PolicyView
    /// SO_MARK for the upstream socket: the masked mark with the base's bits outside the
    /// mask. 0 means: do not set SO_MARK.
    public let upstreamMark: UInt32
    public let action: MarkAction
    /// For metrics and logs: the mark's name, "other" or "none".
    public let markName: String
    public let origin: MarkOrigin
    let compiled: CompiledMark?

    init(view: PolicyView, upstreamMark: UInt32, action: MarkAction, origin: MarkOrigin, compiled: CompiledMark?) {
        self.view = view; self.upstreamMark = upstreamMark; self.action = action
        self.markName = view.name; self.origin = origin; self.compiled = compiled
    }

    public static func == (a: PolicyDecision, b: PolicyDecision) -> Bool {
        a.view == b.view && a.upstreamMark == b.upstreamMark && a.action == b.action
            && a.markName == b.markName && a.origin == b.origin
    }

    public var isRefused: Bool { action == .refuse }

    /// The pool to forward to (for a walled garden: where allow-listed names go); nil when refused.
    public var pool: String? { action.pool }

    /// The local answer for a question, or nil to forward it (or refuse, see `isRefused`).
    /// `name` is dotted text in any case, with or without the trailing dot.
    public func answer(name: String, qtype: UInt16) -> LocalAnswer? {
        guard let c = compiled else { return nil }
        return answer(c, qtype: qtype) { $0.contains(name) }
    }

    /// Same for an uncompressed wire name (as `DNSName.wire`).
    public func answer(wireName: [UInt8], qtype: UInt16) -> LocalAnswer? {
        guard let c = compiled else { return nil }
        return answer(c, qtype: qtype) { $0.contains(wireName: wireName) }
    }

    private func answer(_ c: CompiledMark, qtype: UInt16, _ inSet: (DomainSet) -> Bool) -> LocalAnswer? {
        if case .walledGarden(let w) = action, !inSet(c.allow) {
            let addrs = qtype == LocalAnswer.typeA ? c.portal4 : qtype == LocalAnswer.typeAAAA ? c.portal6 : []
            return LocalAnswer(kind: addrs.isEmpty ? .noData : .addresses(addrs), ttl: w.ttl, reason: .walledGarden)
        }
        guard !c.block.isEmpty, inSet(c.block) else { return nil }
        switch c.rule.blockAnswer {
        case .nxdomain:
            return LocalAnswer(kind: .nxDomain, ttl: c.rule.blockTTL, reason: .blocked)
        case .nullAddress:
            let kind: LocalAnswer.Kind
            switch qtype {
            case LocalAnswer.typeA: kind = .addresses([.v4(0, 0, 0, 0)])
            case LocalAnswer.typeAAAA: kind = .addresses([.v6(.zero)])
            default: kind = .noData
            }
            return LocalAnswer(kind: kind, ttl: c.rule.blockTTL, reason: .blocked)
        }
    }
}
