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

/// One upstream query in flight and the clients waiting for it.
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
    var attempt: UInt32 = 0
    var attemptStarted: Double = 0
    /// Keys it is cached and coalesced under (nil: not shareable).
    var cacheKey: CacheKey?
    var inflightKey: InflightKey?
    /// The sets its answer fills (chosen on arrival by name and mark).
    var sets: [SetTarget] = []

    var current: Endpoint { upstreams[plan.current] }
}

/// Transactions by slot, with a generation per slot so a stale `TxnID` never reaches a
/// newer transaction in the same slot. Slots are reused (no allocation per query once
/// warm).
struct TransactionTable: Sendable {
    private var slots: [Transaction?] = []
    private var generations: [UInt32] = []
    private var free: [Int32] = []
    private(set) var count = 0

    mutating func insert(_ txn: Transaction) -> TxnID {
        count += 1
        if let i = free.popLast() {
            slots[Int(i)] = txn
            return TxnID(index: i, generation: generations[Int(i)])
        }
        slots.append(txn)
        generations.append(0)
        return TxnID(index: Int32(slots.count - 1), generation: 0)
    }

    func contains(_ id: TxnID) -> Bool {
        let i = Int(id.index)
        return i >= 0 && i < slots.count && generations[i] == id.generation && slots[i] != nil
    }

    /// The current attempt number of `id` (nil when stale), read in place.
    func attempt(_ id: TxnID) -> UInt32? {
        contains(id) ? slots[Int(id.index)]?.attempt : nil
    }

    subscript(_ id: TxnID) -> Transaction? {
        contains(id) ? slots[Int(id.index)] : nil
    }

    /// Runs `body` on the transaction in place (nil when `id` is stale).
    mutating func update<R>(_ id: TxnID, _ body: (inout Transaction) -> R) -> R? {
        guard contains(id) else { return nil }
        return body(&slots[Int(id.index)]!)
    }

    mutating func remove(_ id: TxnID) -> Transaction? {
        guard contains(id) else { return nil }
        let i = Int(id.index)
        let txn = slots[i]
        slots[i] = nil
        generations[i] &+= 1
        free.append(id.index)
        count -= 1
        return txn
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
