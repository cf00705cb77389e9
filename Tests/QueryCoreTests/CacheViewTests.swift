import DNSCache
@testable import DNSWire
import MarkPolicy
@testable import QueryCore
import Testing

/// `CacheView` hashes its marks only (its names are left out for speed): views that differ
/// only by a name collide in the hash but stay different keys, in the cache and in the
/// coalescing table, and a plan's hash taken once is the one the cache would take.
@Suite("CacheView and the hash taken once")
struct CacheViewTests {
    let question = DNSQuestion(name: DNSName("www.example.com")!, type: 1)

    func view(pool: String, name: String = "staff", kind: ActionKind = .forward) -> CacheView {
        CacheView(view: PolicyView(mark: 0x10, kind: kind, name: name), pool: pool, upstreamMark: 0x10)
    }

    func key(_ v: CacheView) -> CacheKey {
        CacheKey(view: v, question: question, edns: false, dnssecOK: false, maxSize: 512)
    }

    func answer(_ last: UInt8) -> [UInt8] {
        let query = Wire.query("www.example.com")
        var a = Wire.answer(to: query)
        a[a.count - 1] = last  // the A record's last byte tells the answers apart
        return a
    }

    @Test func viewsThatDifferOnlyByNameAreDifferentKeys() {
        let a = view(pool: "wan1"), b = view(pool: "wan2"), c = view(pool: "wan1", name: "guests"),
            d = view(pool: "wan1", kind: .walledGarden)
        #expect(a.hashValue == b.hashValue)  // the point: no string hashed
        #expect(a != b && a != c && a != d)
        #expect(key(a) != key(b))
        #expect(InflightKey(cache: key(a), proto: .udp) != InflightKey(cache: key(b), proto: .udp))
    }

    @Test func collidingViewsKeepTheirOwnEntries() {
        var cache = AnswerCache<CacheView>(limits: .init(capacity: 8))
        cache.store(key(view(pool: "wan1")), answer: answer(1), now: 0)
        cache.store(key(view(pool: "wan2")), answer: answer(2), now: 0)
        let name = question.name.wire
        let one = cache.lookup(key(view(pool: "wan1")), id: 7, questionName: name, now: 1)
        let two = cache.lookup(key(view(pool: "wan2")), id: 7, questionName: name, now: 1)
        let three = cache.lookup(key(view(pool: "wan3")), id: 7, questionName: name, now: 1)
        #expect(one?.last == 1 && two?.last == 2)
        #expect(three == nil)
    }

    @Test func thePlansHashIsTheKeysHash() throws {
        let query = try DNSMessage.parse(Wire.query("www.example.com"))
        let plan = ForwardPlan(query: query, proto: .udp, view: view(pool: "wan1"))
        #expect(plan.cacheHash == plan.cacheKey.hashValue)
        #expect(plan.inflightKey == InflightKey(cache: plan.cacheKey, proto: .udp))
        #expect(plan.inflightKey.hashValue == InflightKey(cache: plan.cacheKey, proto: .udp).hashValue)
    }
}
