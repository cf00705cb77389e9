import DNSWire
import MarkCore
import MarkPolicy

/// A transaction (one upstream query and the clients waiting for it), addressed by its
/// slot and the slot's generation, so an event for a finished transaction whose slot was
/// reused is recognised as stale.
public struct TxnID: Hashable, Sendable, CustomStringConvertible {
    public var index: Int32
    public var generation: UInt32
    public init(index: Int32, generation: UInt32) { self.index = index; self.generation = generation }
    public var description: String { "txn\(index).\(generation)" }
}

/// One attempt of a transaction: events (answers, failures, timers) name the attempt they
/// belong to, and only the current one counts.
public struct AttemptRef: Hashable, Sendable, CustomStringConvertible {
    public var txn: TxnID
    public var attempt: UInt32
    public init(txn: TxnID, attempt: UInt32) { self.txn = txn; self.attempt = attempt }
    public var description: String { "\(txn)#\(attempt)" }
}

/// Limits and timings of one engine.
public struct QueryLimits: Sendable {
    public var cacheSize = 10_000
    public var cacheMinTTL: UInt32 = 0
    public var cacheMaxTTL: UInt32 = 86_400
    /// Serve-stale window (RFC 8767), seconds; 0: off.
    public var serveStale: UInt32 = 0
    public var maxOutstanding = 4096
    public var maxOutstandingPerClient = 512
    /// Seconds one upstream gets, and a query's whole budget upstream.
    public var upstreamTimeout = 1.5
    public var queryTimeout = 4.0
    /// Servers that timed out get this many rounds within the budget.
    public var rounds = 2

    public init() {}
}

/// Where a client's answer came from, for its query event.
public enum AnswerSource: Equatable, Sendable {
    /// Made by markdns before any forwarding: an error, a refusal, SERVFAIL for overload.
    case immediate
    /// Local data or the policy (walled garden, blocked, local, private-reverse).
    case local(LocalAnswer.Reason)
    case cache
    /// Serve-stale because every server of the pool is backed off.
    case stale
    /// The upstream's answer.
    case upstream(Endpoint)
    /// Every attempt failed: SERVFAIL.
    case upstreamFailed
    /// Every attempt failed: an expired cache entry instead (RFC 8767).
    case staleAfterFailure

    /// Whether the query went upstream.
    public var forwarded: Bool {
        switch self {
        case .upstream, .upstreamFailed, .staleAfterFailure: return true
        case .immediate, .local, .cache, .stale: return false
        }
    }
}

/// Send the transaction's query to one upstream. The shell picks the socket or
/// connection (with `mark` as SO_MARK), sets a fresh ID, and reports what happens as
/// events naming `ref`. The deadline is the state machine's (see `nextDeadline`).
public struct StartAttempt: Sendable {
    public var ref: AttemptRef
    public var upstream: Endpoint
    public var proto: TransportProtocol
    public var mark: UInt32
    /// The upstream copy of the client's query (ID still to be set).
    public var query: [UInt8]
    /// When this attempt runs out of time (monotonic seconds): the shell makes sure a
    /// timer fires by then and hands `expiredAttempt` the time.
    public var deadline: Double
}

/// The answer for one waiting client.
public struct Delivery: Sendable {
    /// The shell's handle of the client (its reply target).
    public var handle: Int
    public var question: DNSQuestion
    public var rcode: UInt8
    public var source: AnswerSource
    /// Bytes made for this client (SERVFAIL, a stale answer); nil: the upstream answer of
    /// the `Finish` (or its `replacement`) with `rewrite` applied.
    public var bytes: [UInt8]?
    public var rewrite: ClientRewrite
}

/// A transaction is over: every waiting client gets exactly one delivery.
public struct Finish: Sendable {
    public var txn: TxnID
    /// Bytes of the upstream answer to relay (nil: no usable answer).
    public var answerLength: Int?
    /// Our own answer in place of the upstream's (TC without a question).
    public var replacement: [UInt8]?
    /// Leader first, then the followers in the order they asked.
    public var deliveries: [Delivery]
    /// Draining, and this was the last query in flight.
    public var drained: Bool
    /// Set elements to write before any delivery is released (empty: release at once).
    public var fills: [SetFill] = []
}

/// The result of a client query arriving.
public struct Arrival: Sendable {
    public enum Action: Sendable {
        /// Answer the client now with these bytes.
        case answer([UInt8], source: AnswerSource)
        /// The client waits for an identical query of the same view already in flight.
        case joined(TxnID)
        /// A new transaction: start its first attempt.
        case start(StartAttempt)
    }

    public var action: Action
    /// The policy's name for the client's mark ("none", "other" or a `[[mark]]` name).
    public var markName: String
    /// No usable kernel mark, and why (for a once-per-reason log line).
    public var missing: NoMarkReason?
    public var refused: Bool
    /// With `.answer`: set elements to write before the answer is released.
    public var fills: [SetFill] = []
}

/// The end of an attempt, for the observer.
public struct AttemptEnd: Sendable {
    public var ref: AttemptRef
    public var upstream: Endpoint
    public var proto: TransportProtocol
    public var mark: UInt32
    public var started: Double
    /// nil: a usable answer.
    public var outcome: UpstreamPlan.Outcome?
}

/// What an attempt event leads to.
public struct AttemptResult: Sendable {
    public enum Action: Sendable {
        /// Stale (an old attempt, a finished transaction) or not an answer: nothing to do.
        case ignored
        /// The attempt is over; start the next one.
        case retry(StartAttempt)
        case finish(Finish)
    }

    /// The attempt that ended (nil when ignored): its socket slot or connection is free.
    public var ended: AttemptEnd?
    public var action: Action

    static let ignored = AttemptResult(ended: nil, action: .ignored)
}
