/// The answer of a mark lookup for one client flow.
public enum MarkLookup: Equatable, Sendable {
    /// The flow's conntrack entry, with its connmark (0 when the entry has no mark).
    case found(UInt32)
    /// No conntrack entry for the flow (e.g. conntrack not tracking this traffic).
    case notFound
    /// The lookup itself failed (netlink error, no ctnetlink, ...), with the errno.
    case failed(Int32)
}

/// Where connmarks come from. The real one speaks ctnetlink; tests use a fake.
/// Implementations are confined to one thread (one event loop) and need no locks.
public protocol MarkSource: AnyObject {
    func lookup(_ flow: FlowTuple) -> MarkLookup
}

/// A mark source for tests and for running without conntrack: a fixed table.
public final class StaticMarkSource: MarkSource {
    public var marks: [IPAddress: UInt32]
    public var fallback: MarkLookup

    public init(marks: [IPAddress: UInt32] = [:], fallback: MarkLookup = .notFound) {
        self.marks = marks; self.fallback = fallback
    }

    public func lookup(_ flow: FlowTuple) -> MarkLookup {
        marks[flow.client.address].map(MarkLookup.found) ?? fallback
    }
}

/// Why a query is forwarded without a mark (or refused). A bounded set: used as a
/// counter key and logged once per reason.
public enum NoMarkReason: String, Sendable, CaseIterable {
    /// The connmark was found and is 0.
    case markZero = "mark-zero"
    /// No conntrack entry for the client's flow.
    case noEntry = "no-conntrack-entry"
    /// The lookup failed (netlink error).
    case lookupFailed = "lookup-failed"
    /// No mark source at all (ctnetlink socket could not be opened).
    case noSource = "no-mark-source"
}

/// What to do with a query, given its mark lookup. Pure.
public enum MarkDecision: Equatable, Sendable {
    case forward(mark: UInt32)
    case forwardUnmarked(NoMarkReason)
    case refuse(NoMarkReason)

    /// `requireMark` fails closed: any query without a non-zero mark is refused.
    public static func decide(_ lookup: MarkLookup?, requireMark: Bool) -> MarkDecision {
        let reason: NoMarkReason
        switch lookup {
        case .found(let m) where m != 0: return .forward(mark: m)
        case .found: reason = .markZero
        case .notFound: reason = .noEntry
        case .failed: reason = .lookupFailed
        case nil: reason = .noSource
        }
        return requireMark ? .refuse(reason) : .forwardUnmarked(reason)
    }

    /// The SO_MARK for the upstream socket (0 means: do not set SO_MARK).
    public var upstreamMark: UInt32? {
        switch self {
        case .forward(let m): return m
        case .forwardUnmarked: return 0
        case .refuse: return nil
        }
    }
}
