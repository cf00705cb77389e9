import MarkCore
import MarkStats

/// One upstream attempt's end: answered, timed out, failed or answered uselessly.
public struct UpstreamAttempt: Sendable, Equatable {
    public enum Outcome: String, Sendable {
        case answered, timeout, error, unusable
    }

    public var upstream: Endpoint
    public var proto: TransportProtocol
    /// The SO_MARK the attempt was sent with (0: none).
    public var mark: UInt32
    /// Our end of the upstream flow, when known (UDP sockets).
    public var local: Endpoint?
    /// From the attempt's start to its end.
    public var latency: Double
    public var outcome: Outcome

    public init(upstream: Endpoint, proto: TransportProtocol, mark: UInt32, local: Endpoint?, latency: Double,
                outcome: Outcome) {
        self.upstream = upstream; self.proto = proto; self.mark = mark; self.local = local
        self.latency = latency; self.outcome = outcome
    }
}

/// What the engine reports as it works. Called on the engine's event loop: implementations
/// must only count or enqueue, never block.
public protocol QueryObserver: AnyObject, Sendable {
    /// False: only upstream attempts are reported; no `QueryEvent` is built and lookups
    /// are not timed (an observer of upstream attempts only costs nothing per query).
    var observesQueries: Bool { get }
    /// Every query, once, when it gets its final answer (or none, for dropped ones).
    func queryCompleted(_ event: QueryEvent)
    /// Every upstream attempt, when it ends.
    func upstreamAttemptEnded(_ attempt: UpstreamAttempt)
    /// Every conntrack lookup, with its duration in seconds (when `observesQueries`).
    func conntrackLookup(seconds: Double, result: MarkLookup)
}
