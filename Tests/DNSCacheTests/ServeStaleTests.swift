import DNSCache
import DNSWire
import Testing

@Suite("AnswerCache: serve-stale (RFC 8767)")
struct ServeStaleTests {
    func ttlValues(_ bytes: [UInt8]) throws -> [UInt32] {
        try readTTLs(bytes).offsets.map {
            UInt32(bytes[$0]) << 24 | UInt32(bytes[$0 + 1]) << 16 | UInt32(bytes[$0 + 2]) << 8 | UInt32(bytes[$0 + 3])
        }
    }

    @Test func expiredEntryIsServedStaleWithTTL30InsideTheWindow() throws {
        var cache = Cache(limits: .init(capacity: 4, staleWindow: 100))
        cache.store(key(), answer: makeAnswer(answers: [.a(10), .a(20)]).bytes, now: 0)
        #expect(cache.lookup(key(), id: 1, questionName: wire("example.com"), now: 15) == nil, "expired: a miss")
        #expect(cache.count == 1, "kept for serve-stale")
        let staleResult = cache.lookupStale(key(), id: 0x4242, questionName: wire("EXAMPLE.com"), now: 50)
        let stale = try #require(staleResult)
        #expect(Array(stale[0..<2]) == [0x42, 0x42])
        #expect(try ttlValues(stale) == [30, 30])
        #expect(cache.lookupStale(key(), id: 1, questionName: wire("example.com"), now: 110.5) == nil, "past the window")
        #expect(cache.count == 0)
    }

    @Test func freshEntriesComeBackAsFromLookup() throws {
        var cache = Cache(limits: .init(capacity: 4, staleWindow: 100))
        cache.store(key(), answer: makeAnswer(answers: [.a(300)]).bytes, now: 0)
        let freshResult = cache.lookupStale(key(), id: 1, questionName: wire("example.com"), now: 100)
        #expect(try ttlValues(try #require(freshResult)) == [200])
    }

    @Test func withoutAWindowExpiredEntriesAreDropped() {
        var cache = Cache(limits: .init(capacity: 4))
        cache.store(key(), answer: makeAnswer(answers: [.a(10)]).bytes, now: 0)
        #expect(cache.lookup(key(), id: 1, questionName: wire("example.com"), now: 11) == nil)
        #expect(cache.count == 0)
        #expect(cache.lookupStale(key(), id: 1, questionName: wire("example.com"), now: 11) == nil)
    }

    @Test func staleEntriesStillCountAgainstCapacity() {
        var cache = Cache(limits: .init(capacity: 2, staleWindow: 1000))
        for (i, n) in ["a.example", "b.example", "c.example"].enumerated() {
            cache.store(key(n), answer: makeAnswer(name: n, answers: [.a(5)]).bytes, now: Double(i))
        }
        #expect(cache.count == 2 && cache.evictions == 1)
        #expect(cache.lookupStale(key("a.example"), id: 1, questionName: wire("a.example"), now: 50) == nil)
        #expect(cache.lookupStale(key("c.example"), id: 1, questionName: wire("c.example"), now: 50) != nil)
    }
}
