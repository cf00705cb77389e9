import DNSCache
import DNSWire
import Testing

/// A one-record answer for `name` whose address tells which store it came from.
func tagged(_ tag: UInt8, name: String = "example.com", ttl: UInt32 = 300, opt: Bool = false) -> Answer {
    makeAnswer(name: name, answers: [.a(ttl, [10, 0, 0, tag])], opt: opt)
}

/// The tag (last address byte) of a cached answer for `k`, or nil on a miss.
func lookupTag(_ cache: inout Cache, _ k: Cache.Key, now: Double = 0) -> UInt8? {
    let name = k.question.name.wire
    guard let out = cache.lookup(k, id: 0x5555, questionName: name, now: now) else { return nil }
    // Header 12 + question (name + 4) + owner pointer 2 + type/class/ttl/rdlength 10.
    return out[12 + name.count + 4 + 12 + 3]
}

@Suite("AnswerCache: keys")
struct AnswerCacheKeyTests {
    @Test func viewsNeverShareEntries() {
        var cache = Cache(limits: .init(capacity: 8))
        let alice = key(view: "alice"), bob = key(view: "bob")
        cache.store(alice, answer: tagged(1).bytes, now: 0)
        #expect(lookupTag(&cache, bob) == nil, "bob does not see alice's answer")
        #expect(cache.misses == 1)
        cache.store(bob, answer: tagged(2).bytes, now: 0)
        #expect(cache.count == 2)
        #expect(lookupTag(&cache, alice) == 1)
        #expect(lookupTag(&cache, bob) == 2)
        // Replacing bob's leaves alice's alone.
        cache.store(bob, answer: tagged(3).bytes, now: 0)
        #expect(lookupTag(&cache, alice) == 1)
        #expect(lookupTag(&cache, bob) == 3)
        #expect(lookupTag(&cache, key(view: "carol")) == nil)
        #expect(cache.count == 2)
    }

    @Test func ednsAndDNSSECOKFlagsSeparateEntries() {
        var cache = Cache(limits: .init(capacity: 8))
        let variants = [(false, false), (true, false), (false, true), (true, true)]
        for (i, (edns, dok)) in variants.enumerated() {
            let k = key(edns: edns, dnssecOK: dok)
            #expect(lookupTag(&cache, k) == nil, "nothing yet for edns \(edns) do \(dok)")
            cache.store(k, answer: tagged(UInt8(i + 1), opt: edns).bytes, now: 0)
        }
        #expect(cache.count == 4)
        for (i, (edns, dok)) in variants.enumerated() {
            #expect(lookupTag(&cache, key(edns: edns, dnssecOK: dok)) == UInt8(i + 1))
        }
    }

    /// One entry for UDP and TCP clients: the size limit is not part of the key, but an
    /// answer longer than a client's limit is never handed to it (a miss).
    @Test func clientsOfAnyLimitShareAnEntryTheAnswerFits() {
        var cache = Cache(limits: .init(capacity: 8))
        func sized(_ limit: Int) -> Cache.Key {
            var k = key(edns: true)
            k.maxSize = limit
            return k
        }
        let small = tagged(1, opt: true).bytes
        cache.store(sized(1232), answer: small, now: 0)  // fetched for a UDP client
        #expect(lookupTag(&cache, sized(65535)) == 1, "a TCP client gets the UDP client's entry")
        #expect(lookupTag(&cache, sized(small.count)) == 1, "an answer exactly at the limit fits")
        #expect(lookupTag(&cache, sized(small.count - 1)) == nil, "one byte over the limit: a miss")
        #expect(cache.count == 1)
        // Filled by a TCP client with an answer larger than a UDP client's limit.
        let big = makeAnswer(name: "big.example.com", answers: (0..<40).map { .a(300, [10, 0, 1, UInt8($0)]) }, opt: true)
        var bigTCP = key("big.example.com", edns: true)
        bigTCP.maxSize = 65535
        cache.store(bigTCP, answer: big.bytes, now: 0)
        var bigUDP = bigTCP
        bigUDP.maxSize = 512
        #expect(big.bytes.count > 512)
        #expect(cache.lookup(bigUDP, id: 1, questionName: bigUDP.question.name.wire, now: 0) == nil)
        #expect(cache.lookup(bigTCP, id: 1, questionName: bigTCP.question.name.wire, now: 0)?.count == big.bytes.count)
    }

