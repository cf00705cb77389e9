import MarkCore
import Testing

@Suite("Upstream strategies")
struct UpstreamStrategyTests {
    let a = try! Endpoint.parse("192.0.2.1:53"), b = try! Endpoint.parse("192.0.2.2:53")
    let c = try! Endpoint.parse("192.0.2.3:53")

    @Test func failoverKeepsTheConfiguredOrderWhateverTheTurn() {
        let h = UpstreamHealth()
        for turn in 0..<5 { #expect(h.order([a, b, c], strategy: .failover, now: 0, turn: turn) == [a, b, c]) }
    }

    @Test func roundRobinRotatesOnePerQuery() {
        let h = UpstreamHealth()
        let firsts = (0..<6).map { h.order([a, b, c], strategy: .roundRobin, now: 0, turn: $0) }
        #expect(firsts[0] == [a, b, c])
        #expect(firsts[1] == [b, c, a])
        #expect(firsts[2] == [c, a, b])
        #expect(firsts[3] == [a, b, c])
        #expect(Set(firsts.map { $0[0] }) == [a, b, c], "load reaches every server")
    }

    @Test func roundRobinStillPutsBackedOffServersLast() {
        var h = UpstreamHealth(threshold: 1)
        h.failure(b, now: 0)
        #expect(h.order([a, b, c], strategy: .roundRobin, now: 0.5, turn: 1) == [c, a, b])
    }

    @Test func fastestPrefersTheLowestSmoothedRTT() {
        var h = UpstreamHealth()
        h.success(a, rtt: 0.050); h.success(b, rtt: 0.005); h.success(c, rtt: 0.020)
        #expect(h.order([a, b, c], strategy: .fastest, now: 0, turn: 0) == [b, c, a])
    }

    @Test func fastestMeasuresUnknownServersFirst() {
        var h = UpstreamHealth()
        h.success(a, rtt: 0.001)
        #expect(h.order([a, b, c], strategy: .fastest, now: 0, turn: 0) == [b, c, a])
    }

    @Test func smoothedRTTMovesAnEighthTowardEachSample() {
        var h = UpstreamHealth()
        h.success(a, rtt: 0.080)
        h.success(a, rtt: 0.000)
        #expect(abs(h.srtt(a)! - 0.070) < 1e-9)
    }

    @Test func timeoutsPushAServerBackInFastest() {
        var h = UpstreamHealth(threshold: 100)
        h.success(a, rtt: 0.002); h.success(b, rtt: 0.010)
        #expect(h.order([a, b], strategy: .fastest, now: 0, turn: 0).first == a)
        h.failure(a, now: 0, penalty: 1.5)
        #expect(h.order([a, b], strategy: .fastest, now: 0, turn: 0).first == b)
    }

    @Test func fastestExploresAnotherServerEverySixteenthQuery() {
        var h = UpstreamHealth()
        h.success(a, rtt: 0.001); h.success(b, rtt: 0.002); h.success(c, rtt: 0.003)
        var explored: [Endpoint] = []
        for turn in 0..<64 {
            let first = h.order([a, b, c], strategy: .fastest, now: 0, turn: turn)[0]
            if turn % 16 == 15 { explored.append(first) } else { #expect(first == a) }
        }
        #expect(explored == [b, c, b, c], "each slower server gets measured in turn")
    }

    @Test func successClearsTheBackoffButKeepsTheRTT() {
        var h = UpstreamHealth(threshold: 1)
        h.success(a, rtt: 0.010)
        h.failure(a, now: 0)
        #expect(h.isDown(a, now: 0.5))
        h.success(a)
        #expect(!h.isDown(a, now: 0.5))
        #expect(h.srtt(a) == 0.010)
    }
}

@Suite("UpstreamPlan rounds")
struct UpstreamPlanRoundTests {
    @Test func serversThatTimedOutAreTriedAgainInTheNextRound() {
        var p = UpstreamPlan(upstreamCount: 3, rounds: 2)
        #expect(p.next(after: .timeout) == .send(1))
        #expect(p.next(after: .error) == .send(2))
        #expect(p.next(after: .timeout) == .send(0), "round 2: only the servers that timed out")
        #expect(p.round == 2)
        #expect(p.next(after: .timeout) == .send(2))
        #expect(p.next(after: .timeout) == .servfail, "no third round")
        #expect(p.attempts == 5)
    }

    @Test func refusalsAndErrorsAreNotRetried() {
        var p = UpstreamPlan(upstreamCount: 2, rounds: 2)
        #expect(p.next(after: .unusableAnswer) == .send(1))
        #expect(p.next(after: .error) == .servfail)
    }

    @Test func aSingleServerThatTimesOutGetsOneRetry() {
        var p = UpstreamPlan(upstreamCount: 1, rounds: 2)
        #expect(p.next(after: .timeout) == .send(0))
        #expect(p.next(after: .answer) == .deliver)
        #expect(p.attempts == 2)
    }
}
