import DNSWire
import MarkCore
import Testing
import TestSupport
@testable import QueryCore

/// Seeded random events against the state machine, checked against what must always hold.
@Suite("QueryStateMachine properties")
struct QueryStateMachinePropertyTests {
    @Test(arguments: [1, 2, 3, 42])
    func everyQueryGetsExactlyOneAnswerOfItsOwnMark(seed: UInt64) throws {
        var rng = SplitMix64(seed: seed)
        var limits = QueryLimits()
        limits.maxOutstanding = 40
        limits.maxOutstandingPerClient = 12
        limits.serveStale = seed % 2 == 0 ? 600 : 0
        let h = CoreHarness(servers: [CoreHarness.upstreamA, CoreHarness.upstreamB], limits: limits)
        let marks: [UInt32] = [0x10, 0x20, 0x30]
        let names = ["a.example", "b.example", "c.example"]
        // handle -> the mark of the client that asked; answered handles.
        var askedMark: [Int: UInt32] = [:]
        var answered: [Int: Int] = [:]
        // Attempts in flight: ref -> (start, mark of the transaction).
        var running: [AttemptRef: (StartAttempt, UInt32)] = [:]
        var txnMark: [TxnID: UInt32] = [:]

        func record(_ finish: Finish, answer: [UInt8]?) {
            let mark = txnMark[finish.txn]!
            for d in finish.deliveries {
                answered[d.handle, default: 0] += 1
                #expect(askedMark[d.handle] == mark, "an answer crossed marks")
                if let answer, d.bytes == nil {
                    let bytes = d.bytes(answer: answer, finish: finish)
                    #expect(bytes.count >= 12)
                }
            }
            for (ref, _) in running where ref.txn == finish.txn { running[ref] = nil }
        }
        func perform(_ r: AttemptResult, answer: [UInt8]?) {
            if let ended = r.ended { running[ended.ref] = nil }
            switch r.action {
            case .ignored: break
            case .retry(let s): running[s.ref] = (s, txnMark[s.ref.txn]!)
            case .finish(let f): record(f, answer: answer)
            }
        }

        for _ in 0..<5000 {
            #expect(h.core.inFlight >= 0)
            switch Int.random(in: 0..<10, using: &rng) {
            case 0..<4:
                let mark = marks.randomElement(using: &rng)!
                let client = IPAddress.v4(192, 0, 2, UInt8.random(in: 1...6, using: &rng))
                let name = names.randomElement(using: &rng)!
                let edns: (UInt8, UInt16)? = [nil, (0, 1232), (1, 1232)].randomElement(using: &rng)!
                let rd = Bool.random(using: &rng)
                let (intake, arrival, handle) = h.ask(Wire.query(name, id: UInt16(h.nextHandle & 0xFFFF), rd: rd,
                                                               edns: edns), from: client, mark: mark)
                askedMark[handle] = mark
                guard let arrival else {
                    if case .reply = intake { answered[handle, default: 0] += 1 }
                    continue
                }
                switch arrival.action {
                case .answer: answered[handle, default: 0] += 1
                case .joined(let txn): #expect(txnMark[txn] == mark, "joined another mark's query")
                case .start(let s):
                    txnMark[s.ref.txn] = mark
                    running[s.ref] = (s, mark)
                }
            case 4..<7:
                guard let (ref, (start, _)) = running.randomElement(using: &rng) else { continue }
                let rcode: DNSRcode = [.noError, .noError, .servFail, .nxDomain].randomElement(using: &rng)!
                let answer = Wire.answer(to: start.query, rcode: rcode, ttl: UInt32.random(in: 0...30, using: &rng))
                let r = answer.withUnsafeBytes { h.core.answerArrived(ref, expectedID: 0x4242, bytes: $0, now: h.now) }
                perform(r, answer: answer)
            case 7:
                guard let (ref, _) = running.randomElement(using: &rng) else { continue }
                perform(h.core.attemptFailed(ref, outcome: .error, now: h.now), answer: nil)
            case 8:
                h.now += Double.random(in: 0...1, using: &rng)
                while let ref = h.core.expiredAttempt(now: h.now) {
                    perform(h.core.attemptFailed(ref, outcome: .timeout, now: h.now), answer: nil)
                }
            default:
                // A stale event: an attempt that already ended, answered again.
                guard let (ref, (start, _)) = running.randomElement(using: &rng) else { continue }
                let old = AttemptRef(txn: ref.txn, attempt: ref.attempt &- 1)
                let answer = Wire.answer(to: start.query)
                let r = answer.withUnsafeBytes { h.core.answerArrived(old, expectedID: 0x4242, bytes: $0, now: h.now) }
                #expect(r.action.isIgnored)
            }
        }
        // Let every deadline pass: everything still in flight ends.
        for _ in 0..<10 {
            h.now += 5
            while let ref = h.core.expiredAttempt(now: h.now) {
                perform(h.core.attemptFailed(ref, outcome: .timeout, now: h.now), answer: nil)
            }
        }
        #expect(h.core.inFlight == 0 && h.core.transactionCount == 0 && h.core.nextDeadline() == nil)
        #expect(askedMark.count == h.nextHandle)
        let unanswered = askedMark.keys.filter { answered[$0] == nil }
        let twice = answered.filter { $0.value != 1 }
        #expect(unanswered.isEmpty, "queries without an answer: \(unanswered.count)")
        #expect(twice.isEmpty, "queries answered more than once: \(twice.count)")
    }
}
