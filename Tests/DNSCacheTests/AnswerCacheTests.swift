import DNSCache
import DNSWire
import Testing

@Suite("AnswerCache: store and lookup")
struct AnswerCacheTests {
    @Test func hitReturnsClientIDAndClientQuestionCase() throws {
        var cache = Cache(limits: .init(capacity: 16))
        let a = makeAnswer(id: 0xAAAA, name: "Example.COM", answers: [.a(300)])
        cache.store(key("Example.COM"), answer: a.bytes, now: 0)
        #expect(cache.count == 1)

        let lower = wire("example.com")
        let outResult = cache.lookup(key("example.com"), id: 0x1234, questionName: lower, now: 0)
        let out = try #require(outResult)
        #expect(out.count == a.bytes.count)
        #expect(Array(out[0..<2]) == [0x12, 0x34])
        #expect(Array(out[12..<(12 + lower.count)]) == lower)
        // Everything else (flags, counts, qtype/qclass, records, TTLs at age 0) is as stored.
        var expected = a.bytes
        expected.replaceSubrange(0..<2, with: [0x12, 0x34])
        expected.replaceSubrange(12..<(12 + lower.count), with: lower)
        #expect(out == expected)
        #expect(cache.hits == 1 && cache.misses == 0 && cache.evictions == 0)

        let m = try DNSMessage.parse(out)
        #expect(m.header.id == 0x1234)
        #expect(m.question.name.wire == lower)

        // The stored copy is not changed by a lookup: another client gets its own case/ID.
        let upper = wire("EXAMPLE.com")
        let againResult = cache.lookup(key("example.com"), id: 0xFFFF, questionName: upper, now: 0)
        let again = try #require(againResult)
        #expect(Array(again[0..<2]) == [0xFF, 0xFF])
        #expect(Array(again[12..<(12 + upper.count)]) == upper)
        let originalResult = cache.lookup(key(), id: 0xAAAA, questionName: wire("Example.COM"), now: 0)
        let original = try #require(originalResult)
        #expect(original == a.bytes)
        #expect(cache.hits == 3)
    }

    @Test func questionNameOfAnotherLengthLeavesStoredCase() throws {
        var cache = Cache(limits: .init(capacity: 4))
        let a = makeAnswer(name: "Example.COM", answers: [.a(300)])
        cache.store(key(), answer: a.bytes, now: 0)
        let outResult = cache.lookup(key(), id: 7, questionName: [], now: 0)
        let out = try #require(outResult)
        #expect(Array(out[12..<25]) == wire("Example.COM"))
        #expect(Array(out[0..<2]) == [0, 7])
    }

    @Test func trailingJunkIsNotStored() throws {
        var cache = Cache(limits: .init(capacity: 4))
        let a = makeAnswer(answers: [.a(300)])
        cache.store(key(), answer: a.bytes + [0xDE, 0xAD, 0xBE, 0xEF], now: 0)
        let outResult = cache.lookup(key(), id: 0xABCD, questionName: wire("example.com"), now: 0)
        let out = try #require(outResult)
        #expect(out == a.bytes)
    }

