import DNSWire
import MarkCore
import Testing
@testable import QueryCore

@Suite("QueryStateMachine")
struct QueryStateMachineTests {
    @Test func answerIsCachedAndAHitGetsTheClientsIDAndCase() throws {
        let h = CoreHarness()
        let q = Wire.query("Example.COM", id: 7)
        let start = try #require(h.ask(q).arrival?.action.start)
        let finish = try #require(h.answer(start, with: Wire.answer(to: start.query)).action.finish)
        #expect(finish.deliveries.count == 1 && finish.deliveries[0].source == .upstream(CoreHarness.upstreamA))
        #expect(h.core.inFlight == 0)
        let hit = try #require(h.ask(Wire.query("eXample.com", id: 9)).arrival?.action.answer)
        #expect(hit.source == .cache && Wire.id(hit.bytes) == 9)
        #expect(Array(hit.bytes[12..<25]) == DNSName("eXample.com")!.wire)
        #expect(h.core.counters.cacheHits == 1)
    }

    @Test func recursionDesiredIsPartOfTheCacheKey() throws {
        let h = CoreHarness()
        let start = try #require(h.ask(Wire.query("a.example", rd: true)).arrival?.action.start)
        _ = h.answer(start, with: Wire.answer(to: start.query))
        // RD=0 never gets the RD=1 answer (RFC 1035 4.1.1: RD is copied into the response).
        let second = try #require(h.ask(Wire.query("a.example", rd: false)).arrival?.action.start)
        #expect(second.query[2] & 0x01 == 0, "the upstream copy keeps the client's RD")
        let finish = try #require(h.answer(second, with: Wire.answer(to: second.query)).action.finish)
        let bytes = finish.deliveries[0].bytes(answer: Wire.answer(to: second.query), finish: finish)
        #expect(!Wire.rd(bytes))
        let hit = try #require(h.ask(Wire.query("a.example", rd: true)).arrival?.action.answer)
        #expect(Wire.rd(hit.bytes))
    }

    @Test func ednsVersionOneIsAnsweredBadversAndNeverReachesTheCache() throws {
        let h = CoreHarness()
        let (intake, arrival, _) = h.ask(Wire.query("v.example", id: 5, edns: (1, 1232)))
        guard case .reply(let bytes) = intake else { Issue.record("not answered at intake"); return }
        #expect(arrival == nil)
        let m = try DNSMessage.parse(bytes)
        #expect(m.header.isResponse && m.header.rcode == 0 && Wire.id(bytes) == 5)
        // BADVERS = 16: extended rcode 1 in the OPT TTL's first byte, version 0.
        let opt = bytes.count - 11
        #expect(bytes[opt + 1] == 0 && bytes[opt + 2] == 41 && bytes[opt + 5] == 1 && bytes[opt + 6] == 0)
        #expect(h.core.counters.badVersion == 1 && h.core.transactionCount == 0)
    }

    @Test func versionOneQueriesNeverJoinVersionZeroOnes() throws {
        let h = CoreHarness()
        let leader = try #require(h.ask(Wire.query("c.example", edns: (0, 1232))).arrival?.action.start)
        // Another client of the same mark asks the same with EDNS version 1: answered
        // BADVERS itself, and the version-0 query in flight still gets its own answer.
        let (intake, _, _) = h.ask(Wire.query("c.example", edns: (1, 1232)), from: .v4(192, 0, 2, 11))
        guard case .reply = intake else { Issue.record("version 1 not answered at intake"); return }
        let finish = try #require(h.answer(leader, with: Wire.answer(to: leader.query)).action.finish)
        #expect(finish.deliveries.count == 1 && finish.deliveries[0].rcode == 0)
    }

    @Test func followersGetTheirOwnIDCaseAndRD() throws {
        let h = CoreHarness()
        let start = try #require(h.ask(Wire.query("www.example", id: 1)).arrival?.action.start)
        let joined = h.ask(Wire.query("WWW.example", id: 2), from: .v4(192, 0, 2, 11))
        #expect(joined.arrival?.action.isJoined == true)
        // Another mark never joins.
        let other = h.ask(Wire.query("www.example", id: 3), from: .v4(192, 0, 2, 12), mark: 0x20)
        #expect(other.arrival?.action.start != nil)
        #expect(h.core.counters.coalesced == 1 && h.core.inFlight == 3)
        let upstream = Wire.answer(to: start.query)
        let finish = try #require(h.answer(start, with: upstream).action.finish)
        #expect(finish.deliveries.map(\.handle) == [0, 1])
        let leader = finish.deliveries[0].bytes(answer: upstream, finish: finish)
        let follower = finish.deliveries[1].bytes(answer: upstream, finish: finish)
        #expect(Wire.id(leader) == 1 && Wire.id(follower) == 2)
        #expect(Array(follower[12..<25]) == DNSName("WWW.example")!.wire)
        #expect(Wire.rd(leader) && Wire.rd(follower))
        #expect(h.core.inFlight == 1)
    }

