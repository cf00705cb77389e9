@testable import DNSWire
import MarkCore
import MarkPolicy
@testable import QueryCore
import Testing

@Suite("[[set]] fills: from upstream, cache and local data, per mark; the tick's batch")
struct SetFillTests {
    /// Marks 0x10 (kids) and 0x20 (adults); set "vpn" for kids' answers under
    /// video.example (timeout-min 300), set "all" for everyone's (no minimum), local data.
    static func harness() -> CoreHarness {
        let h = CoreHarness()
        var limits = QueryLimits()
        limits.cacheSize = 100
        var local = LocalConfig()
        local.records = [try! LocalRecord.parse("tv.video.example A 10.0.0.7").get()]
        let config = PolicyConfig(
            conntrack: ConntrackConfig(mask: 0xff, onMissing: .unmarked),
            pools: [Pool(name: "default", servers: [CoreHarness.upstreamA])],
            marks: [MarkRule(value: 0x10, name: "kids", action: .forward(pool: "default")),
                    MarkRule(value: 0x20, name: "adults", action: .forward(pool: "default"))],
            local: local,
            sets: [SetRule(name: "vpn", domains: ["video.example"], marks: [0x10], timeoutMin: 300),
                   SetRule(name: "all", domains: ["example"])])
        h.core = QueryStateMachine(policy: PolicyEngine(config), limits: limits)
        return h
    }

    @Test func upstreamAnswerFillsEveryMatchingSetBeforeDelivery() throws {
        let h = Self.harness()
        let (_, arrival, _) = h.ask(Wire.query("www.video.example"), mark: 0x10)
        let start = try #require(arrival?.action.start)
        let finish = try #require(h.answer(start, with: Wire.answer(to: start.query, ttl: 60)).action.finish)
        #expect(finish.fills == [SetFill(set: "vpn", address: [192, 0, 2, 1], timeout: 300),
                                 SetFill(set: "all", address: [192, 0, 2, 1], timeout: 60)])
    }

    @Test func otherMarkFillsOnlyTheSetsItQualifiesFor() throws {
        let h = Self.harness()
        let (_, arrival, _) = h.ask(Wire.query("www.video.example"), mark: 0x20)
        let start = try #require(arrival?.action.start)
        let finish = try #require(h.answer(start, with: Wire.answer(to: start.query)).action.finish)
        #expect(finish.fills.map(\.set) == ["all"])
        let (_, other, _) = h.ask(Wire.query("www.other.test"), mark: 0x10)
        let s2 = try #require(other?.action.start)
        #expect(try #require(h.answer(s2, with: Wire.answer(to: s2.query)).action.finish).fills.isEmpty,
                "a name under no set's domains fills nothing")
    }

    @Test func cacheHitFillsWithTheRemainingTTL() throws {
        let h = Self.harness()
        let (_, arrival, _) = h.ask(Wire.query("www.video.example"), mark: 0x10)
        let start = try #require(arrival?.action.start)
        _ = h.answer(start, with: Wire.answer(to: start.query, ttl: 600))
        h.now += 100
        let (_, hit, _) = h.ask(Wire.query("www.video.example", id: 7), mark: 0x10)
        guard case .answer(_, let source)? = hit?.action else { Issue.record("no cache hit"); return }
        #expect(source == .cache)
        #expect(hit?.fills == [SetFill(set: "vpn", address: [192, 0, 2, 1], timeout: 500),
                               SetFill(set: "all", address: [192, 0, 2, 1], timeout: 500)])
    }

    @Test func localDataFills() throws {
        let h = Self.harness()
        let (_, arrival, _) = h.ask(Wire.query("tv.video.example"), mark: 0x10)
        guard case .answer(_, .local(.local))? = arrival?.action else { Issue.record("not local"); return }
        #expect(arrival?.fills.map(\.set) == ["vpn", "all"])
        #expect(arrival?.fills.first?.address == [10, 0, 0, 7])
    }

    @Test func reloadDoesNotChangeWhatAQueryInFlightFills() throws {
        let h = Self.harness()
        let (_, arrival, _) = h.ask(Wire.query("www.video.example"), mark: 0x10)
        let start = try #require(arrival?.action.start)
        h.core.reload(PolicyEngine(PolicyConfig(pools: [Pool(name: "default", servers: [CoreHarness.upstreamA])])))
        let finish = try #require(h.answer(start, with: Wire.answer(to: start.query)).action.finish)
        #expect(finish.fills.map(\.set) == ["vpn", "all"])
    }

    @Test func batchGroupsPerNftSetDedupesAndChunks() {
        var b = SetBatch()
        b.add(SetFill(set: "vpn", address: [192, 0, 2, 1], timeout: 60))
        b.add(SetFill(set: "vpn", address: [192, 0, 2, 1], timeout: 300))
        b.add(SetFill(set: "vpn", address: [192, 0, 2, 1], timeout: 10))
        b.add(SetFill(set: "vpn", address: [UInt8](repeating: 0x20, count: 16), timeout: 5))
        b.add(SetFill(set: "all", address: [192, 0, 2, 2], timeout: 7))
        b.add(SetFill(set: "vpn", address: [1, 2, 3], timeout: 7))  // not an address: ignored
        #expect(b.count == 3)
        let writes = b.take()
        #expect(b.isEmpty)
        #expect(writes.map(\.nftSet) == ["vpn_v4", "vpn_v6", "all_v4"])
        #expect(writes[0].keys == [192, 0, 2, 1] && writes[0].timeoutsMs == [300_000], "the longest timeout, in ms")
        #expect(writes[1].keyLength == 16 && writes[1].timeoutsMs == [5000])
        #expect(writes[2].set == "all")
        for i in 0..<450 { b.add(SetFill(set: "vpn", address: [10, 0, UInt8(i >> 8), UInt8(i & 0xff)], timeout: 1)) }
        let chunks = b.take()
        #expect(chunks.map(\.count) == [200, 200, 50])
        #expect(chunks[2].key(49) == [10, 0, 1, 193])
    }

    @Test func membershipTellsAddedFromRefreshedAndStaysBounded() {
        var m = SetMembership(capacity: 4)
        let first = m.note(set: "v_v4", address: [1, 1, 1, 1], timeout: 10, now: 0)
        let again = m.note(set: "v_v4", address: [1, 1, 1, 1], timeout: 10, now: 5)
        let otherSet = m.note(set: "w_v4", address: [1, 1, 1, 1], timeout: 10, now: 5)
        let expired = m.note(set: "v_v4", address: [1, 1, 1, 1], timeout: 10, now: 16)
        #expect(!first)
        #expect(again, "written again within its timeout: refreshed")
        #expect(!otherSet, "per set")
        #expect(!expired, "expired: added again")
        for i in 0..<10 { _ = m.note(set: "v_v4", address: [2, 2, 2, UInt8(i)], timeout: 100, now: 20) }
        #expect(m.count <= 4)
    }
}