    @Test func typeAndClassSeparateEntries() {
        var cache = Cache(limits: .init(capacity: 8))
        cache.store(key(type: DNSType.a), answer: tagged(1).bytes, now: 0)
        cache.store(key(type: DNSType.aaaa),
                    answer: makeAnswer(type: DNSType.aaaa, answers: [.a(300, [10, 0, 0, 2])]).bytes, now: 0)
        cache.store(key(qclass: 3),
                    answer: makeAnswer(qclass: 3, answers: [.a(300, [10, 0, 0, 3])]).bytes, now: 0)
        #expect(cache.count == 3)
        #expect(lookupTag(&cache, key(type: DNSType.a)) == 1)
        #expect(lookupTag(&cache, key(type: DNSType.aaaa)) == 2)
        #expect(lookupTag(&cache, key(qclass: 3)) == 3)
    }

    @Test func nameCaseDoesNotSeparateEntries() {
        var cache = Cache(limits: .init(capacity: 8))
        cache.store(key("WWW.Example.com"), answer: tagged(1, name: "WWW.Example.com").bytes, now: 0)
        cache.store(key("www.example.COM"), answer: tagged(2, name: "www.example.COM").bytes, now: 0)
        #expect(cache.count == 1)
        #expect(lookupTag(&cache, key("www.EXAMPLE.com")) == 2)
    }
}

@Suite("AnswerCache: capacity and LRU")
struct AnswerCacheLRUTests {
    func k(_ n: String) -> Cache.Key { key("\(n).example") }
    func store(_ cache: inout Cache, _ n: String, tag: UInt8 = 1, ttl: UInt32 = 300, now: Double = 0) {
        cache.store(k(n), answer: tagged(tag, name: "\(n).example", ttl: ttl).bytes, now: now)
    }

