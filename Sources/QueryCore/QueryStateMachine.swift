import DNSCache
import DNSWire
import HeapModule
import MarkCore
import MarkPolicy

/// The query path of one event loop, as a state machine in the manner of swift-nio's
/// `*StateMachine` types: every event (a query arrived, an upstream answered, an attempt
/// failed or ran out of time, a drain) goes in as a method call with plain values, and
/// what the shell must do comes out as an action value. No sockets, timers, clocks or
/// threads: time is passed in (monotonic seconds), and the attempt deadlines are kept
/// here (`nextDeadline`, `expiredAttempt`), so the shell needs one timer, not one per query.
///
/// Invariants (tested): every client query gets exactly one answer; an answer is only
/// shared between clients of the same policy view, pool, upstream mark, transport and
/// cache key (RD, EDNS version, DO, CD, size); `inFlight` never goes negative and
/// returns to 0.
public struct QueryStateMachine: Sendable {
    public let limits: QueryLimits
    /// The policy in force; replaced whole by `reload`. Queries in flight keep the
    /// decision they were given.
    public internal(set) var policy: PolicyEngine
    /// Static records, hosts files, local domain, private reverse zones.
    public internal(set) var localZone: LocalZone
    public var counters = Counters()
    public internal(set) var cache: AnswerCache<CacheView>
    /// Upstreams that keep failing are tried last for a while (backoff).
    public internal(set) var health = UpstreamHealth()
    /// Queries per pool so far: the round-robin position and the `fastest` exploration turn.
    var poolTurns: [String: Int] = [:]
    var txns = TransactionTable()
    /// Queries in flight upstream, by what they ask and for whom: an identical query of the
    /// same view, mark, pool and transport waits for the same answer. Never across marks.
    var inflight: [InflightKey: TxnID] = [:]
    var deadlines = Heap<AttemptDeadline>()
    /// Clients waiting on an upstream (leaders and followers), in all and per address.
    public internal(set) var inFlight = 0
    var perClient: [IPAddress: Int] = [:]
    public internal(set) var draining = false

    public init(policy: PolicyEngine, limits: QueryLimits) {
        self.limits = limits
        self.policy = policy
        self.localZone = LocalZone(config: policy.config.local)
        self.cache = AnswerCache(limits: .init(capacity: limits.cacheSize, minTTL: limits.cacheMinTTL,
                                               maxTTL: limits.cacheMaxTTL, staleWindow: limits.serveStale))
    }

    // MARK: - Configuration events

    /// A new policy for every query from now on; cached answers of the old one are dropped
    /// (pools may point elsewhere now).
    public mutating func reload(_ policy: PolicyEngine) {
        self.policy = policy
        cache.removeAll()
        counters.reloads += 1
    }

    public mutating func setLocalZone(_ zone: LocalZone) {
        localZone = zone
    }

    /// Stops forwarding new queries (they get SERVFAIL; cache hits are still answered).
    /// True when nothing is in flight any more; otherwise the `Finish` of the last
    /// transaction says `drained`.
    public mutating func drain() -> Bool {
        draining = true
        return inFlight == 0
    }

    // MARK: - Intake

    /// A client's message arrived: counted and classified (see `Intake`).
    public mutating func intake(_ bytes: UnsafeRawBufferPointer, proto: TransportProtocol, cut: Bool = false) -> Intake {
        if proto == .udp { counters.queriesUDP += 1 } else { counters.queriesTCP += 1 }
        return Intake.classify(bytes, cut: cut, counters: &counters)
    }

    /// What of the client the policy needs besides its address, given the kernel's mark:
    /// its MAC and input interface matter only when selectors are consulted.
    ///
    /// `mutating` only so that a machine held in a class property is read in place: a
    /// non-mutating call there copies the whole machine first (its dictionaries, cache and
    /// table retained and released: ~600 instructions per call, measured with callgrind).
    public mutating func identityNeeds(_ lookup: MarkLookup?) -> (mac: Bool, interface: Bool) {
        guard policy.consultsSelectors else { return (false, false) }
        if case .found(let m) = lookup, m & policy.mask != 0 { return (false, false) }
        return (policy.usesMAC, policy.usesInterface)
    }

    // MARK: - Timers

    /// When the earliest attempt still running runs out of time (nil: none is running, so
    /// no timer is needed). Entries of attempts that have ended are dropped on the way.
    public mutating func nextDeadline() -> Double? {
        while let top = deadlines.min {
            if isCurrent(top.ref) { return top.at }
            _ = deadlines.popMin()
        }
        return nil
    }

    /// An attempt whose time is up at `now`, if any (call until nil, passing each to
    /// `attemptFailed(_:outcome: .timeout, now:)`).
    public mutating func expiredAttempt(now: Double) -> AttemptRef? {
        while let top = deadlines.min, top.at <= now {
            _ = deadlines.popMin()
            if isCurrent(top.ref) { return top.ref }
        }
        return nil
    }

    /// Whether `ref` is the running attempt of a transaction in flight. (`mutating` for the
    /// same reason as `identityNeeds`: the shell calls it per upstream send and answer.)
    public mutating func isCurrent(_ ref: AttemptRef) -> Bool {
        txns.attempt(ref.txn) == ref.attempt
    }

    /// The transactions in flight (tests, diagnostics).
    public var transactionCount: Int { txns.count }
}