    @Test func ttlsCountedDownByAgeInEverySection() throws {
        var cache = Cache(limits: .init(capacity: 4))
        let k = key(edns: true, dnssecOK: true)
        let a = makeAnswer(answers: [.a(300), .a(300, [192, 0, 2, 2])],
                           authority: [.ns(300, owner: wire("example.com"))],
                           additional: [.a(300, [192, 0, 2, 53], owner: wire("ns1.example.com"))],
                           opt: true, dnssecOK: true)
        cache.store(k, answer: a.bytes, now: 100)

        let outResult = cache.lookup(k, id: 0xABCD, questionName: wire("example.com"), now: 160)
        let out = try #require(outResult)
        #expect(out.count == a.bytes.count)
        for o in a.ttlOffsets {
            #expect(readBE32(out, at: o) == 240, "TTL at \(o)")
        }
        var expected = a.bytes
        for o in a.ttlOffsets { writeBE32(240, into: &expected, at: o) }
        #expect(out == expected, "only the TTL fields change")
        // OPT (payload size, ext rcode, version, DO) untouched.
        let opt = try #require(a.optStart)
        #expect(Array(out[opt..<(opt + 11)]) == Array(a.bytes[opt..<(opt + 11)]))
        #expect(readBE32(out, at: opt + 5) == 0x0000_8000)

        // A later lookup counts from the stored TTLs, not from the previous lookup's output.
        let laterResult = cache.lookup(k, id: 1, questionName: wire("example.com"), now: 300)
        let later = try #require(laterResult)
        for o in a.ttlOffsets { #expect(readBE32(later, at: o) == 100) }
        #expect(Array(later[opt..<(opt + 11)]) == Array(a.bytes[opt..<(opt + 11)]))
    }

    /// Every record is clamped to the entry's lifetime (the smallest TTL), then counted
    /// down: no client keeps a record longer than the cache keeps the answer.
    @Test func recordTTLsAreClampedToTheEntryLifetime() throws {
        var cache = Cache(limits: .init(capacity: 4))
        let a = makeAnswer(answers: [.a(300), .a(500, [192, 0, 2, 2])],
                           authority: [.ns(1000, owner: wire("example.com"))])
        cache.store(key(), answer: a.bytes, now: 0)
        let outResult = cache.lookup(key(), id: 1, questionName: wire("example.com"), now: 60)
        let out = try #require(outResult)
        #expect(a.ttlOffsets.map { readBE32(out, at: $0) } == [240, 240, 240])
    }

    @Test func expiresAtStoredPlusMinimumTTL() throws {
        var cache = Cache(limits: .init(capacity: 4))
        let a = makeAnswer(answers: [.a(300), .a(900, [192, 0, 2, 2])])
        cache.store(key(), answer: a.bytes, now: 100)
        let name = wire("example.com")

        let lastResult = cache.lookup(key(), id: 1, questionName: name, now: 399)
        let last = try #require(lastResult)
        #expect(readBE32(last, at: a.ttlOffsets[0]) == 1)
        #expect(readBE32(last, at: a.ttlOffsets[1]) == 1, "clamped to the entry's lifetime")
        #expect(cache.hits == 1 && cache.misses == 0)

        #expect(cache.lookup(key(), id: 1, questionName: name, now: 400) == nil, "at expiry")
        #expect(cache.misses == 1)
        #expect(cache.hits == 1)
        #expect(cache.count == 0, "an expired entry is dropped")
        #expect(cache.lookup(key(), id: 1, questionName: name, now: 401) == nil)
        #expect(cache.misses == 2)

        // Storing again works after expiry.
        cache.store(key(), answer: a.bytes, now: 500)
        #expect(cache.lookup(key(), id: 1, questionName: name, now: 500) != nil)
    }

    @Test func lookupWellAfterExpiryIsMiss() {
        var cache = Cache(limits: .init(capacity: 4))
        cache.store(key(), answer: makeAnswer(answers: [.a(10)]).bytes, now: 0)
        #expect(cache.lookup(key(), id: 1, questionName: wire("example.com"), now: 1_000_000) == nil)
        #expect(cache.misses == 1 && cache.hits == 0 && cache.count == 0)
    }

    @Test func missOnEmptyCacheIsCounted() {
        var cache = Cache(limits: .init(capacity: 4))
        #expect(cache.lookup(key(), id: 1, questionName: wire("example.com"), now: 0) == nil)
        #expect(cache.misses == 1 && cache.hits == 0 && cache.count == 0)
    }

    @Test func zeroTTLIsNotCached() {
        var cache = Cache(limits: .init(capacity: 4))
        cache.store(key(), answer: makeAnswer(answers: [.a(0), .a(300, [192, 0, 2, 2])]).bytes, now: 0)
        #expect(cache.count == 0)
    }

    @Test func minTTLExtendsLifetime() throws {
        var cache = Cache(limits: .init(capacity: 4, minTTL: 60))
        cache.store(key(), answer: makeAnswer(answers: [.a(10)]).bytes, now: 0)
        #expect(cache.lookup(key(), id: 1, questionName: wire("example.com"), now: 59) != nil)
        #expect(cache.lookup(key(), id: 1, questionName: wire("example.com"), now: 60) == nil)

        // A zero TTL is raised too, so it is cached.
        var c2 = Cache(limits: .init(capacity: 4, minTTL: 30))
        c2.store(key(), answer: makeAnswer(answers: [.a(0)]).bytes, now: 0)
        #expect(c2.count == 1)
        #expect(c2.lookup(key(), id: 1, questionName: wire("example.com"), now: 29) != nil)
        #expect(c2.lookup(key(), id: 1, questionName: wire("example.com"), now: 30) == nil)
    }

    @Test func maxTTLShortensLifetime() throws {
        var cache = Cache(limits: .init(capacity: 4, maxTTL: 3600))
        cache.store(key(), answer: makeAnswer(answers: [.a(100_000)]).bytes, now: 0)
        #expect(cache.lookup(key(), id: 1, questionName: wire("example.com"), now: 3599) != nil)
        #expect(cache.lookup(key(), id: 1, questionName: wire("example.com"), now: 3600) == nil)

        // Default maxTTL is one day.
        var c2 = Cache(limits: .init(capacity: 4))
        c2.store(key(), answer: makeAnswer(answers: [.a(.max)]).bytes, now: 0)
        #expect(c2.lookup(key(), id: 1, questionName: wire("example.com"), now: 86_399) != nil)
        #expect(c2.lookup(key(), id: 1, questionName: wire("example.com"), now: 86_400) == nil)
    }

    @Test func maxTTLDoesNotApplyToNegativeAndMaxNegativeNotToPositive() {
        var cache = Cache(limits: .init(capacity: 4, maxTTL: 100, maxNegativeTTL: 1000))
        cache.store(key("pos.example"), answer: makeAnswer(name: "pos.example", answers: [.a(500)]).bytes, now: 0)
        cache.store(key("neg.example"),
                    answer: makeAnswer(flags: Flags.nxDomain, name: "neg.example",
                                       authority: [.soa(500, minimum: 500)]).bytes, now: 0)
        #expect(cache.lookup(key("pos.example"), id: 1, questionName: wire("pos.example"), now: 100) == nil)
        #expect(cache.lookup(key("neg.example"), id: 1, questionName: wire("neg.example"), now: 499) != nil)
        #expect(cache.lookup(key("neg.example"), id: 1, questionName: wire("neg.example"), now: 500) == nil)
    }
}

@Suite("AnswerCache: negative caching")
struct AnswerCacheNegativeTests {
    static let negativeFlags = [Flags.nxDomain, Flags.noError]