    @Test func leastRecentlyStoredIsEvicted() {
        var cache = Cache(limits: .init(capacity: 3))
        for n in ["a", "b", "c"] { store(&cache, n) }
        #expect(cache.count == 3 && cache.evictions == 0)
        store(&cache, "d")
        #expect(cache.count == 3)
        #expect(cache.evictions == 1)
        #expect(lookupTag(&cache, k("a")) == nil, "oldest gone")
        for n in ["b", "c", "d"] { #expect(lookupTag(&cache, k(n)) != nil, "\(n) kept") }
    }

    @Test func lookupProtectsFromEviction() {
        var cache = Cache(limits: .init(capacity: 3))
        for n in ["a", "b", "c"] { store(&cache, n) }      // MRU: c b a
        #expect(lookupTag(&cache, k("a")) != nil)           // MRU: a c b
        store(&cache, "d")                                  // evicts b -> d a c
        #expect(cache.evictions == 1)
        #expect(lookupTag(&cache, k("b")) == nil)           // miss, order unchanged
        store(&cache, "e")                                  // evicts c -> e d a
        #expect(cache.evictions == 2)
        #expect(lookupTag(&cache, k("c")) == nil)
        #expect(cache.count == 3)
        #expect(lookupTag(&cache, k("a")) != nil)           // a e d
        #expect(lookupTag(&cache, k("e")) != nil)           // e a d
        #expect(lookupTag(&cache, k("d")) != nil)           // d e a
        store(&cache, "f")                                  // evicts a
        #expect(lookupTag(&cache, k("a")) == nil)
        #expect(cache.evictions == 3)
        #expect(cache.hits == 4 && cache.misses == 3)
    }

    @Test func missedLookupDoesNotProtect() {
        var cache = Cache(limits: .init(capacity: 2))
        store(&cache, "a")
        store(&cache, "b")
        // A lookup for a's name in another view misses and must not touch a.
        #expect(cache.lookup(key("a.example", view: "bob"), id: 1, questionName: wire("a.example"), now: 0) == nil)
        store(&cache, "c")
        #expect(lookupTag(&cache, k("a")) == nil)
        #expect(lookupTag(&cache, k("b")) != nil)
    }

    @Test func replacingAnExistingKey() throws {
        var cache = Cache(limits: .init(capacity: 4))
        store(&cache, "a", tag: 1, ttl: 300, now: 0)
        store(&cache, "a", tag: 2, ttl: 50, now: 10)
        #expect(cache.count == 1)
        #expect(cache.evictions == 0)
        let outResult = cache.lookup(k("a"), id: 1, questionName: wire("a.example"), now: 20)
        let out = try #require(outResult)
        let rr = 12 + wire("a.example").count + 4
        #expect(out[rr + 15] == 2, "the new answer")
        #expect(readBE32(out, at: rr + 6) == 40, "counted from the replacement's store time")
        #expect(lookupTag(&cache, k("a"), now: 59) == 2)
        #expect(lookupTag(&cache, k("a"), now: 60) == nil, "expiry follows the replacement")
    }

    @Test func replacingRefreshesRecency() {
        var cache = Cache(limits: .init(capacity: 2))
        store(&cache, "a", tag: 1)
        store(&cache, "b", tag: 1)
        store(&cache, "a", tag: 2)  // MRU: a b
        #expect(cache.count == 2 && cache.evictions == 0)
        store(&cache, "c")          // evicts b
        #expect(cache.evictions == 1)
        #expect(lookupTag(&cache, k("b")) == nil)
        #expect(lookupTag(&cache, k("a")) == 2)
        #expect(lookupTag(&cache, k("c")) != nil)
    }

    @Test func replacingAtCapacityEvictsNothing() {
        var cache = Cache(limits: .init(capacity: 2))
        store(&cache, "a", tag: 1)
        store(&cache, "b", tag: 1)
        for t in 2...10 { store(&cache, "a", tag: UInt8(t)) }
        #expect(cache.count == 2 && cache.evictions == 0)
        #expect(lookupTag(&cache, k("a")) == 10)
        #expect(lookupTag(&cache, k("b")) == 1)
    }

    @Test func expiredEntryFreesItsSlot() {
        var cache = Cache(limits: .init(capacity: 2))
        store(&cache, "a", ttl: 10, now: 0)
        store(&cache, "b", ttl: 300, now: 0)
        #expect(lookupTag(&cache, k("a"), now: 20) == nil)
        #expect(cache.count == 1)
        store(&cache, "c", tag: 3, now: 20)
        store(&cache, "d", tag: 4, now: 20)  // evicts b (c is newer)
        #expect(cache.evictions == 1)
        #expect(cache.count == 2)
        #expect(lookupTag(&cache, k("b"), now: 20) == nil)
        #expect(lookupTag(&cache, k("c"), now: 20) == 3)
        #expect(lookupTag(&cache, k("d"), now: 20) == 4)
    }

    @Test(arguments: [0, -1])
    func nonPositiveCapacityStoresNothing(capacity: Int) {
        var cache = Cache(limits: .init(capacity: capacity))
        store(&cache, "a")
        store(&cache, "b")
        #expect(cache.count == 0)
        #expect(cache.evictions == 0)
        #expect(lookupTag(&cache, k("a")) == nil)
        #expect(cache.misses == 1 && cache.hits == 0)
    }

    @Test func capacityOne() {
        var cache = Cache(limits: .init(capacity: 1))
        for (i, n) in ["a", "b", "c", "d"].enumerated() {
            store(&cache, n, tag: UInt8(i))
            #expect(cache.count == 1)
            #expect(lookupTag(&cache, k(n)) == UInt8(i))
        }
        #expect(cache.evictions == 3)
    }

    @Test func limitsAreKept() {
        let limits = Cache.Limits(capacity: 7, minTTL: 5, maxTTL: 600, maxNegativeTTL: 30)
        let cache = Cache(limits: limits)
        #expect(cache.limits.capacity == 7 && cache.limits.minTTL == 5)
        #expect(cache.limits.maxTTL == 600 && cache.limits.maxNegativeTTL == 30)
        let d = Cache.Limits(capacity: 1)
        #expect(d.minTTL == 0 && d.maxTTL == 86_400 && d.maxNegativeTTL == 3_600)
    }
}

@Suite("AnswerCache: randomized against a model")
struct AnswerCacheRandomTests {
    /// The reference: an LRU list of keys (most recent first) with what each holds.
    struct ModelEntry { var tag: [UInt8]; var ttl: UInt32; var stored: Int; var expires: Int }

