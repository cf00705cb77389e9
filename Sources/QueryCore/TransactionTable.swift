import DNSWire
import MarkCore
import MarkPolicy

/// A client waiting for an answer: the shell's handle for where the answer goes, its
/// query (ID, name case, RD, question) and its address (per-client limits).
struct Waiter: Sendable {
    var handle: Int
    var query: DNSMessage
    var client: IPAddress
}

/// One upstream query in flight and the clients waiting for it. (Its attempt number is
/// kept by the table, beside it: see `TransactionTable.attempt`.)
struct Transaction: Sendable {
    var leader: Waiter
    var followers: [Waiter] = []
    var upstreamQuery: [UInt8]
    var proto: TransportProtocol
    var mark: UInt32
    /// The pool's servers in the order decided on arrival (a reload does not change a
    /// query in flight).
    var upstreams: [Endpoint]
    var plan: UpstreamPlan
    /// Monotonic seconds: the end of the query's budget, the current attempt's start.
    var deadline: Double
    var attemptStarted: Double = 0
    /// Keys it is cached and coalesced under (nil: not shareable).
    var cacheKey: CacheKey?
    var cacheHash = 0  // cacheKey's (see `ForwardPlan.cacheHash`)
    var inflightKey: InflightKey?
    /// The sets its answer fills (chosen on arrival by name and mark).
    var sets: [SetTarget] = []

    var current: Endpoint { upstreams[plan.current] }
}

/// Transactions by slot, with a generation per slot so a stale `TxnID` never reaches a
/// newer transaction in the same slot. Slots are reused (no allocation per query once
/// warm).
///
/// A transaction is moved in and out, never copied (a copy retains and releases each of
/// its arrays and keys: ~1,400 instructions per query in callgrind), and the questions
/// asked per send and per answer (is this attempt still current?) are answered from
/// plain arrays beside the slots, without touching the transaction.
struct TransactionTable: Sendable {
    private var slots: [Transaction?] = []
    private var generations: [UInt32] = []
    /// Per slot: its transaction's current attempt, and whether it holds one.
    private var attempts: [UInt32] = []
    private var live: [Bool] = []
    private var free: [Int32] = []
    private(set) var count = 0

    mutating func insert(_ txn: consuming Transaction) -> TxnID {
        count += 1
        if let i = free.popLast() {
            slots[Int(i)] = consume txn
            attempts[Int(i)] = 0
            live[Int(i)] = true
            return TxnID(index: i, generation: generations[Int(i)])
        }
        slots.append(consume txn)
        generations.append(0)
        attempts.append(0)
        live.append(true)
        return TxnID(index: Int32(slots.count - 1), generation: 0)
    }

    func contains(_ id: TxnID) -> Bool {
        let i = Int(id.index)
        return i >= 0 && i < live.count && generations[i] == id.generation && live[i]
    }

    /// The current attempt number of `id` (nil when stale).
    func attempt(_ id: TxnID) -> UInt32? {
        contains(id) ? attempts[Int(id.index)] : nil
    }

    /// Counts a new attempt of `id` and returns its number (nil when stale).
    mutating func nextAttempt(_ id: TxnID) -> UInt32? {
        guard contains(id) else { return nil }
        attempts[Int(id.index)] += 1
        return attempts[Int(id.index)]
    }

    /// Runs `body` on the transaction in place (nil when `id` is stale).
    mutating func update<R>(_ id: TxnID, _ body: (inout Transaction) -> R) -> R? {
        guard contains(id) else { return nil }
        return body(&slots[Int(id.index)]!)
    }

    /// Moves the transaction out (nil when `id` is stale); its slot is free again.
    mutating func remove(_ id: TxnID) -> Transaction? {
        guard contains(id) else { return nil }
        let i = Int(id.index)
        live[i] = false
        generations[i] &+= 1
        free.append(id.index)
        count -= 1
        return slots[i].take()
    }
}

/// When an attempt's time is up. Ordered by time; stale entries (their attempt has ended)
/// are skipped when they come up.
struct AttemptDeadline: Comparable, Sendable {
    var at: Double
    var ref: AttemptRef

    static func < (a: AttemptDeadline, b: AttemptDeadline) -> Bool { a.at < b.at }
    static func == (a: AttemptDeadline, b: AttemptDeadline) -> Bool { a.at == b.at && a.ref == b.ref }
}
