/// The set elements of one loop tick, grouped for the kernel: one write per nft set
/// (`NAME_v4` or `NAME_v6`), each address once (with the longest timeout asked for), in
/// the order first asked, at most `maxElements` per write. Pure: the netlink encoding
/// of a `SetWrite` is the shell's (libnftnl).
public struct SetBatch: Sendable {
    public static let maxElements = 200

    private struct Key: Hashable {
        var nftSet: String
        var address: [UInt8]
    }

    private var order: [Key] = []
    private var timeouts: [Key: UInt32] = [:]
    private var bases: [String: String] = [:]

    public init() {}

    public var isEmpty: Bool { order.isEmpty }
    public var count: Int { order.count }

    public mutating func add(_ fill: SetFill) {
        guard fill.address.count == 4 || fill.address.count == 16 else { return }
        let key = Key(nftSet: fill.set + (fill.isIPv6 ? "_v6" : "_v4"), address: fill.address)
        if let t = timeouts[key] {
            if fill.timeout > t { timeouts[key] = fill.timeout }
            return
        }
        order.append(key)
        timeouts[key] = fill.timeout
        bases[key.nftSet] = fill.set
    }

    public mutating func add(_ fills: [SetFill]) { for f in fills { add(f) } }

    /// The writes, emptying the batch.
    public mutating func take() -> [SetWrite] {
        var writes: [SetWrite] = []
        var open: [String: Int] = [:]   // nft set -> its write being filled
        for key in order {
            let timeout = UInt64(timeouts[key]!) * 1000
            if let i = open[key.nftSet], writes[i].count < Self.maxElements {
                writes[i].append(key.address, timeoutMs: timeout)
            } else {
                open[key.nftSet] = writes.count
                var w = SetWrite(set: bases[key.nftSet]!, nftSet: key.nftSet, keyLength: key.address.count)
                w.append(key.address, timeoutMs: timeout)
                writes.append(w)
            }
        }
        order.removeAll(keepingCapacity: true)
        timeouts.removeAll(keepingCapacity: true)
        bases.removeAll(keepingCapacity: true)
        return writes
    }
}

/// The elements of one nft set to write in one netlink batch: keys of `keyLength` bytes
/// back to back (network order, as the set's `typeof ip daddr` / `ip6 daddr` key), and
/// the timeout of each in milliseconds (NFTA_SET_ELEM_TIMEOUT's unit).
public struct SetWrite: Sendable, Equatable {
    /// The `[[set]]` name, for counting.
    public var set: String
    /// `NAME_v4` or `NAME_v6`.
    public var nftSet: String
    public var keyLength: Int
    public var keys: [UInt8] = []
    public var timeoutsMs: [UInt64] = []

    public init(set: String, nftSet: String, keyLength: Int) {
        self.set = set; self.nftSet = nftSet; self.keyLength = keyLength
    }

    public var count: Int { timeoutsMs.count }

    mutating func append(_ key: [UInt8], timeoutMs: UInt64) {
        keys += key
        timeoutsMs.append(timeoutMs)
    }

    /// The key of element `i`.
    public func key(_ i: Int) -> ArraySlice<UInt8> { keys[(i * keyLength)..<((i + 1) * keyLength)] }
}

/// Which elements a loop has written and until when, to tell an added element from a
/// refreshed one in the metrics. Bounded: past `capacity` entries the expired ones go,
/// and if that is not enough, all of them (later writes then count as added once more).
public struct SetMembership: Sendable {
    public let capacity: Int
    private var expiry: [[UInt8]: Double] = [:]

    public init(capacity: Int = 65_536) { self.capacity = capacity }

    public var count: Int { expiry.count }

    /// Notes a write of `key` (set name and address) lasting `timeout` seconds from `now`;
    /// true when it was still a member (a refresh).
    public mutating func note(set: String, address: some Collection<UInt8>, timeout: UInt32, now: Double) -> Bool {
        let key = Array(set.utf8) + [0] + Array(address)
        let refreshed = (expiry[key] ?? -.infinity) > now
        if expiry.count >= capacity, expiry[key] == nil {
            expiry = expiry.filter { $0.value > now }
            if expiry.count >= capacity { expiry.removeAll() }
        }
        expiry[key] = now + Double(timeout)
        return refreshed
    }
}
