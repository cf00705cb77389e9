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