    @Test(arguments: negativeFlags)
    func negativeTTLIsMinOfSOATTLAndMinimum(flags: UInt16) throws {
        let name = wire("nope.example.com")
        // SOA TTL 3600, MINIMUM 300: lives 300 s.
        var cache = Cache(limits: .init(capacity: 4))
        let a = makeAnswer(flags: flags, name: "nope.example.com", authority: [.soa(3600, minimum: 300)])
        cache.store(key("nope.example.com"), answer: a.bytes, now: 1000)
        #expect(cache.count == 1)
        let hitResult = cache.lookup(key("nope.example.com"), id: 9, questionName: name, now: 1299)
        let hit = try #require(hitResult)
        #expect(hit[3] & 0x0F == UInt8(flags & 0x0F), "rcode preserved")
        #expect(Array(hit[0..<2]) == [0, 9])
        #expect(cache.lookup(key("nope.example.com"), id: 9, questionName: name, now: 1300) == nil)

        // SOA TTL 120, MINIMUM 900: lives 120 s.
        var c2 = Cache(limits: .init(capacity: 4))
        c2.store(key("nope.example.com"),
                 answer: makeAnswer(flags: flags, name: "nope.example.com",
                                    authority: [.soa(120, minimum: 900)]).bytes, now: 0)
        #expect(c2.lookup(key("nope.example.com"), id: 9, questionName: name, now: 119) != nil)
        #expect(c2.lookup(key("nope.example.com"), id: 9, questionName: name, now: 120) == nil)
    }

