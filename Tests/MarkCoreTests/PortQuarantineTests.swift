import Testing
import MarkCore

@Suite("PortQuarantine")
struct PortQuarantineTests {
    static let upstream = try! Endpoint.parse("192.0.2.53:53")
    static let otherUpstream = try! Endpoint.parse("[2001:db8::53]:53")

    func key(_ port: UInt16, _ up: Endpoint = PortQuarantineTests.upstream) -> PortQuarantine.Key {
        PortQuarantine.Key(upstream: up, port: port)
    }

    @Test func defaultHoldCoversUDPTimeout() {
        #expect(PortQuarantine().holdSeconds == 180)
        #expect(PortQuarantine(holdSeconds: 5).holdSeconds == 5)
        #expect(PortQuarantine().count == 0)
    }

    @Test func unknownPortIsAllowedForAnyMark() {
        let q = PortQuarantine()
        #expect(q.allows(key(40000), mark: 1, now: 0))
        #expect(q.allows(key(40000), mark: 0, now: 1e9))
    }

    @Test func sameMarkIsAlwaysAllowed() {
        var q = PortQuarantine(holdSeconds: 180)
        q.record(key(40000), mark: 7, now: 1000)
        #expect(q.allows(key(40000), mark: 7, now: 1000))
        #expect(q.allows(key(40000), mark: 7, now: 1001))
        #expect(q.allows(key(40000), mark: 7, now: 1179))
        #expect(q.allows(key(40000), mark: 7, now: 5000))
    }

    @Test func otherMarkIsRefusedWithinHoldAndAllowedAfter() {
        var q = PortQuarantine(holdSeconds: 180)
        q.record(key(40000), mark: 7, now: 1000)
        #expect(!q.allows(key(40000), mark: 8, now: 1000))
        #expect(!q.allows(key(40000), mark: 0, now: 1000))   // unmarked is a different mark
        #expect(!q.allows(key(40000), mark: 8, now: 1100))
        #expect(!q.allows(key(40000), mark: 8, now: 1180))   // exactly at the hold: still held
        #expect(q.allows(key(40000), mark: 8, now: 1180.001))
        #expect(q.allows(key(40000), mark: 8, now: 2000))
    }

    @Test func holdRunsFromTheLastUse() {
        var q = PortQuarantine(holdSeconds: 180)
        q.record(key(40000), mark: 7, now: 1000)   // open
        q.record(key(40000), mark: 7, now: 1150)   // close, 150 s later
        #expect(!q.allows(key(40000), mark: 8, now: 1250))
        #expect(q.allows(key(40000), mark: 8, now: 1331))
    }

    @Test func newRecordReplacesTheMark() {
        var q = PortQuarantine(holdSeconds: 180)
        q.record(key(40000), mark: 7, now: 1000)
        q.record(key(40000), mark: 8, now: 1200)
        #expect(q.allows(key(40000), mark: 8, now: 1201))
        #expect(!q.allows(key(40000), mark: 7, now: 1201))
        #expect(q.count == 1)
    }

    @Test func keysAreIndependentPerPortAndUpstream() {
        var q = PortQuarantine(holdSeconds: 180)
        q.record(key(40000), mark: 7, now: 1000)
        #expect(q.allows(key(40001), mark: 8, now: 1000))
        #expect(q.allows(key(40000, Self.otherUpstream), mark: 8, now: 1000))
        let samePortOtherUpstreamPort = PortQuarantine.Key(
            upstream: Endpoint(address: Self.upstream.address, port: 5353), port: 40000)
        #expect(q.allows(samePortOtherUpstreamPort, mark: 8, now: 1000))
        #expect(!q.allows(key(40000), mark: 8, now: 1000))
    }

    @Test func sweepKeepsCountBounded() {
        let hold = 10.0
        var q = PortQuarantine(holdSeconds: hold)
        // One new port per 0.1 s for 1000 s: without sweeping this would hold 10_000 entries.
        var maxCount = 0
        for i in 0..<10_000 {
            let now = 100 + Double(i) * 0.1
            q.record(key(UInt16(i % 60_000 + 1024)), mark: UInt32(i % 3), now: now)
            maxCount = max(maxCount, q.count)
        }
        // Entries live at most `hold` past their last use and a sweep runs at least once
        // per `hold`, so at most ~2 * hold / 0.1 entries exist at any time.
        #expect(maxCount <= Int(2 * hold / 0.1) + 2, "max \(maxCount)")
        #expect(q.count <= Int(2 * hold / 0.1) + 2)
    }

    @Test func sweepDropsOnlyExpiredEntries() {
        var q = PortQuarantine(holdSeconds: 100)
        q.record(key(1), mark: 1, now: 1000)   // first record sweeps (now - 0 > 100)
        q.record(key(2), mark: 1, now: 1050)
        q.record(key(3), mark: 1, now: 1090)
        #expect(q.count == 3)
        // 1101 - 1000 > 100: a sweep runs; key 1 is expired (101 s), 2 and 3 are not.
        q.record(key(4), mark: 2, now: 1101)
        #expect(q.count == 3)
        #expect(q.allows(key(1), mark: 9, now: 1101))
        #expect(!q.allows(key(2), mark: 9, now: 1101))
        #expect(!q.allows(key(3), mark: 9, now: 1101))
        #expect(!q.allows(key(4), mark: 9, now: 1101))
    }

    @Test func sweepNeverForgetsAPortStillInHold() {
        // Whatever the sweep removes, `allows` must answer as if nothing was removed.
        var swept = PortQuarantine(holdSeconds: 30)
        var reference: [PortQuarantine.Key: (UInt32, Double)] = [:]
        var state: UInt64 = 99
        func rnd(_ n: UInt64) -> UInt64 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return (state >> 33) % n
        }
        var now = 0.0
        for _ in 0..<5_000 {
            now += Double(rnd(1000)) / 100   // 0 to 10 s steps
            let k = key(UInt16(rnd(50)))
            let mark = UInt32(rnd(3))
            let ref = reference[k].map { $0.0 == mark || now - $0.1 > 30 } ?? true
            #expect(swept.allows(k, mark: mark, now: now) == ref)
            swept.record(k, mark: mark, now: now)
            reference[k] = (mark, now)
        }
    }
}
