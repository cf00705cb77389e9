import DNSWire

/// A bounded cache of whole DNS answers, keyed by the policy view and the question, so an
/// answer made for one policy (mark, pool, walled garden ...) is never served to another.
///
/// Pure: time is passed in (seconds, monotonic). Answers are stored as received (ID and
/// TTLs rewritten on the way out); lookups count TTLs down by the entry's age and give
/// back the client's own ID and question case. Least recently used entries are evicted.
///
/// Compact: an entry is one fixed-size struct plus one byte array holding the answer and,
/// after it, the offsets of its TTL fields. The key's question name is not stored apart:
/// it is the answer's own question (checked equal when stored). The index holds 4-byte
/// entry numbers, not keys (see `SlotIndex`).
///
/// Everything is `@inlinable`: the forwarder's `View` type lives in another module, and
/// unspecialized generic code would look type metadata up at run time on every access
/// (measured: most of a cache hit's instructions).
public struct AnswerCache<View: Hashable & Sendable>: Sendable {
    public struct Key: Hashable, Sendable {
        public var view: View
        public var question: DNSQuestion
        /// EDNS answers (with OPT, up to 1232 bytes) and plain ones (<= 512) differ.
        public var edns: Bool
        public var dnssecOK: Bool
        /// CD queries may get data a validating upstream would refuse (RFC 6840 5.9).
        public var checkingDisabled: Bool
        /// The largest answer the client can take (512, its EDNS size, or 65535 over TCP).
        /// Not part of the entry's identity: UDP and TCP clients share one entry, and a
        /// lookup finds it only when the answer fits (a longer one is a miss, so the
        /// client gets a fresh answer made for its size, TC included).
        public var maxSize: Int
        /// RD is copied into the response (RFC 1035 4.1.1), and a recursive server may
        /// answer a non-recursive query differently: RD=0 and RD=1 never share an entry.
        public var recursionDesired: Bool
        /// The EDNS version asked for (RFC 6891 6.1.3): versions never share an entry.
        public var ednsVersion: UInt8

        @inlinable
        public init(view: View, question: DNSQuestion, edns: Bool, dnssecOK: Bool,
                    checkingDisabled: Bool = false, maxSize: Int = 65535, recursionDesired: Bool = true,
                    ednsVersion: UInt8 = 0) {
            self.view = view; self.question = question; self.edns = edns; self.dnssecOK = dnssecOK
            self.checkingDisabled = checkingDisabled; self.maxSize = maxSize
            self.recursionDesired = recursionDesired; self.ednsVersion = ednsVersion
        }

        // Everything but `maxSize` (see there).
        @inlinable
        public func hash(into hasher: inout Hasher) {
            hasher.combine(view); hasher.combine(question); hasher.combine(edns); hasher.combine(dnssecOK)
            hasher.combine(checkingDisabled); hasher.combine(recursionDesired); hasher.combine(ednsVersion)
        }

        @inlinable
        public static func == (a: Key, b: Key) -> Bool {
            a.view == b.view && a.question == b.question && a.edns == b.edns && a.dnssecOK == b.dnssecOK
                && a.checkingDisabled == b.checkingDisabled && a.recursionDesired == b.recursionDesired
                && a.ednsVersion == b.ednsVersion
        }

        /// edns, dnssecOK, checkingDisabled and recursionDesired as four bits, the EDNS
        /// version in the high byte.
        @inlinable var flags: UInt16 {
            (edns ? 1 : 0) | (dnssecOK ? 2 : 0) | (checkingDisabled ? 4 : 0) | (recursionDesired ? 8 : 0)
                | UInt16(ednsVersion) << 8
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
        @inlinable
        public init(capacity: Int, minTTL: UInt32 = 0, maxTTL: UInt32 = 86_400, maxNegativeTTL: UInt32 = 3_600,
                    staleWindow: UInt32 = 0) {
            self.capacity = capacity; self.minTTL = minTTL; self.maxTTL = maxTTL; self.maxNegativeTTL = maxNegativeTTL
            self.staleWindow = staleWindow
        }
    }

    @usableFromInline
    struct Entry: Sendable {
        @usableFromInline var view: View
        /// The answer (`answerLength` bytes), then each TTL field's offset as two bytes.
        @usableFromInline var blob: [UInt8]
        @usableFromInline var hash: Int
        @usableFromInline var stored: Double
        @usableFromInline var expires: Double
        @usableFromInline var prev: Int32 = -1
        @usableFromInline var next: Int32 = -1
        @usableFromInline var type: UInt16
        @usableFromInline var qclass: UInt16
        @usableFromInline var answerLength: UInt16
        /// The question name's wire length; the name sits at offset 12 of the answer.
        @usableFromInline var nameLength: UInt8
        @usableFromInline var flags: UInt16