    @Test(arguments: negativeFlags)
    func negativeTTLClampedByMaxNegativeTTL(flags: UInt16) {
        let name = wire("nope.example.com")
        var cache = Cache(limits: .init(capacity: 4, maxNegativeTTL: 60))
        cache.store(key("nope.example.com"),
                    answer: makeAnswer(flags: flags, name: "nope.example.com",
                                       authority: [.soa(3600, minimum: 900)]).bytes, now: 0)
        #expect(cache.lookup(key("nope.example.com"), id: 1, questionName: name, now: 59) != nil)
        #expect(cache.lookup(key("nope.example.com"), id: 1, questionName: name, now: 60) == nil)

        // Default maxNegativeTTL is one hour.
        var c2 = Cache(limits: .init(capacity: 4))
        c2.store(key("nope.example.com"),
                 answer: makeAnswer(flags: flags, name: "nope.example.com",
                                    authority: [.soa(86_400, minimum: 86_400)]).bytes, now: 0)
        #expect(c2.lookup(key("nope.example.com"), id: 1, questionName: name, now: 3599) != nil)
        #expect(c2.lookup(key("nope.example.com"), id: 1, questionName: name, now: 3600) == nil)
    }

    @Test(arguments: negativeFlags)
    func negativeZeroTTLNotCachedUnlessMinTTL(flags: UInt16) {
        let bytes = makeAnswer(flags: flags, name: "nope.example.com", authority: [.soa(3600, minimum: 0)]).bytes
        var cache = Cache(limits: .init(capacity: 4))
        cache.store(key("nope.example.com"), answer: bytes, now: 0)
        #expect(cache.count == 0)

        var c2 = Cache(limits: .init(capacity: 4, minTTL: 20))
        c2.store(key("nope.example.com"), answer: bytes, now: 0)
        #expect(c2.lookup(key("nope.example.com"), id: 1, questionName: wire("nope.example.com"), now: 19) != nil)
        #expect(c2.lookup(key("nope.example.com"), id: 1, questionName: wire("nope.example.com"), now: 20) == nil)
    }

    @Test(arguments: negativeFlags)
    func negativeAnswerSOATTLCountsDown(flags: UInt16) throws {
        var cache = Cache(limits: .init(capacity: 4))
        let k = key("nope.example.com", edns: true)
        let a = makeAnswer(flags: flags, name: "nope.example.com", authority: [.soa(300, minimum: 300)], opt: true)
        cache.store(k, answer: a.bytes, now: 100)
        let outResult = cache.lookup(k, id: 0xABCD, questionName: wire("nope.example.com"), now: 160)
        let out = try #require(outResult)
        var expected = a.bytes
        writeBE32(240, into: &expected, at: a.ttlOffsets[0])
        #expect(out == expected)
    }

    @Test(arguments: negativeFlags)
    func negativeWithoutSOANotCached(flags: UInt16) {
        var cache = Cache(limits: .init(capacity: 4))
        let k = key("nope.example.com")
        cache.store(k, answer: makeAnswer(flags: flags, name: "nope.example.com").bytes, now: 0)
        #expect(cache.count == 0)
        cache.store(k, answer: makeAnswer(flags: flags, name: "nope.example.com",
                                          authority: [.ns(3600, owner: wire("example.com"))]).bytes, now: 0)
        #expect(cache.count == 0)
        cache.store(k, answer: makeAnswer(flags: flags, name: "nope.example.com",
                                          additional: [.soa(3600, minimum: 300)], opt: true).bytes, now: 0)
        #expect(cache.count == 0, "an SOA outside authority does not count")
        #expect(cache.lookup(k, id: 1, questionName: wire("nope.example.com"), now: 0) == nil)
    }

    @Test func truncatedSOAIsNotCached() {
        var cache = Cache(limits: .init(capacity: 4))
        cache.store(key("nope.example.com"),
                    answer: makeAnswer(flags: Flags.nxDomain, name: "nope.example.com",
                                       authority: [.soa(3600, minimum: 300, cut: 4)]).bytes, now: 0)
        #expect(cache.count == 0)
    }
}

@Suite("AnswerCache: what is not cached")
struct AnswerCacheRejectTests {
    @Test(arguments: [
        ("TC", Flags.truncated), ("SERVFAIL", Flags.servFail), ("REFUSED", Flags.refused),
        ("FORMERR", Flags.formErr), ("NOTIMP", Flags.notImp), ("query (QR clear)", Flags.query),
        ("TC+NXDOMAIN", UInt16(0x8383)),
    ])
    func notCachedForFlags(label: String, flags: UInt16) {
        var cache = Cache(limits: .init(capacity: 4))
        // Records and an SOA are present, so only the flags can keep it out.
        let a = makeAnswer(flags: flags, answers: [.a(300)], authority: [.soa(3600, minimum: 300)])
        cache.store(key(), answer: a.bytes, now: 0)
        #expect(cache.count == 0, "\(label)")
        #expect(cache.lookup(key(), id: 1, questionName: wire("example.com"), now: 0) == nil)
        let nodata = makeAnswer(flags: flags, authority: [.soa(3600, minimum: 300)])
        cache.store(key(), answer: nodata.bytes, now: 0)
        #expect(cache.count == 0, "\(label) without answers")
    }

