import DNSWire

/// A bounded cache of whole DNS answers, keyed by the policy view and the question, so an
/// answer made for one policy (mark, pool, walled garden ...) is never served to another.
///
/// Pure: time is passed in (seconds, monotonic). Answers are stored as received (ID and
/// TTLs rewritten on the way out); lookups count TTLs down by the entry's age and give
/// back the client's own ID and question case. Least recently used entries are evicted.
public struct AnswerCache<View: Hashable & Sendable>: Sendable {
    public struct Key: Hashable, Sendable {
        public var view: View
        public var question: DNSQuestion
        /// EDNS answers (with OPT, up to 1232 bytes) and plain ones (<= 512) differ.
        public var edns: Bool
        public var dnssecOK: Bool
        /// CD queries may get data a validating upstream would refuse (RFC 6840 5.9).
        public var checkingDisabled: Bool
        /// The largest answer the client can take (512, its EDNS size, or 65535 over TCP):
        /// an answer fetched for a bigger limit is never given to a smaller one.
        public var maxSize: Int

        public init(view: View, question: DNSQuestion, edns: Bool, dnssecOK: Bool,
                    checkingDisabled: Bool = false, maxSize: Int = 65535) {
            self.view = view; self.question = question; self.edns = edns; self.dnssecOK = dnssecOK
            self.checkingDisabled = checkingDisabled; self.maxSize = maxSize
        }
    }

    public struct Limits: Sendable {
        public var capacity: Int
        public var minTTL: UInt32
        public var maxTTL: UInt32
        public var maxNegativeTTL: UInt32
        /// Serve-stale (RFC 8767): an expired entry is kept this many seconds past its
        /// expiry for `lookupStale` (when every upstream fails). 0: off.
        public var staleWindow: UInt32
        public init(capacity: Int, minTTL: UInt32 = 0, maxTTL: UInt32 = 86_400, maxNegativeTTL: UInt32 = 3_600,
                    staleWindow: UInt32 = 0) {
            self.capacity = capacity; self.minTTL = minTTL; self.maxTTL = maxTTL; self.maxNegativeTTL = maxNegativeTTL
            self.staleWindow = staleWindow
        }
    }

    struct Entry: Sendable {
        var key: Key
        var bytes: [UInt8]
        var ttlOffsets: [Int]
        var nameLength: Int
        var stored: Double
        var expires: Double
        var prev: Int
        var next: Int
    }

    public let limits: Limits
    private var index: [Key: Int] = [:]
    private var entries: [Entry] = []
    private var free: [Int] = []
    private var head = -1  // most recently used
    private var tail = -1  // least recently used
    public private(set) var hits = 0
    public private(set) var misses = 0
    public private(set) var evictions = 0
    /// TTL of the records of a stale answer (RFC 8767 section 4 recommends 30 s).
    public static var staleTTL: UInt32 { 30 }

    public init(limits: Limits) { self.limits = limits }

    /// Forgets every entry (a reload may have changed what a view's pool answers).
    public mutating func removeAll() {
        index = [:]
        entries = []
        free = []
        head = -1
        tail = -1
    }

    public var count: Int { index.count }

    /// Stores an answer the forwarder relayed. Only NOERROR and NXDOMAIN answers without
    /// TC are cached; the TTL is the smallest record TTL (negative answers: the SOA's
    /// RFC 2308 TTL; none: not cached), clamped to the limits.
    public mutating func store(_ key: Key, answer bytes: [UInt8], now: Double) {
        guard limits.capacity > 0 else { return }
        let parsed = bytes.withUnsafeBytes { raw -> (DNSMessage, DNSRecordTTLs)? in
            guard let m = try? DNSMessage.parse(raw), let t = try? DNSRecordTTLs.read(raw, message: m) else { return nil }
            return (m, t)
        }
        guard let (message, ttls) = parsed, message.header.isResponse, !message.header.isTruncated,
              message.question == key.question,
              message.questionEnd == DNSHeader.size + message.question.name.wire.count + 4
        else { return }
        let rcode = message.header.rcode
        var ttl: UInt32
        if rcode == DNSRcode.noError.rawValue && message.header.ancount > 0 {
            guard let m = ttls.minimum else { return }
            ttl = min(max(m, limits.minTTL), limits.maxTTL)
        } else if rcode == DNSRcode.noError.rawValue || rcode == DNSRcode.nxDomain.rawValue {
            guard let n = ttls.negative else { return }
            ttl = min(max(n, limits.minTTL), limits.maxNegativeTTL)
        } else {
            return
        }
        guard ttl > 0 else { return }
        let entry = Entry(key: key, bytes: Array(bytes.prefix(message.length)), ttlOffsets: ttls.offsets,
                          nameLength: message.question.name.wire.count, stored: now,
                          expires: now + Double(ttl), prev: -1, next: -1)
        if let i = index[key] {
            unlink(i)
            entries[i] = entry
            pushFront(i)
            return
        }
        if index.count >= limits.capacity, tail >= 0 {
            remove(tail)
            evictions += 1
        }
        let i: Int
        if let f = free.popLast() { entries[f] = entry; i = f } else { entries.append(entry); i = entries.count - 1 }
        index[key] = i
        pushFront(i)
    }

