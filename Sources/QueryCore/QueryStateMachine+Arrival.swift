import DNSCache
import DNSWire
import MarkCore
import MarkPolicy

/// A query that passed intake, with what the shell found out about its client.
public struct ArrivingQuery: Sendable {
    public var message: DNSMessage
    public var proto: TransportProtocol
    /// The kernel's mark for the client's flow (nil: no mark source).
    public var lookup: MarkLookup?
    /// The client's address, and its MAC and interface when `identityNeeds` asked.
    public var identity: ClientIdentity
    /// The shell's handle for where this client's answer goes.
    public var handle: Int

    public init(message: DNSMessage, proto: TransportProtocol, lookup: MarkLookup?, identity: ClientIdentity,
                handle: Int) {
        self.message = message; self.proto = proto; self.lookup = lookup; self.identity = identity
        self.handle = handle
    }
}

extension QueryStateMachine {
    /// A client query arrived (after `intake`). `bytes` is the client's whole message (the
    /// upstream copy is made from it). Decides, in order: the policy (refusal, walled
    /// garden, block lists), local data, the pool, the cache, serve-stale when every server
    /// is backed off, the limits, coalescing, and otherwise a new transaction.
    public mutating func queryArrived(_ q: ArrivingQuery, bytes: UnsafeRawBufferPointer, now: Double) -> Arrival {
        let query = q.message
        let decision = policy.decide(connmark: q.lookup, client: q.identity)
        var missing: NoMarkReason? = nil
        switch decision.origin {
        case .connmark: counters.marked += 1
        case .selector: counters.selectorMarked += 1
        case .missing(let reason):
            counters.unmarked[reason, default: 0] += 1
            missing = reason
        }
        func result(_ action: Arrival.Action, fills: [SetFill] = []) -> Arrival {
            Arrival(action: action, markName: decision.markName, missing: missing, refused: decision.isRefused,
                    fills: fills)
        }
        // The sets an answer to this name fills for this client (almost always none).
        let sets = policy.setTargets(for: decision, wireName: query.question.name.wire)
        if decision.isRefused {
            counters.refused += 1
            return result(.answer(DNSResponseBuilder.errorResponse(to: query, rcode: .refused), source: .immediate))
        }
        if let local = decision.answer(wireName: query.question.name.wire, qtype: query.question.type)
            ?? localData(query) {
            counters.localAnswers[local.reason.rawValue, default: 0] += 1
            let answer = Self.localAnswer(local, to: query)
            // Local data fills sets; the policy's own answers (portal, null address) do not.
            let fills = local.reason == .local ? SetFill.fills(sets, answer: answer) : []
            return result(.answer(answer, source: .local(local.reason)), fills: fills)
        }
        guard let poolName = policy.pool(for: decision, wireName: query.question.name.wire),
              let pool = policy.pool(named: poolName), !pool.servers.isEmpty else {
            counters.servfail += 1
            return result(.answer(DNSResponseBuilder.errorResponse(to: query, rcode: .servFail), source: .immediate))
        }
        let mark = decision.upstreamMark
        let plan = ForwardPlan(query: query, proto: q.proto,
                               view: CacheView(view: decision.view, pool: pool.name, upstreamMark: mark))
        let cacheOn = limits.cacheSize > 0 && plan.shareable
        if cacheOn, var hit = cache.lookup(plan.cacheKey, id: query.header.id, questionName: query.question.name.wire,
                                           now: now, hash: plan.cacheHash) {
            Self.setRecursionDesired(query.header.recursionDesired, in: &hit)
            counters.cacheHits += 1
            counters.answered += 1
            return result(.answer(hit, source: .cache), fills: SetFill.fills(sets, answer: hit))
        }
        // Every server of the pool is backed off: a stale answer now beats SERVFAIL later.
        if cacheOn, limits.serveStale > 0, pool.servers.allSatisfy({ health.isDown($0, now: now) }),
           var stale = cache.lookupStale(plan.cacheKey, id: query.header.id,
                                         questionName: query.question.name.wire, now: now, hash: plan.cacheHash) {
            Self.setRecursionDesired(query.header.recursionDesired, in: &stale)
            counters.staleServed += 1
            counters.answered += 1
            return result(.answer(stale, source: .stale), fills: SetFill.fills(sets, answer: stale))
        }
        // Limits apply to anything that waits on an upstream (cache hits are free).
        let client = q.identity.address
        let clientWaiting = perClient[client, default: 0]
        guard inFlight < limits.maxOutstanding, clientWaiting < limits.maxOutstandingPerClient, !draining else {
            counters.overload += 1
            counters.servfail += 1
            return result(.answer(DNSResponseBuilder.errorResponse(to: query, rcode: .servFail), source: .immediate))
        }
        let waiter = Waiter(handle: q.handle, query: query, client: client)
        if plan.shareable, let leader = inflight[plan.inflightKey],
           txns.update(leader, { $0.followers.append(waiter) }) != nil {
            // Followers count against the limits like any query in flight.
            counters.coalesced += 1
            inFlight += 1
            perClient[client] = clientWaiting + 1
            return result(.joined(leader))
        }
        let turn = Self.takeTurn(&poolTurns[pool.name, default: 0])
        // Built in place in the table (a local copy would be retained and released whole).
        let id = txns.insert(Transaction(
            leader: waiter, upstreamQuery: plan.rewrite.apply(to: bytes), proto: q.proto, mark: mark,
            upstreams: health.order(pool.servers, strategy: pool.strategy, now: now, turn: turn),
            plan: UpstreamPlan(upstreamCount: pool.servers.count, rounds: limits.rounds),
            deadline: now + limits.queryTimeout,
            cacheKey: plan.shareable ? plan.cacheKey : nil, cacheHash: plan.cacheHash,
            inflightKey: plan.shareable ? plan.inflightKey : nil,
            sets: sets))
        if plan.shareable { inflight[plan.inflightKey] = id }
        inFlight += 1
        perClient[client] = clientWaiting + 1
        return result(.start(startAttempt(id, now: now)!))
    }

