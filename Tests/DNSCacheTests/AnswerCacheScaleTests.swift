import DNSCache
import DNSWire
import Testing

/// Many entries: the index grows and rehashes, evictions and expiries free slots that are
/// used again, and long names (longer than any inline or reserved buffer) round-trip.
@Suite("AnswerCache: many entries")
struct AnswerCacheScaleTests {
    static func name(_ i: Int) -> String { "host-\(i).a-rather-long-label-for-the-test.example.com" }

    @Test func thousandsOfNamesKeepExactlyTheMostRecent() throws {
        let capacity = 300
        var cache = Cache(limits: .init(capacity: capacity))
        let total = 1_000
        for i in 0..<total {
            let a = makeAnswer(name: Self.name(i), answers: [.a(300, [10, 0, UInt8(i >> 8), UInt8(i & 0xFF)])])
            cache.store(key(Self.name(i)), answer: a.bytes, now: 0)
        }
        #expect(cache.count == capacity)
        #expect(cache.evictions == total - capacity)
        for i in 0..<total {
            let n = try #require(DNSName(Self.name(i)))
            let hit = cache.lookup(key(Self.name(i)), id: 7, questionName: n.wire, now: 1)
            if i < total - capacity {
                #expect(hit == nil, "entry \(i) was evicted")
            } else {
                let got = try #require(hit, "entry \(i) is among the newest")
                let m = try DNSMessage.parse(got)
                #expect(m.question.name == n)
                #expect(firstAddress(got, questionEnd: m.questionEnd) == [10, 0, UInt8(i >> 8), UInt8(i & 0xFF)])
                #expect(readBE32(got, at: m.questionEnd + 6) == 299, "TTL counted down by the age")
            }
        }
    }

    @Test func expiredSlotsAreReusedAndTheRestStayFindable() throws {
        var cache = Cache(limits: .init(capacity: 100))
        // Even entries live 10 s, odd ones 1000 s.
        for i in 0..<100 {
            let a = makeAnswer(name: Self.name(i), answers: [.a(i % 2 == 0 ? 10 : 1000)])
            cache.store(key(Self.name(i)), answer: a.bytes, now: 0)
        }
        for i in stride(from: 0, to: 100, by: 2) {
            #expect(cache.lookup(key(Self.name(i)), id: 1, questionName: wire(Self.name(i)), now: 20) == nil)
        }
        #expect(cache.count == 50)
        for i in 100..<150 {
            cache.store(key(Self.name(i)), answer: makeAnswer(name: Self.name(i), answers: [.a(1000)]).bytes, now: 20)
        }
        #expect(cache.count == 100)
        #expect(cache.evictions == 0, "the expired entries' places were enough")
        for i in Array(stride(from: 1, to: 100, by: 2)) + Array(100..<150) {
            #expect(cache.lookup(key(Self.name(i)), id: 1, questionName: wire(Self.name(i)), now: 30) != nil, "entry \(i)")
        }
    }
}
