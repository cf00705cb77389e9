import Testing
import MarkCore

@Suite("UpstreamPlan")
struct UpstreamPlanTests {
    @Test func startsAtTheFirstUpstream() {
        let p = UpstreamPlan(upstreamCount: 3)
        #expect(p.start == .send(0))
        #expect(p.current == 0)
        #expect(p.attempts == 1)
        #expect(p.count == 3)
    }

    @Test func answerIsDeliveredWithoutMoving() {
        var p = UpstreamPlan(upstreamCount: 3)
        #expect(p.next(after: .answer) == .deliver)
        #expect(p.current == 0)
        #expect(p.attempts == 1)
    }

    @Test(arguments: [UpstreamPlan.Outcome.timeout, .error, .unusableAnswer])
    func failureMovesToTheNextUpstream(_ outcome: UpstreamPlan.Outcome) {
        var p = UpstreamPlan(upstreamCount: 3)
        #expect(p.next(after: outcome) == .send(1))
        #expect(p.current == 1 && p.attempts == 2)
        #expect(p.next(after: outcome) == .send(2))
        #expect(p.current == 2 && p.attempts == 3)
        #expect(p.next(after: outcome) == .servfail)
        #expect(p.current == 2 && p.attempts == 3)
        // Exhausted stays exhausted.
        #expect(p.next(after: outcome) == .servfail)
        #expect(p.attempts == 3)
    }

    @Test(arguments: [UpstreamPlan.Outcome.timeout, .error, .unusableAnswer])
    func singleUpstreamFailureIsServfail(_ outcome: UpstreamPlan.Outcome) {
        var p = UpstreamPlan(upstreamCount: 1)
        #expect(p.start == .send(0))
        #expect(p.next(after: outcome) == .servfail)
        #expect(p.current == 0 && p.attempts == 1)
    }

    @Test func mixedOutcomesThenAnswer() {
        var p = UpstreamPlan(upstreamCount: 4)
        #expect(p.next(after: .timeout) == .send(1))
        #expect(p.next(after: .unusableAnswer) == .send(2))
        #expect(p.next(after: .answer) == .deliver)
        #expect(p.current == 2)
        #expect(p.attempts == 3)
    }

    @Test func answerFromTheLastUpstreamIsDelivered() {
        var p = UpstreamPlan(upstreamCount: 2)
        #expect(p.next(after: .error) == .send(1))
        #expect(p.next(after: .answer) == .deliver)
        #expect(p.attempts == 2)
    }

    @Test func everyUpstreamIsTriedExactlyOnceInOrder() {
        for n in 1...10 {
            var p = UpstreamPlan(upstreamCount: n)
            var sent: [Int] = []
            var action = p.start
            while case .send(let i) = action {
                sent.append(i)
                action = p.next(after: .timeout)
            }
            #expect(action == .servfail)
            #expect(sent == Array(0..<n))
            #expect(p.attempts == n)
        }
    }
}
