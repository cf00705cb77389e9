import DNSWire
import MarkCore
import MarkPolicy
import MarkStats
import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// What is known of a query between its arrival and its answer, for its `QueryEvent`.
/// Only built when an observer is attached.
struct PendingEvent {
    var flow: FlowTuple
    var started: Double
    var connmark: UInt32?
    var markName = PolicyDecision.noneName
    var cacheHit = false
    var localReason: String?
}

/// The completion point of every query: `QueryEvent`s are made here and nowhere else.
/// `receive` opens a pending event per query; an answer made during `receive` (`respond`)
/// completes it; a query handed to a transaction carries it until `finish`.
extension QueryEngine {
    /// Monotonic seconds (the same clock as NIODeadline).
    static var monotonic: Double { Double(NIODeadline.now().uptimeNanoseconds) / 1e9 }

    static var wallClock: Double {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    func openEvent(_ flow: FlowTuple) {
        pendingEvent = observer?.observesQueries == true ? PendingEvent(flow: flow, started: Self.monotonic) : nil
    }

    /// The pending event, handed over to a transaction or follower.
    func takeEvent() -> PendingEvent? {
        defer { pendingEvent = nil }
        return pendingEvent
    }

    /// The client flow's mark: the query's own packet mark when it is trusted to equal the
    /// connmark (see `PacketMarkTrust`), otherwise a ctnetlink lookup; every lookup made
    /// with a packet mark at hand checks it.
    func resolveMark(_ flow: FlowTuple, packetMark: UInt32?, interfaceIndex: Int?) -> MarkLookup? {
        guard markSource != nil else { return nil }
        let interface = interfaceIndex ?? 0
        switch markTrust.step(packetMark: packetMark, interface: interface) {
        case .usePacket(let mark):
            counters.packetMarks += 1
            return .found(mark)
        case .lookup(let verify):
            let result = lookupMark(flow)
            guard let verify, let result else { return result }
            let before = markTrust.state
            switch markTrust.verified(packetMark: verify, interface: interface, lookup: result) {
            case .agreed:
                counters.packetMarksVerified += 1
                if before != .trusted && markTrust.state == .trusted {
                    logger.info("packet marks match connmarks (\(markTrust.warmup) compared): using packet marks (SO_RCVMARK) instead of ctnetlink lookups; 1 query in \(markTrust.sampleEvery) is still compared")
                }
            case .mismatch(let first):
                counters.packetMarkMismatches += 1
                if first {
                    let connmark: String
                    switch result {
                    case .found(let m): connmark = hex(m)
                    case .notFound: connmark = "none (no conntrack entry)"
                    case .failed: connmark = "?"
                    }
                    logger.warning("packet mark \(hex(verify)) differs from connmark \(connmark) of \(flow): the ruleset does not restore the connmark onto packets before they reach markdns (meta mark set ct mark / CONNMARK --restore-mark), or changes it afterwards; looking every connmark up with ctnetlink until the next reload")
                }
            case .inconclusive:
                break
            }
            return result
        }
    }

    /// The client flow's mark, timed and reported when observed.
    func lookupMark(_ flow: FlowTuple) -> MarkLookup? {
        guard let markSource else { return nil }
        guard let observer, observer.observesQueries else { return markSource.lookup(flow) }
        let start = Self.monotonic
        let result = markSource.lookup(flow)
        observer.conntrackLookup(seconds: Self.monotonic - start, result: result)
        return result
    }

    func noteDecision(_ lookup: MarkLookup?, _ decision: PolicyDecision) {
        guard pendingEvent != nil else { return }
        if case .found(let m) = lookup { pendingEvent?.connmark = m }
        pendingEvent?.markName = decision.markName
    }

    /// An answer made during `receive` (error, refusal, local or cached answer).
    func completePending(response: [UInt8]) {
        guard let pending = pendingEvent, let observer else { return }
        pendingEvent = nil
        let question = try? DNSMessage.parse(response).question
        observer.queryCompleted(event(pending, question: question,
                                      rcode: response.count > 3 ? response[3] & 0x0F : 0, upstream: nil))
    }

    /// An answer from upstream (or SERVFAIL after every upstream failed) for one client.
    func complete(_ pending: PendingEvent?, query: DNSMessage, rcode: UInt8, upstream: Endpoint?) {
        guard let pending, let observer else { return }
        var e = event(pending, question: query.question, rcode: rcode, upstream: upstream)
        e.forwarded = true
        observer.queryCompleted(e)
    }

    func rcode(of answer: ByteBuffer) -> UInt8 {
        (answer.getInteger(at: answer.readerIndex + 3, as: UInt8.self) ?? 0) & 0x0F
    }

    private func event(_ p: PendingEvent, question: DNSQuestion?, rcode: UInt8, upstream: Endpoint?) -> QueryEvent {
        QueryEvent(time: Self.wallClock, client: p.flow.client.address, proto: p.flow.proto, connmark: p.connmark,
                   markName: p.markName, qname: question?.name.description ?? "", qtype: question?.type ?? 0,
                   rcode: rcode, upstream: upstream, latency: Self.monotonic - p.started, cacheHit: p.cacheHit,
                   localReason: p.localReason)
    }

    /// The end of an upstream attempt (nil outcome: a usable answer).
    func observeAttempt(_ txn: Transaction, _ outcome: UpstreamPlan.Outcome?) {
        guard let observer, txn.attemptStarted > 0, txn.observedAttempt != txn.attempt else { return }
        txn.observedAttempt = txn.attempt
        let kind: UpstreamAttempt.Outcome
        switch outcome {
        case nil, .answer: kind = .answered
        case .timeout: kind = .timeout
        case .error: kind = .error
        case .unusableAnswer: kind = .unusable
        }
        let local = txn.udpSocket?.local
        observer.upstreamAttemptEnded(UpstreamAttempt(
            upstream: txn.upstreams[txn.plan.current], proto: txn.upstreamProtocol, mark: txn.mark, local: local,
            latency: Self.monotonic - txn.attemptStarted, outcome: kind))
    }
}