        @inlinable
        init(key: Key, blob: [UInt8], hash: Int, stored: Double, expires: Double,
             answerLength: UInt16, nameLength: UInt8) {
            self.view = key.view; self.blob = blob; self.hash = hash
            self.stored = stored; self.expires = expires
            self.type = key.question.type; self.qclass = key.question.qclass
            self.answerLength = answerLength; self.nameLength = nameLength; self.flags = key.flags
        }
    }

    public let limits: Limits
    @usableFromInline var index = SlotIndex()
    @usableFromInline var entries: [Entry] = []
    @usableFromInline var free: [Int32] = []
    @usableFromInline var head: Int32 = -1  // most recently used
    @usableFromInline var tail: Int32 = -1  // least recently used
    @usableFromInline var counts = (hits: 0, misses: 0, evictions: 0)
    public var hits: Int { counts.hits }
    public var misses: Int { counts.misses }
    public var evictions: Int { counts.evictions }

    @inlinable
    public init(limits: Limits) {
        self.limits = limits
    }

    /// Entry numbers are Int32: more entries than that are never kept.
    @inlinable var capacity: Int { min(limits.capacity, Int(Int32.max)) }

    /// Forgets every entry (a reload may have changed what a view's pool answers).
    @inlinable
    public mutating func removeAll() {
        index.removeAll()
        entries = []
        free = []
        head = -1
        tail = -1
    }

    @inlinable public var count: Int { index.count }

    /// Stores an answer the forwarder relayed. Only NOERROR and NXDOMAIN answers without
    /// TC are cached; the TTL is the smallest record TTL (negative answers: the SOA's
    /// RFC 2308 TTL; none: not cached), clamped to the limits.
    @inlinable
    public mutating func store(_ key: Key, answer bytes: [UInt8], now: Double, hash: Int? = nil) {
        guard capacity > 0 else { return }
        let parsed = bytes.withUnsafeBytes { raw -> (DNSMessage, DNSRecordTTLs)? in
            guard let m = try? DNSMessage.parse(raw), let t = try? DNSRecordTTLs.read(raw, message: m) else { return nil }
            return (m, t)
        }
        guard let (message, ttls) = parsed, message.header.isResponse, !message.header.isTruncated,
              message.question == key.question,
              message.questionEnd == DNSHeader.size + message.question.name.wire.count + 4,
              message.length <= Int(UInt16.max)
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
        var blob: [UInt8] = []
        blob.reserveCapacity(message.length + 2 * ttls.offsets.count)
        blob += bytes.prefix(message.length)
        for o in ttls.offsets { blob.append(UInt8(o >> 8)); blob.append(UInt8(o & 0xFF)) }
        let hash = hash ?? key.hashValue
        let entry = Entry(key: key, blob: blob, hash: hash, stored: now, expires: now + Double(ttl),
                          answerLength: UInt16(message.length),
                          nameLength: UInt8(message.question.name.wire.count))
        if let i = find(key, hash: hash).found {
            unlink(i)
            entries[Int(i)] = entry
            pushFront(i)
            return
        }
        if index.count >= capacity, tail >= 0 {
            remove(tail)
            counts.evictions += 1
        }
        let i: Int32
        if let f = free.popLast() {
            entries[Int(f)] = entry
            i = f
        } else {
            // Grow by doubling, but never past the capacity: a full cache wastes no slots.
            if entries.count == entries.capacity {
                entries.reserveCapacity(min(max(16, entries.count * 2), capacity))
            }
            entries.append(entry)
            i = Int32(entries.count - 1)
        }
        index.reserveOneMore { entries[Int($0)].hash }
        index.insert(i, at: find(key, hash: hash).slot)
        pushFront(i)
    }

    /// TTL of the records of a stale answer (RFC 8767 section 4 recommends 30 s).
    public static var staleTTL: UInt32 { 30 }

    /// The cached answer for `key`, ready for the client: its ID, its question name bytes
    /// (case), TTLs clamped to the entry's lifetime and counted down by its age. Nil when
    /// absent or expired (an expired entry inside the stale window stays for `lookupStale`).
    @inlinable
    public mutating func lookup(_ key: Key, id: UInt16, questionName: [UInt8], now: Double,
                                hash: Int? = nil) -> [UInt8]? {
        guard let i = find(key, hash: hash ?? key.hashValue).found, Int(entries[Int(i)].answerLength) <= key.maxSize else {
            counts.misses += 1
            return nil
        }
        guard entries[Int(i)].expires > now else {
            if entries[Int(i)].expires + Double(limits.staleWindow) <= now { remove(i) }
            counts.misses += 1
            return nil
        }
        counts.hits += 1
        unlink(i)
        pushFront(i)
        let e = entries[Int(i)]
        let age = UInt32(max(0, now - e.stored))
        // A record never outlives the entry: each TTL is clamped to the entry's lifetime
        // (after the min-TTL floor) and counted down, so clients keep it no longer than we do.
        let lifetime = UInt32(e.expires - e.stored)
        let minTTL = limits.minTTL
        return render(e, id: id, questionName: questionName) { raw in
            let ttl = min(max(raw, minTTL), lifetime)
            return ttl > age ? ttl - age : 0
        }
    }