    /// The pool's turn, counted on (one hash of the name instead of two).
    private static func takeTurn(_ turn: inout Int) -> Int {
        defer { turn &+= 1 }
        return turn
    }

    /// RD is copied from the query into the response (RFC 1035 4.1.1): a cached answer
    /// carries whatever the upstream set, so the client's own bit is written back.
    static func setRecursionDesired(_ rd: Bool, in answer: inout [UInt8]) {
        guard answer.count > 2 else { return }
        if rd { answer[2] |= 0x01 } else { answer[2] &= ~0x01 }
    }

    /// The answer of local data, or nil to forward: records and hosts first, then the
    /// local domain (NXDOMAIN), then private reverse zones no per-domain pool covers.
    func localData(_ query: DNSMessage) -> LocalAnswer? {
        let name = query.question.name.wire
        if let answer = localZone.answer(wireName: name, qtype: query.question.type) { return answer }
        if localZone.isPrivateReverse(wireName: name), !policy.routesDomain(wireName: name) {
            return localZone.privateReverseAnswer
        }
        return nil
    }

    static func localAnswer(_ local: LocalAnswer, to query: DNSMessage) -> [UInt8] {
        switch local.kind {
        case .records(let list):
            let own = query.question.name.wire.map(lowercaseASCII)
            let rrs = list.map {
                DNSResponseBuilder.LocalRR(owner: $0.owner == own ? nil : $0.owner, type: $0.type, rdata: $0.rdata)
            }
            return DNSResponseBuilder.localAnswer(to: query, records: rrs, ttl: local.ttl)
        case .addresses(let list):
            return DNSResponseBuilder.localAnswer(to: query, addresses: list.map(\.bytes), ttl: local.ttl)
        case .noData:
            return DNSResponseBuilder.localAnswer(to: query, ttl: local.ttl)
        case .nxDomain:
            return DNSResponseBuilder.localAnswer(to: query, rcode: .nxDomain, ttl: local.ttl)
        }
    }
}

/// ASCII lower case of one byte (wire-name comparisons).
@inline(__always)
func lowercaseASCII(_ b: UInt8) -> UInt8 { b >= 0x41 && b <= 0x5A ? b | 0x20 : b }