    @Test func servFailDoesNotReplaceGoodEntryWithItself() throws {
        var cache = Cache(limits: .init(capacity: 4))
        let good = makeAnswer(answers: [.a(300)])
        cache.store(key(), answer: good.bytes, now: 0)
        cache.store(key(), answer: makeAnswer(flags: Flags.servFail).bytes, now: 1)
        let outResult = cache.lookup(key(), id: 0xABCD, questionName: wire("example.com"), now: 1)
        let out = try #require(outResult)
        #expect(out[3] & 0x0F == 0, "still the NOERROR answer")
    }

    @Test func questionMustMatchKey() {
        var cache = Cache(limits: .init(capacity: 8))
        let k = key("example.com")
        cache.store(k, answer: makeAnswer(name: "example.org", answers: [.a(300)]).bytes, now: 0)
        cache.store(k, answer: makeAnswer(name: "www.example.com", answers: [.a(300)]).bytes, now: 0)
        cache.store(k, answer: makeAnswer(type: DNSType.aaaa, answers: [.a(300)]).bytes, now: 0)
        cache.store(k, answer: makeAnswer(qclass: 3, answers: [.a(300)]).bytes, now: 0)
        #expect(cache.count == 0)
        cache.store(key("example.com", type: DNSType.aaaa), answer: makeAnswer(answers: [.a(300)]).bytes, now: 0)
        #expect(cache.count == 0)
        #expect(cache.lookup(k, id: 1, questionName: wire("example.com"), now: 0) == nil)
        // Same name in another case does match.
        cache.store(k, answer: makeAnswer(name: "EXAMPLE.com", answers: [.a(300)]).bytes, now: 0)
        #expect(cache.count == 1)
    }

    @Test func compressedQuestionNameNotCached() {
        // The question name is a pointer to offset 8 (NSCOUNT = 0 reads as the root
        // name). It parses as "." but is not the plain form the lookup rewrites in place.
        var b: [UInt8] = []
        DNSHeader(id: 0x0101, flags: Flags.noError, qdcount: 1, ancount: 1).write(into: &b)
        b += ptr(8) + be16(DNSType.a) + be16(1)
        b += [0] + be16(DNSType.a) + be16(1) + be32(300) + be16(4) + [192, 0, 2, 1]
        let rootKey = Cache.Key(view: "alice", question: DNSQuestion(name: .root, type: DNSType.a),
                                edns: false, dnssecOK: false)
        var cache = Cache(limits: .init(capacity: 4))
        cache.store(rootKey, answer: b, now: 0)
        #expect(cache.count == 0)

        // Control: the same answer with the question name uncompressed is cached.
        let plain = makeAnswer(name: ".", answers: [.a(300, owner: [0])])
        cache.store(rootKey, answer: plain.bytes, now: 0)
        #expect(cache.count == 1)
    }

    @Test func unparseableAnswersNotCached() {
        var cache = Cache(limits: .init(capacity: 4))
        let good = makeAnswer(answers: [.a(300)]).bytes
        cache.store(key(), answer: [], now: 0)
        cache.store(key(), answer: Array(good.prefix(11)), now: 0)
        cache.store(key(), answer: Array(good.dropLast()), now: 0)
        var badPointer = good
        badPointer[good.count - 16] = 0xC0
        badPointer[good.count - 15] = 0xFF  // owner pointer forwards
        cache.store(key(), answer: badPointer, now: 0)
        #expect(cache.count == 0)
        cache.store(key(), answer: good, now: 0)
        #expect(cache.count == 1)
    }
}