    /// An expired answer still inside the stale window (RFC 8767), every TTL set to
    /// `staleTTL`; nil when there is none or serve-stale is off. Fresh entries are
    /// returned as by `lookup`.
    @inlinable
    public mutating func lookupStale(_ key: Key, id: UInt16, questionName: [UInt8], now: Double,
                                     hash: Int? = nil) -> [UInt8]? {
        guard let i = find(key, hash: hash ?? key.hashValue).found, Int(entries[Int(i)].answerLength) <= key.maxSize else {
            return nil
        }
        if entries[Int(i)].expires > now { return lookup(key, id: id, questionName: questionName, now: now, hash: hash) }
        guard entries[Int(i)].expires + Double(limits.staleWindow) > now else {
            remove(i)
            return nil
        }
        return render(entries[Int(i)], id: id, questionName: questionName) { _ in Self.staleTTL }
    }

    /// The stored answer with the client's ID and name case and each TTL mapped by `ttl`.
    @inlinable
    func render(_ e: Entry, id: UInt16, questionName: [UInt8], ttl: (UInt32) -> UInt32) -> [UInt8] {
        let length = Int(e.answerLength)
        return e.blob.withUnsafeBufferPointer { blob in
            [UInt8](unsafeUninitializedCapacity: length) { out, count in
                _ = out.initialize(from: blob[0..<length])
                count = length
                out[0] = UInt8(id >> 8)
                out[1] = UInt8(id & 0xFF)
                if questionName.count == Int(e.nameLength) {
                    for (k, b) in questionName.enumerated() { out[DNSHeader.size + k] = b }
                }
                var t = length
                while t + 1 < blob.count {
                    let o = Int(blob[t]) << 8 | Int(blob[t + 1])
                    t += 2
                    let raw = UInt32(out[o]) << 24 | UInt32(out[o + 1]) << 16 | UInt32(out[o + 2]) << 8 | UInt32(out[o + 3])
                    let left = ttl(raw)
                    out[o] = UInt8(left >> 24); out[o + 1] = UInt8((left >> 16) & 0xFF)
                    out[o + 2] = UInt8((left >> 8) & 0xFF); out[o + 3] = UInt8(left & 0xFF)
                }
            }
        }
    }

    /// The entry stored for `key`, and the index slot it is in (or would go in).
    @inlinable
    func find(_ key: Key, hash: Int) -> (slot: Int, found: Int32?) {
        let flags = key.flags
        return entries.withUnsafeBufferPointer { es in
            key.question.name.wire.withUnsafeBytes { name in
                index.find(hash: hash) { i in
                    let i = Int(i)
                    guard es[i].hash == hash, es[i].type == key.question.type, es[i].qclass == key.question.qclass,
                          es[i].flags == flags, Int(es[i].nameLength) == name.count,
                          es[i].view == key.view
                    else { return false }
                    return es[i].blob.withUnsafeBytes { blob in
                        DNSName.equalIgnoringCase(
                            UnsafeRawBufferPointer(rebasing: blob[DNSHeader.size..<(DNSHeader.size + name.count)]), name)
                    }
                }
            }
        }
    }

    /// Takes entry `i` out of the index and the LRU list and frees its bytes.
    @inlinable
    mutating func remove(_ i: Int32) {
        let hash = entries[Int(i)].hash
        index.remove(at: index.slot(of: i, hash: hash)) { entries[Int($0)].hash }
        unlink(i)
        entries[Int(i)].blob = []
        free.append(i)
    }

    @inlinable
    mutating func unlink(_ i: Int32) {
        let p = entries[Int(i)].prev, n = entries[Int(i)].next
        if p >= 0 { entries[Int(p)].next = n } else { head = n }
        if n >= 0 { entries[Int(n)].prev = p } else { tail = p }
        entries[Int(i)].prev = -1
        entries[Int(i)].next = -1
    }

    @inlinable
    mutating func pushFront(_ i: Int32) {
        entries[Int(i)].prev = -1
        entries[Int(i)].next = head
        if head >= 0 { entries[Int(head)].prev = i }
        head = i
        if tail < 0 { tail = i }
    }
}
