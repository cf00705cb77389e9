import DNSCache
import DNSWire

/// The answer cache round trip: what comes back is the stored answer with the client's ID,
/// its spelling of the name and TTLs counted down, and only for the key it was stored under.
enum CacheInvariants {
    typealias Cache = AnswerCache<UInt8>

    static func check(_ raw: UnsafeRawBufferPointer, _ m: DNSMessage, _ p: InputParameters) {
        checkRelayedAnswer(raw, m, p)
        checkLocalAnswerIsCached(m, p)
    }

    static func key(_ m: DNSMessage, view: UInt8 = 1, maxSize: Int = 1232) -> Cache.Key {
        Cache.Key(view: view, question: m.question, edns: m.edns != nil, dnssecOK: m.edns?.dnssecOK ?? false,
                  checkingDisabled: m.header.checkingDisabled, maxSize: maxSize)
    }

    /// The input taken as an upstream answer: cached or not, whatever comes back is that
    /// answer, and never under another key or after the longest TTL allowed.
    static func checkRelayedAnswer(_ raw: UnsafeRawBufferPointer, _ m: DNSMessage, _ p: InputParameters) {
        var cache = Cache(limits: .init(capacity: 4))
        let k = key(m)
        let stored = Array(raw)
        cache.store(k, answer: stored, now: 1_000)
        let id = UInt16(truncatingIfNeeded: p.seed >> 8)
        let name = flippedCase(m.question.name.wire)
        require(cache.lookup(key(m, view: 2), id: id, questionName: name, now: 1_000) == nil, "hit under another view")
        if m.length > 512 {
            require(cache.lookup(key(m, maxSize: 512), id: id, questionName: name, now: 1_000) == nil,
                    "hit for a limit the answer does not fit")
        }
        guard let hit = cache.lookup(k, id: id, questionName: name, now: 1_000) else { return }
        let h = m.header
        require(h.isResponse && !h.isTruncated && (h.rcode == 0 || h.rcode == 3), "cached \(h)")
        require(hit.count == m.length, "hit is \(hit.count) bytes, the answer \(m.length)")
        require(readU16(hit, at: 0) == id, "hit without the client's ID")
        let nameEnd = DNSHeader.size + name.count
        require(Array(hit[DNSHeader.size..<nameEnd]) == name, "hit without the client's spelling of the name")
        guard let again = try? DNSMessage.parse(hit) else { fatalError("cached answer does not parse: \(hit)") }
        require(again.question == m.question && again.header.flags == h.flags && again.edns == m.edns,
                "cached answer parses differently")
        let ttls = try? DNSRecordTTLs.read(raw, message: m)
        let ttlBytes = Set((ttls?.offsets ?? []).flatMap { $0..<($0 + 4) })
        for i in 2..<m.length where (i < DNSHeader.size || i >= nameEnd) && !ttlBytes.contains(i) {
            require(hit[i] == stored[i], "cached answer differs at byte \(i)")
        }
        for o in ttls?.offsets ?? [] {
            require(readU32(hit, at: o) <= readU32(raw, at: o), "TTL at \(o) grew in the cache")
        }
        // Nothing outlives the cache's largest TTL (86400 s).
        require(cache.lookup(k, id: id, questionName: name, now: 1_000 + 86_401) == nil, "expired entry returned")
    }

    /// A positive answer with a non-zero TTL is always cached, and comes back counted down
    /// until it expires.
    static func checkLocalAnswerIsCached(_ m: DNSMessage, _ p: InputParameters) {
        let ttl = UInt32(1 + p.bits(24, 0xFFFF))
        let answer = DNSResponseBuilder.localAnswer(to: m, addresses: [[192, 0, 2, 7]], ttl: ttl)
        var cache = Cache(limits: .init(capacity: 4))
        let k = key(m)
        cache.store(k, answer: answer, now: 50)
        let id = UInt16(truncatingIfNeeded: p.seed >> 48)
        let name = flippedCase(m.question.name.wire)
        let ttlOffset = DNSHeader.size + m.question.name.wire.count + 4 + 6
        guard let first = cache.lookup(k, id: id, questionName: name, now: 50) else {
            fatalError("answer with TTL \(ttl) not cached for \(m.question)")
        }
        require(first.count == answer.count && readU16(first, at: 0) == id && readU32(first, at: ttlOffset) == ttl,
                "first hit \(first) for \(answer)")
        require(Array(first[DNSHeader.size..<(DNSHeader.size + name.count)]) == name, "hit without the client's name")
        let age = ttl / 2
        let later = cache.lookup(k, id: id, questionName: name, now: 50 + Double(age))
        require(later.map { readU32($0, at: ttlOffset) } == ttl - age, "TTL after \(age) s of \(ttl)")
        require(cache.lookup(k, id: id, questionName: name, now: 50 + Double(ttl)) == nil, "hit at expiry")
        require(cache.count == 0, "expired entry still counted")
    }
}