    static let names = (0..<6).map { "h\($0).example" }
    static let views = ["alice", "bob"]

    /// Key number `i` in 0..<24: name, view, edns.
    static func modelKey(_ i: Int) -> Cache.Key {
        key(names[i % 6], view: views[(i / 6) % 2], edns: i / 12 == 1)
    }

    /// `name`'s wire form with each ASCII letter's case chosen at random.
    static func randomCase(_ name: String, _ rng: inout SplitMix64) -> [UInt8] {
        wire(name).map { b in
            (b >= 0x61 && b <= 0x7A && rng.next() & 1 == 1) ? b - 0x20 : b
        }
    }

    @Test(arguments: [UInt64(1), 42, 0xDEAD_BEEF])
    func randomizedStoreAndLookup(seed: UInt64) throws {
        var rng = SplitMix64(seed: seed)
        let capacity = 5
        var cache = Cache(limits: .init(capacity: capacity))
        var order: [Int] = []
        var model: [Int: ModelEntry] = [:]
        var hits = 0, misses = 0, evictions = 0
        var now = 0

        for op in 0..<5_000 {
            now += Int(rng.next() % 4)
            let ki = Int(rng.next() % 24)
            let k = Self.modelKey(ki)
            let name = Self.names[ki % 6]
            if rng.next() % 100 < 55 {
                let ttl = UInt32(1 + rng.next() % 40)
                let tag: [UInt8] = [10, UInt8(op >> 16 & 0xFF), UInt8(op >> 8 & 0xFF), UInt8(op & 0xFF)]
                let upstreamID = UInt16(truncatingIfNeeded: rng.next())
                var a = makeAnswer(id: upstreamID, name: name, answers: [.a(ttl, tag)], opt: k.edns)
                a.bytes.replaceSubrange(12..<(12 + wire(name).count), with: Self.randomCase(name, &rng))
                cache.store(k, answer: a.bytes, now: Double(now))

                if model[ki] != nil {
                    order.removeAll { $0 == ki }
                } else if order.count >= capacity {
                    let victim = order.removeLast()
                    model[victim] = nil
                    evictions += 1
                }
                order.insert(ki, at: 0)
                model[ki] = ModelEntry(tag: tag, ttl: ttl, stored: now, expires: now + Int(ttl))
            } else {
                let id = UInt16(truncatingIfNeeded: rng.next())
                let qname = Self.randomCase(name, &rng)
                let out = cache.lookup(k, id: id, questionName: qname, now: Double(now))
                if let e = model[ki], e.expires > now {
                    hits += 1
                    order.removeAll { $0 == ki }
                    order.insert(ki, at: 0)
                    let bytes = try #require(out, "op \(op): expected a hit")
                    #expect(Array(bytes[0..<2]) == [UInt8(id >> 8), UInt8(id & 0xFF)], "op \(op): ID")
                    let m = try DNSMessage.parse(bytes)
                    #expect(m.header.id == id)
                    #expect(m.question == k.question)
                    #expect(m.question.name.wire == qname, "op \(op): client's case")
                    #expect((m.edns != nil) == k.edns)
                    let rr = 12 + qname.count + 4
                    #expect(Array(bytes[(rr + 12)..<(rr + 16)]) == e.tag, "op \(op): latest answer")
                    #expect(readBE32(bytes, at: rr + 6) == e.ttl - UInt32(now - e.stored), "op \(op): TTL")
                } else {
                    if model[ki] != nil {
                        model[ki] = nil
                        order.removeAll { $0 == ki }
                    }
                    misses += 1
                    #expect(out == nil, "op \(op): expected a miss")
                }
            }
            #expect(cache.count <= capacity)
            #expect(cache.count == model.count, "op \(op)")
            if cache.count != model.count { break }
        }
        #expect(cache.hits == hits)
        #expect(cache.misses == misses)
        #expect(cache.evictions == evictions)
        #expect(hits > 100 && misses > 100 && evictions > 100, "the run exercised every path")
    }
}