    /// The cached answer for `key`, ready for the client: its ID, its question name bytes
    /// (case), TTLs clamped to the entry's lifetime and counted down by its age. Nil when
    /// absent or expired (an expired entry inside the stale window stays for `lookupStale`).
    public mutating func lookup(_ key: Key, id: UInt16, questionName: [UInt8], now: Double) -> [UInt8]? {
        guard let i = index[key] else { misses += 1; return nil }
        guard entries[i].expires > now else {
            if entries[i].expires + Double(limits.staleWindow) <= now { remove(i) }
            misses += 1
            return nil
        }
        hits += 1
        unlink(i)
        pushFront(i)
        let e = entries[i]
        let age = UInt32(max(0, now - e.stored))
        // A record never outlives the entry: each TTL is clamped to the entry's lifetime
        // (after the min-TTL floor) and counted down, so clients keep it no longer than we do.
        let lifetime = UInt32(e.expires - e.stored)
        return render(e, id: id, questionName: questionName) { raw in
            let ttl = min(max(raw, limits.minTTL), lifetime)
            return ttl > age ? ttl - age : 0
        }
    }

    /// An expired answer still inside the stale window (RFC 8767), every TTL set to
    /// `staleTTL`; nil when there is none or serve-stale is off. Fresh entries are
    /// returned as by `lookup`.
    public mutating func lookupStale(_ key: Key, id: UInt16, questionName: [UInt8], now: Double) -> [UInt8]? {
        guard let i = index[key] else { return nil }
        if entries[i].expires > now { return lookup(key, id: id, questionName: questionName, now: now) }
        guard entries[i].expires + Double(limits.staleWindow) > now else {
            remove(i)
            return nil
        }
        return render(entries[i], id: id, questionName: questionName) { _ in Self.staleTTL }
    }

    private mutating func remove(_ i: Int) {
        unlink(i)
        index[entries[i].key] = nil
        free.append(i)
    }

    /// The stored bytes with the client's ID and name case and each TTL mapped by `ttl`.
    private func render(_ e: Entry, id: UInt16, questionName: [UInt8], ttl: (UInt32) -> UInt32) -> [UInt8] {
        var out = e.bytes
        out[0] = UInt8(id >> 8)
        out[1] = UInt8(id & 0xFF)
        if questionName.count == e.nameLength {
            out.replaceSubrange(DNSHeader.size..<(DNSHeader.size + e.nameLength), with: questionName)
        }
        for o in e.ttlOffsets {
            let raw = UInt32(out[o]) << 24 | UInt32(out[o + 1]) << 16 | UInt32(out[o + 2]) << 8 | UInt32(out[o + 3])
            let left = ttl(raw)
            out[o] = UInt8(left >> 24); out[o + 1] = UInt8((left >> 16) & 0xFF)
            out[o + 2] = UInt8((left >> 8) & 0xFF); out[o + 3] = UInt8(left & 0xFF)
        }
        return out
    }

    private mutating func unlink(_ i: Int) {
        let p = entries[i].prev, n = entries[i].next
        if p >= 0 { entries[p].next = n } else { head = n }
        if n >= 0 { entries[n].prev = p } else { tail = p }
        entries[i].prev = -1
        entries[i].next = -1
    }

    private mutating func pushFront(_ i: Int) {
        entries[i].prev = -1
        entries[i].next = head
        if head >= 0 { entries[head].prev = i }
        head = i
        if tail < 0 { tail = i }
    }
}