    @Test func rdZeroAndRdOneAreNotCoalesced() throws {
        let h = CoreHarness(limits: { var l = QueryLimits(); l.cacheSize = 0; return l }())
        _ = try #require(h.ask(Wire.query("r.example", rd: true)).arrival?.action.start)
        let second = h.ask(Wire.query("r.example", rd: false), from: .v4(192, 0, 2, 11))
        #expect(second.arrival?.action.start != nil, "RD=0 started its own query")
    }

    @Test func failoverTimelineWithASecondRoundInsideTheDeadline() throws {
        let h = CoreHarness(servers: [CoreHarness.upstreamA, CoreHarness.upstreamB])
        let first = try #require(h.ask(Wire.query("f.example")).arrival?.action.start)
        #expect(first.upstream == CoreHarness.upstreamA && first.deadline == h.now + 1.5)
        let next = h.core.nextDeadline()
        #expect(next == first.deadline)
        let early = h.core.expiredAttempt(now: h.now + 1)
        #expect(early == nil)
        func timeOut(_ h: CoreHarness) -> AttemptResult.Action? {
            guard let ref = h.core.expiredAttempt(now: h.now) else { return nil }
            return h.core.attemptFailed(ref, outcome: .timeout, now: h.now).action
        }
        h.now += 1.5
        let second = try #require(timeOut(h)?.retry)
        #expect(second.upstream == CoreHarness.upstreamB && second.ref.attempt == 2)
        h.now += 1.5
        let third = try #require(timeOut(h)?.retry)
        // Second round: A again, with what is left of the 4 s budget.
        #expect(third.upstream == CoreHarness.upstreamA && third.deadline == 104)
        #expect(h.core.counters.upstreamRetries == 1)
        h.now = 104
        let finish = try #require(timeOut(h)?.finish)
        #expect(finish.deliveries[0].rcode == DNSRcode.servFail.rawValue && finish.deliveries[0].source == .upstreamFailed)
        #expect(h.core.counters.upstreamTimeouts == 3 && h.core.inFlight == 0 && h.core.nextDeadline() == nil)
    }

    @Test func eventsOfAnOldAttemptAreIgnored() throws {
        let h = CoreHarness(servers: [CoreHarness.upstreamA, CoreHarness.upstreamB])
        let first = try #require(h.ask(Wire.query("late.example")).arrival?.action.start)
        let second = try #require(h.core.attemptFailed(first.ref, outcome: .error, now: h.now).action.retry)
        // The first attempt's timer, a second failure report and a late answer: all stale.
        h.now += 1.5
        #expect(h.core.expiredAttempt(now: h.now) == second.ref)
        #expect(h.core.attemptFailed(first.ref, outcome: .error, now: h.now).action.isIgnored)
        #expect(h.answer(first, with: Wire.answer(to: first.query)).action.isIgnored)
        #expect(h.core.counters.unmatchedAnswers == 1)
        let current = h.core.isCurrent(second.ref)
        #expect(current)
    }

    @Test func mismatchedAnswersAreIgnoredAndUnusableOnesFailOver() throws {
        let h = CoreHarness(servers: [CoreHarness.upstreamA, CoreHarness.upstreamB])
        let first = try #require(h.ask(Wire.query("m.example")).arrival?.action.start)
        #expect(h.answer(first, with: Wire.answer(to: Wire.query("other.example"))).action.isIgnored)
        #expect(h.answer(first, with: Wire.answer(to: first.query), id: 1).action.isIgnored)
        #expect(h.core.counters.mismatchedAnswers == 2)
        let retry = h.answer(first, with: Wire.answer(to: first.query, rcode: .servFail)).action.retry
        #expect(retry?.upstream == CoreHarness.upstreamB && h.core.counters.upstreamUnusable == 1)
    }

    @Test func questionlessTruncationBecomesOurOwnTCAnswer() throws {
        let h = CoreHarness()
        let start = try #require(h.ask(Wire.query("tc.example", id: 77)).arrival?.action.start)
        var bare: [UInt8] = []
        DNSHeader(id: 0x4242, flags: 0x8000 | 0x0200).write(into: &bare)
        let finish = try #require(h.answer(start, with: bare).action.finish)
        let bytes = finish.deliveries[0].bytes(answer: bare, finish: finish)
        let m = try DNSMessage.parse(bytes)
        #expect(m.header.isTruncated && Wire.id(bytes) == 77 && m.question.name == DNSName("tc.example")!)
        // A datagram cut by the receive buffer is relayed as truncated too.
        let again = try #require(h.ask(Wire.query("tc.example", id: 78)).arrival?.action.start)
        let cut = Wire.answer(to: again.query)
        let result = cut.withUnsafeBytes { h.core.answerArrived(again.ref, expectedID: 0x4242, bytes: $0, cut: true, now: 100) }
        #expect(result.action.finish?.replacement != nil)
    }

