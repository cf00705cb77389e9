import DNSCache
import DNSWire
import HeapModule
import MarkCore

extension QueryStateMachine {
    /// An upstream answered attempt `ref` with `bytes`. `expectedID` is the ID the shell
    /// sent it with. A mismatched answer (wrong ID or question) is ignored and counted;
    /// on a TCP connection the shell then fails the attempt (the stream cannot be trusted).
    /// `cut`: see `UpstreamAnswer.classify`.
    public mutating func answerArrived(_ ref: AttemptRef, expectedID: UInt16, bytes: UnsafeRawBufferPointer,
                                       cut: Bool = false, now: Double) -> AttemptResult {
        guard txns.attempt(ref.txn) == ref.attempt,
              let verdict = txns.update(ref.txn, { txn in
                  UpstreamAnswer.classify(bytes, expectedID: expectedID, question: txn.leader.query.question, cut: cut)
              })
        else {
            counters.unmatchedAnswers += 1
            return .ignored
        }
        switch verdict {
        case .mismatched:
            counters.mismatchedAnswers += 1
            return .ignored
        case .unusable:
            counters.upstreamUnusable += 1
            return attemptFailed(ref, outcome: .unusableAnswer, now: now)
        case .usable(let length, let rcode, let truncated):
            let txn = txns.remove(ref.txn)!
            health.success(txn.current, rtt: now - txn.attemptStarted)
            if truncated { counters.truncatedRelayed += 1 }
            let ended = Self.attemptEnd(ref, txn, outcome: nil)
            if limits.cacheSize > 0, let key = txn.cacheKey {
                cache.store(key, answer: Array(bytes.prefix(length)), now: now, hash: txn.cacheHash)
            }
            // Over TCP/TLS/HTTPS the answer may not fit a UDP client: TC (the cache keeps it all).
            let tc = AnswerFit.truncated(for: txn.leader.query, proto: txn.proto, length: length, rcode: rcode)
            if tc != nil { counters.truncatedRelayed += 1 }
            var done = finish(ref.txn, txn, answerLength: tc?.count ?? length, rcode: rcode, replacement: tc, now: now)
            if !txn.sets.isEmpty {
                done.fills = SetFill.fills(txn.sets, answer: UnsafeRawBufferPointer(rebasing: bytes.prefix(length)))
            }
            return AttemptResult(ended: ended, action: .finish(done))
        case .truncatedWithoutQuestion:
            let txn = txns.remove(ref.txn)!
            health.success(txn.current, rtt: now - txn.attemptStarted)
            counters.truncatedRelayed += 1
            var tc = DNSResponseBuilder.errorResponse(to: txn.leader.query, rcode: .noError)
            tc[2] |= 0x02
            let ended = Self.attemptEnd(ref, txn, outcome: nil)
            return AttemptResult(ended: ended, action: .finish(finish(ref.txn, txn, answerLength: tc.count, rcode: 0,
                                                                      replacement: tc, now: now)))
        }
    }

    /// Attempt `ref` failed: no answer in time (`.timeout`, from `expiredAttempt`), the
    /// upstream could not be reached (`.error`), or answered uselessly. `penalise: false`
    /// for failures of our own (a full send buffer) that say nothing of the server. The
    /// plan then picks the next server, a second round for servers that timed out while
    /// the budget lasts, or the end (serve-stale or SERVFAIL for every waiting client).
    public mutating func attemptFailed(_ ref: AttemptRef, outcome: UpstreamPlan.Outcome, penalise: Bool = true,
                                       now: Double) -> AttemptResult {
        guard txns.attempt(ref.txn) == ref.attempt,
              let (ended, next, deadline, round) = txns.update(ref.txn, { txn in
                  (Self.attemptEnd(ref, txn, outcome: outcome), txn.plan.next(after: outcome), txn.deadline, txn.plan.round)
              })
        else { return .ignored }
        let server = ended.upstream
        if outcome == .timeout { counters.upstreamTimeouts += 1 }
        switch outcome {
        case _ where !penalise: break
        case .unusableAnswer: health.success(server, rtt: now - ended.started)
        case .timeout: health.failure(server, now: now, penalty: limits.upstreamTimeout)
        case .error, .answer: health.failure(server, now: now)
        }
        switch next {
        case .send where now < deadline:
            if round > 1 { counters.upstreamRetries += 1 }
            return AttemptResult(ended: ended, action: .retry(startAttempt(ref.txn, now: now)!))
        case .send, .deliver, .servfail:
            let txn = txns.remove(ref.txn)!
            return AttemptResult(ended: ended, action: .finish(finish(ref.txn, txn, answerLength: nil, rcode: 0,
                                                                      replacement: nil, now: now)))
        }
    }

