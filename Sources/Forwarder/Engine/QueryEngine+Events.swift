import DNSWire
import MarkCore
import MarkPolicy
import MarkStats
import QueryCore

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
/// completes it; a query handed to the core carries it (in its `ClientContext`) until
/// its delivery.
extension QueryEngine {
    func openEvent(_ flow: FlowTuple) {
        pendingEvent = observer?.observesQueries == true ? PendingEvent(flow: flow, started: Monotonic.seconds) : nil
    }

    /// The pending event, handed over to the waiting client's context.
    func takeEvent() -> PendingEvent? {
        defer { pendingEvent = nil }
        return pendingEvent
    }

    func noteDecision(_ lookup: MarkLookup?, _ markName: String) {
        guard pendingEvent != nil else { return }
        if case .found(let m) = lookup { pendingEvent?.connmark = m }
        pendingEvent?.markName = markName
    }

    /// Where an answer made during `receive` came from.
    func noteSource(_ source: AnswerSource) {
        guard pendingEvent != nil else { return }
        switch source {
        case .cache: pendingEvent?.cacheHit = true
        case .local(let reason): pendingEvent?.localReason = reason.rawValue
        default: break
        }
    }

    /// An answer made during `receive` (error, refusal, local or cached answer).
    func completePending(response: [UInt8]) {
        let pending = pendingEvent
        pendingEvent = nil
        complete(pending, response: response)
    }

    /// An answer made during `receive` and held for its set elements, now released.
    func complete(_ pending: PendingEvent?, response: [UInt8]) {
        guard let pending, let observer else { return }
        let question = try? DNSMessage.parse(response).question
        observer.queryCompleted(event(pending, question: question,
                                      rcode: response.count > 3 ? response[3] & 0x0F : 0, upstream: nil))
    }

    /// A delivery of the core to a client that waited (an upstream answer, SERVFAIL after
    /// every upstream failed, or a stale answer).
    func complete(_ pending: PendingEvent?, delivery d: Delivery) {
        guard let pending, let observer else { return }
        var upstream: Endpoint? = nil
        if case .upstream(let u) = d.source { upstream = u }
        var e = event(pending, question: d.question, rcode: d.rcode, upstream: upstream)
        if let upstream, !secureUpstreams.isEmpty { e.upstreamName = secureUpstreams[upstream]?.description }
        e.forwarded = d.source.forwarded
        observer.queryCompleted(e)
    }

    private func event(_ p: PendingEvent, question: DNSQuestion?, rcode: UInt8, upstream: Endpoint?) -> QueryEvent {
        QueryEvent(time: Monotonic.wallClock, client: p.flow.client.address, proto: p.flow.proto, connmark: p.connmark,
                   markName: p.markName, qname: question?.name.description ?? "", qtype: question?.type ?? 0,
                   rcode: rcode, upstream: upstream, latency: Monotonic.seconds - p.started, cacheHit: p.cacheHit,
                   localReason: p.localReason)
    }

    /// The end of an upstream attempt (nil outcome: a usable answer).
    func observeAttempt(_ ended: AttemptEnd, local: Endpoint?) {
        guard let observer else { return }
        let kind: UpstreamAttempt.Outcome
        switch ended.outcome {
        case nil, .answer: kind = .answered
        case .timeout: kind = .timeout
        case .error: kind = .error
        case .unusableAnswer: kind = .unusable
        }
        observer.upstreamAttemptEnded(UpstreamAttempt(
            upstream: ended.upstream, proto: ended.proto, mark: ended.mark, local: local,
            latency: Monotonic.seconds - ended.started, outcome: kind))
    }
}