    @Test func serveStaleWhenEveryServerIsBackedOff() throws {
        var limits = QueryLimits()
        limits.serveStale = 3600
        let h = CoreHarness(limits: limits)
        let start = try #require(h.ask(Wire.query("s.example")).arrival?.action.start)
        _ = h.answer(start, with: Wire.answer(to: start.query, ttl: 10))
        h.now += 20  // expired
        // Three failures in a row back the only server off.
        for _ in 0..<3 {
            let s = try #require(h.ask(Wire.query("s.example")).arrival?.action.start)
            let f = try #require(h.core.attemptFailed(s.ref, outcome: .error, now: h.now).action.finish)
            #expect(f.deliveries[0].source == .staleAfterFailure)
        }
        let stale = try #require(h.ask(Wire.query("s.example", id: 3)).arrival?.action.answer)
        #expect(stale.source == .stale && Wire.id(stale.bytes) == 3)
        #expect(h.core.counters.staleServed == 4)
    }

    @Test func globalAndPerClientOverloadGetServfail() throws {
        var limits = QueryLimits()
        limits.maxOutstanding = 3
        limits.maxOutstandingPerClient = 2
        let h = CoreHarness(limits: limits)
        let a: IPAddress = .v4(192, 0, 2, 1), b: IPAddress = .v4(192, 0, 2, 2)
        #expect(h.ask(Wire.query("1.example"), from: a).arrival?.action.start != nil)
        #expect(h.ask(Wire.query("2.example"), from: a).arrival?.action.start != nil)
        let perClient = try #require(h.ask(Wire.query("3.example"), from: a).arrival?.action.answer)
        #expect(Wire.rcode(perClient.bytes) == DNSRcode.servFail.rawValue)
        #expect(h.ask(Wire.query("4.example"), from: b).arrival?.action.start != nil)
        let global = try #require(h.ask(Wire.query("5.example"), from: .v4(192, 0, 2, 3)).arrival?.action.answer)
        #expect(Wire.rcode(global.bytes) == DNSRcode.servFail.rawValue)
        #expect(h.core.counters.overload == 2 && h.core.inFlight == 3)
    }

    @Test func drainingRefusesNewWorkAndReportsTheLastFinish() throws {
        let h = CoreHarness()
        let start = try #require(h.ask(Wire.query("d.example")).arrival?.action.start)
        let idle = h.core.drain()
        #expect(!idle)
        let refused = try #require(h.ask(Wire.query("e.example")).arrival?.action.answer)
        #expect(Wire.rcode(refused.bytes) == DNSRcode.servFail.rawValue)
        let finish = try #require(h.answer(start, with: Wire.answer(to: start.query)).action.finish)
        #expect(finish.drained)
        // Cache hits are still answered while draining.
        #expect(h.ask(Wire.query("d.example")).arrival?.action.answer?.source == .cache)
    }

    @Test func intakeClassifiesMalformedAndOtherOpcodes() {
        let h = CoreHarness()
        guard case .drop = h.ask([1, 2, 3]).intake else { Issue.record("short message not dropped"); return }
        var response = Wire.query("x.example")
        response[2] |= 0x80
        guard case .drop = h.ask(response).intake else { Issue.record("response not dropped"); return }
        guard case .reply(let notimp) = h.ask(Wire.query("x.example", opcode: 2)).intake,
              Wire.rcode(notimp) == DNSRcode.notImp.rawValue else { Issue.record("no NOTIMP"); return }
        var broken = Wire.query("x.example")
        broken.removeLast(3)
        guard case .reply(let formerr) = h.ask(broken).intake, Wire.rcode(formerr) == DNSRcode.formErr.rawValue
        else { Issue.record("no FORMERR"); return }
        #expect(h.core.counters.droppedMalformed == 2 && h.core.counters.notimp == 1 && h.core.counters.formerr == 1)
        #expect(h.core.counters.queriesUDP == 4)
    }
}

@Suite("Intake")
struct IntakeTests {
    @Test func aCutDatagramIsAnsweredFormerrFromItsHeaderAlone() {
        var counters = Counters()
        // A well-formed query, but the receive buffer cut it: never parsed as a query.
        let q = Wire.query("cut.example", id: 99)
        let verdict = q.withUnsafeBytes { Intake.classify($0, cut: true, counters: &counters) }
        guard case .reply(let bytes) = verdict else { Issue.record("not answered"); return }
        #expect(Wire.id(bytes) == 99 && Wire.rcode(bytes) == DNSRcode.formErr.rawValue && bytes.count == 12)
        #expect(counters.formerr == 1)
    }
}

@Suite("QueryStateMachine RD")
struct RecursionDesiredTests {
    @Test func aCacheHitCarriesTheClientsRDEvenWhenTheUpstreamSetItWrongly() throws {
        let h = CoreHarness()
        let start = try #require(h.ask(Wire.query("w.example", rd: false)).arrival?.action.start)
        var answer = Wire.answer(to: start.query)
        answer[2] |= 0x01  // a non-compliant upstream: RD set although the query had none
        let finish = try #require(h.answer(start, with: answer).action.finish)
        #expect(!Wire.rd(finish.deliveries[0].bytes(answer: answer, finish: finish)))
        let hit = try #require(h.ask(Wire.query("w.example", rd: false)).arrival?.action.answer)
        #expect(hit.source == .cache && !Wire.rd(hit.bytes))
    }
}