    /// Starts the next attempt of `id` at the plan's current server, with its deadline.
    mutating func startAttempt(_ id: TxnID, now: Double) -> StartAttempt? {
        guard let attempt = txns.nextAttempt(id) else { return nil }
        let ref = AttemptRef(txn: id, attempt: attempt)
        let timeout = limits.upstreamTimeout
        let start = txns.update(id) { txn -> StartAttempt in
            txn.attemptStarted = now
            return StartAttempt(ref: ref, upstream: txn.current, proto: txn.proto, mark: txn.mark,
                                query: txn.upstreamQuery, deadline: min(now + timeout, txn.deadline))
        }!
        deadlines.insert(AttemptDeadline(at: start.deadline, ref: ref))
        return start
    }

    private static func attemptEnd(_ ref: AttemptRef, _ txn: borrowing Transaction,
                                   outcome: UpstreamPlan.Outcome?) -> AttemptEnd {
        AttemptEnd(ref: ref, upstream: txn.current, proto: txn.proto, mark: txn.mark, started: txn.attemptStarted,
                   outcome: outcome)
    }

    /// Ends transaction `id` (already moved out of the table): one delivery for the leader
    /// and one per follower, each with its own ID, name case and RD. Without an answer,
    /// each gets a stale answer when serve-stale has one, else SERVFAIL.
    private mutating func finish(_ id: TxnID, _ txn: borrowing Transaction, answerLength: Int?, rcode: UInt8,
                                 replacement: [UInt8]?, now: Double) -> Finish {
        if let key = txn.inflightKey, let i = inflight.index(forKey: key), inflight.values[i] == id {
            inflight.remove(at: i)
        }
        var deliveries: [Delivery] = []
        deliveries.reserveCapacity(1 + txn.followers.count)
        var staleFills: [SetFill] = []
        let source = AnswerSource.upstream(txn.current)
        func deliver(_ waiter: borrowing Waiter) {
            inFlight -= 1
            if let i = perClient.index(forKey: waiter.client) {
                let left = perClient.values[i] - 1
                if left > 0 { perClient.values[i] = left } else { perClient.remove(at: i) }
            }
            var delivery = Delivery(handle: waiter.handle, question: waiter.query.question, rcode: rcode,
                                    source: source, bytes: nil, rewrite: ClientRewrite(for: waiter.query))
            if answerLength == nil {
                if limits.serveStale > 0, let key = txn.cacheKey,
                   let stale = cache.lookupStale(key, id: waiter.query.header.id,
                                                 questionName: waiter.query.question.name.wire, now: now,
                                                 hash: txn.cacheHash) {
                    counters.staleServed += 1
                    counters.answered += 1
                    var stale = stale
                    Self.setRecursionDesired(waiter.query.header.recursionDesired, in: &stale)
                    delivery.bytes = stale
                    delivery.rcode = stale[3] & 0x0F
                    delivery.source = .staleAfterFailure
                    staleFills += SetFill.fills(txn.sets, answer: stale)
                } else {
                    counters.servfail += 1
                    delivery.bytes = DNSResponseBuilder.errorResponse(to: waiter.query, rcode: .servFail)
                    delivery.rcode = DNSRcode.servFail.rawValue
                    delivery.source = .upstreamFailed
                }
            } else {
                counters.answered += 1
            }
            deliveries.append(delivery)
        }
        deliver(txn.leader)
        for waiter in txn.followers { deliver(waiter) }
        return Finish(txn: id, answerLength: answerLength, replacement: replacement, deliveries: deliveries,
                      drained: draining && inFlight == 0, fills: staleFills)
    }
}
