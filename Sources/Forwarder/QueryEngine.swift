import DNSCache
import DNSWire
import Logging
import MarkCore
import MarkPolicy
import NIOCore
import NIOExtras
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

/// The forwarder's core on one event loop: takes client queries, finds their mark, sends
/// them upstream on sockets of that mark, matches answers and relays them back.
///
/// Everything here runs on `loop`; no locks. The pure decisions live in MarkCore and
/// DNSWire; this type owns the sockets and timers.
final class QueryEngine {
    let loop: any EventLoop
    let config: ForwarderConfig
    let markSource: (any MarkSource)?
    let logger: Logger
    /// The policy in force; replaced whole by `reload`. Queries in flight keep the
    /// decision they were given.
    private(set) var policy: PolicyEngine
    /// Static records, hosts files, local domain, private reverse zones; replaced whole
    /// by the `LocalDataLoader` when a hosts file changes or the policy is reloaded.
    private(set) var localZone: LocalZone
    private var addresses: [Endpoint: SocketAddress] = [:]
    private var interfaceNames: [Int: String] = [:]
    /// Upstreams that keep failing are tried last for a while (backoff).
    private var health = UpstreamHealth()
    /// Queries per pool so far: the round-robin position and the `fastest` exploration turn.
    private var poolTurns: [String: Int] = [:]
    let neighbours = NeighbourTable()
    var counters = Counters()
    private(set) var cache: AnswerCache<CacheView>
    /// Queries in flight upstream, by what they ask and for whom: an identical query of the
    /// same view, mark, pool and transport waits for the same answer instead of going
    /// upstream again. Never shared across marks (dnsmasq merges them).
    private var inflight: [InflightKey: Transaction] = [:]
    private var pools: [UpstreamUDPPool.Key: UpstreamUDPPool] = [:]
    /// Every open upstream UDP socket, by its notifier token (above the listeners' tokens).
    private var upstreamSockets: [Int: UpstreamUDPSocket] = [:]
    private var nextSocketToken = QueryEngine.firstSocketToken
    static let firstSocketToken = 1 << 20
    /// Receive buffers for every raw socket of this loop (one batch at a time).
    let receiver = DatagramReceiver()
    let allocator = ByteBufferAllocator()
    /// Upstream queries of this loop tick (sent together at its end).
    let upstreamSends = UpstreamSendQueue()
    /// Port quarantine and TCP limits, shared by the engines of all loops.
    let shared: SharedState
    /// UDP writes of this loop tick, flushed together (sendmmsg).
    let batcher: WriteBatcher
    private var random = SecureRandom()
    private var loggedNoMark: Set<NoMarkReason> = []
    /// Whether packet marks (SO_RCVMARK) may stand in for ctnetlink lookups.
    var markTrust: PacketMarkTrust
    private var faultLog = FaultLogLimiter(interval: 10)
    private var outstanding = 0
    private var outstandingPerClient: [IPAddress: Int] = [:]
    /// The client UDP sockets of this loop (the index is the notifier's token) and the
    /// thread that reports them readable.
    var listeners: [RawUDPListener] = []
    var notifier: ReadinessNotifier?
    /// Set when draining for shutdown.
    var draining = false
    private var drainWaiters: [EventLoopPromise<Void>] = []
    /// Told of every query's outcome (metrics, top clients, query log); see QueryEngine+Events.
    let observer: (any QueryObserver)?
    var pendingEvent: PendingEvent?

    init(loop: any EventLoop, config: ForwarderConfig, markSource: (any MarkSource)?, shared: SharedState,
         logger: Logger) {
        self.loop = loop
        self.shared = shared
        self.batcher = WriteBatcher(loop: loop)
        defer { batcher.upstream = { [unowned self] in self.flushUpstream() } }
        self.config = config
        self.markSource = markSource
        self.logger = logger
        self.observer = config.observer
        self.markTrust = Self.markTrust(config, config.policy)
        self.policy = config.policy
        self.localZone = LocalZone(config: config.policy.config.local)
        self.cache = AnswerCache(limits: .init(capacity: config.cacheSize, minTTL: config.cacheMinTTL,
                                               maxTTL: config.cacheMaxTTL, staleWindow: config.serveStale))
    }

    func reload(_ policy: PolicyEngine) {
        self.policy = policy
        // The ruleset may have changed with the policy: packet marks are checked again.
        markTrust = Self.markTrust(config, policy)
        // Pools may point elsewhere now: answers of the old policy must not be served.
        cache.removeAll()
        counters.reloads += 1
    }

    /// Packet-mark trust from scratch, for the policy's bits and mark source (unless
    /// `--mark-source` set it).
    static func markTrust(_ config: ForwarderConfig, _ policy: PolicyEngine) -> PacketMarkTrust {
        PacketMarkTrust(mode: config.markSource ?? policy.config.conntrack.markSource, mask: policy.mask)
    }

    func setLocalZone(_ zone: LocalZone) {
        localZone = zone
    }

    private func socketAddress(_ e: Endpoint) -> SocketAddress {
        if let a = addresses[e] { return a }
        let a = e.socketAddress
        addresses[e] = a
        return a
    }

    private func interfaceName(_ index: Int?) -> String? {
        guard let index, index > 0 else { return nil }
        if let n = interfaceNames[index] { return n }
        var buf = [CChar](repeating: 0, count: Int(IF_NAMESIZE) + 1)
        guard if_indextoname(UInt32(index), &buf) != nil else { return nil }
        let n = String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        interfaceNames[index] = n
        return n
    }

    var inFlight: Int { outstanding }

    /// The counters with the listeners' reply drops.
    var countersNow: Counters {
        var c = counters
        for listener in listeners { c.replyDrops += listener.sendDrops }
        return c
    }

    // MARK: - Client side

    /// A query from a client. `bytes` is the whole DNS message.
    func receive(_ bytes: ByteBuffer, flow: FlowTuple, reply: ReplyTarget, interfaceIndex: Int? = nil,
                 packetMark: UInt32? = nil, tcpClient: TCPClientHandler? = nil) {
        if flow.proto == .udp { counters.queriesUDP += 1 } else { counters.queriesTCP += 1 }
        openEvent(flow)
        defer { pendingEvent = nil }
        let parsed: Result<DNSMessage, DNSWireError> = bytes.withUnsafeReadableBytes { raw in
            Result { () throws(DNSWireError) -> DNSMessage in try DNSMessage.parse(raw) }
        }
        let query: DNSMessage
        switch parsed {
        case .success(let m):
            query = m
        case .failure(let error):
            rejectMalformed(bytes, error: error, reply: reply)
            tcpClient?.queryDone()
            return
        }
        if query.header.isResponse {
            // A response sent to us as a query: never answer (no reflection loops).
            counters.droppedMalformed += 1
            tcpClient?.queryDone()
            return
        }
        if query.header.opcode != DNSOpcode.query {
            counters.notimp += 1
            respond(DNSResponseBuilder.errorResponse(to: query, rcode: .notImp), to: reply)
            tcpClient?.queryDone()
            return
        }

        // Mark of the client's flow, then what the policy makes of it.
        let lookup = resolveMark(flow, packetMark: packetMark, interfaceIndex: interfaceIndex)
        var client = ClientIdentity(address: flow.client.address)
        if policy.consultsSelectors, !hasPolicyMark(lookup) {
            if policy.usesMAC { client.mac = neighbours.mac(for: flow.client.address) }
            if policy.usesInterface { client.interface = interfaceName(interfaceIndex) }
        }
        let decision = policy.decide(connmark: lookup, client: client)
        noteDecision(lookup, decision)
        switch decision.origin {
        case .connmark: counters.marked += 1
        case .selector: counters.selectorMarked += 1
        case .missing(let reason):
            counters.unmarked[reason, default: 0] += 1
            noteNoMark(reason, lookup: lookup, flow: flow, refused: decision.isRefused)
        }
        if decision.isRefused {
            counters.refused += 1
            respond(DNSResponseBuilder.errorResponse(to: query, rcode: .refused), to: reply)
            tcpClient?.queryDone()
            return
        }
        if let local = decision.answer(wireName: query.question.name.wire, qtype: query.question.type) {
            counters.localAnswers[local.reason.rawValue, default: 0] += 1
            pendingEvent?.localReason = local.reason.rawValue
            respond(localAnswer(local, to: query), to: reply)
            tcpClient?.queryDone()
            return
        }
        if let local = localData(query, decision: decision) {
            counters.localAnswers[local.reason.rawValue, default: 0] += 1
            respond(localAnswer(local, to: query), to: reply)
            tcpClient?.queryDone()
            return
        }
        let mark = decision.upstreamMark
        guard let pool = policy.pool(for: decision, wireName: query.question.name.wire).flatMap(policy.config.pool(named:)),
              !pool.servers.isEmpty else {
            counters.servfail += 1
            respond(DNSResponseBuilder.errorResponse(to: query, rcode: .servFail), to: reply)
            tcpClient?.queryDone()
            return
        }
        let now = self.now  // one clock read per query
        // Cache and coalescing, keyed by everything that shapes the answer and the view.
        let maxSize = flow.proto == .tcp ? 65535
            : Int(query.edns.map { DNSRewrite.upstreamPayloadSize(forClient: $0.payloadSize) } ?? 512)
        let cacheKey = AnswerCache<CacheView>.Key(
            view: CacheView(view: decision.view, pool: pool.name, upstreamMark: mark),
            question: query.question, edns: query.edns != nil, dnssecOK: query.edns?.dnssecOK ?? false,
            checkingDisabled: query.header.checkingDisabled, maxSize: maxSize)
        // EDNS options (cookies, client subnet) are the client's own: they are not sent
        // upstream (see below), so answers stay shareable. Only when the OPT record is not
        // the last record (options cannot simply be cut off) is the query kept to itself.
        let optionsStripped = query.edns.map { $0.optionsLength > 0 && $0.payloadSizeOffset + 8 + $0.optionsLength == query.length } ?? false
        let shareable = (query.edns?.optionsLength ?? 0) == 0 || optionsStripped
        if config.cacheSize > 0, shareable,
           let hit = cache.lookup(cacheKey, id: query.header.id, questionName: query.question.name.wire, now: now) {
            counters.cacheHits += 1
            pendingEvent?.cacheHit = true
            counters.answered += 1
            respond(hit, to: reply)
            tcpClient?.queryDone()
            return
        }
        // Every server of the pool is backed off: a stale answer now beats SERVFAIL later.
        if config.serveStale > 0, config.cacheSize > 0, shareable,
           pool.servers.allSatisfy({ health.isDown($0, now: now) }),
           answerStale(cacheKey, to: query, reply: reply, tcpClient: tcpClient, event: nil, now: now) {
            return
        }
        let clientOutstanding = outstandingPerClient[flow.client.address, default: 0]
        // Limits apply to anything that waits on an upstream (cache hits are free).
        guard outstanding < config.maxOutstanding, clientOutstanding < config.maxOutstandingPerClient, !draining else {
            counters.overload += 1
            counters.servfail += 1
            respond(DNSResponseBuilder.errorResponse(to: query, rcode: .servFail), to: reply)
            tcpClient?.queryDone()
            return
        }

        let inflightKey = InflightKey(cache: cacheKey, proto: flow.proto)
        if shareable, let leader = inflight[inflightKey], !leader.finished {
            // Followers count against the limits like any query in flight.
            counters.coalesced += 1
            outstanding += 1
            outstandingPerClient[flow.client.address] = clientOutstanding + 1
            leader.followers.append(Follower(query: query, reply: reply, tcpClient: tcpClient,
                                             client: flow.client.address, event: takeEvent()))
            return
        }

        // The upstream copy: same bytes, payload size clamped; the ID is set per attempt.
        let length = optionsStripped ? query.length - (query.edns?.optionsLength ?? 0) : query.length
        var upstreamQuery = bytes.getSlice(at: bytes.readerIndex, length: length)!
        if let edns = query.edns {
            let size = DNSRewrite.upstreamPayloadSize(forClient: edns.payloadSize)
            upstreamQuery.withUnsafeMutableReadableBytes {
                DNSRewrite.setPayloadSize(size, at: edns.payloadSizeOffset, in: $0)
                if optionsStripped { DNSRewrite.setPayloadSize(0, at: edns.payloadSizeOffset + 6, in: $0) }  // RDLENGTH 0
            }
        }
        let turn = poolTurns[pool.name, default: 0]
        poolTurns[pool.name] = turn &+ 1
        let txn = Transaction(query: query, upstreamQuery: upstreamQuery, flow: flow, mark: mark, reply: reply,
                              upstreams: health.order(pool.servers, strategy: pool.strategy, now: now, turn: turn),
                              deadline: now + seconds(config.queryTimeout))
        txn.tcpClient = tcpClient
        txn.event = takeEvent()
        if shareable {
            txn.cacheKey = cacheKey
            txn.inflightKey = inflightKey
            inflight[inflightKey] = txn
        }
        outstanding += 1
        outstandingPerClient[flow.client.address] = clientOutstanding + 1
        if case .send(let index) = txn.plan.start { startAttempt(txn, upstream: index) }
    }

    private func rejectMalformed(_ bytes: ByteBuffer, error: DNSWireError, reply: ReplyTarget) {
        let header: DNSHeader? = bytes.withUnsafeReadableBytes { try? DNSMessage.header($0) }
        guard let header, !header.isResponse else {
            counters.droppedMalformed += 1
            return
        }
        if header.opcode != DNSOpcode.query {
            counters.notimp += 1
            respond(DNSResponseBuilder.headerOnly(toHeader: header, rcode: .notImp), to: reply)
            return
        }
        counters.formerr += 1
        respond(DNSResponseBuilder.formErr(toHeader: header), to: reply)
    }

    private func hasPolicyMark(_ lookup: MarkLookup?) -> Bool {
        if case .found(let m) = lookup { return m & policy.mask != 0 }
        return false
    }

    /// The answer of local data, or nil to forward: records and hosts first, then the
    /// local domain (NXDOMAIN), then private reverse zones no per-domain pool covers.
    private func localData(_ query: DNSMessage, decision: PolicyDecision) -> LocalAnswer? {
        let name = query.question.name.wire
        if let answer = localZone.answer(wireName: name, qtype: query.question.type) { return answer }
        if localZone.isPrivateReverse(wireName: name), !policy.routesDomain(wireName: name) {
            return localZone.privateReverseAnswer
        }
        return nil
    }

    private func localAnswer(_ local: LocalAnswer, to query: DNSMessage) -> [UInt8] {
        switch local.kind {
        case .records(let list):
            let rrs = list.map {
                DNSResponseBuilder.LocalRR(owner: $0.owner == query.question.name.wire.map(lowercase) ? nil : $0.owner,
                                           type: $0.type, rdata: $0.rdata)
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

    private func noteNoMark(_ reason: NoMarkReason, lookup: MarkLookup?, flow: FlowTuple, refused: Bool) {
        guard reason != .markZero, !loggedNoMark.contains(reason) else { return }
        loggedNoMark.insert(reason)
        var detail = ""
        if case .failed(let e) = lookup { detail = ": " + errnoText(e) }
        let action = refused ? "refusing (fail closed)" : "applying on-missing policy"
        let hint: String
        switch reason {
        case .noEntry: hint = "no conntrack entry for the client's flow (is nf_conntrack tracking it?)"
        case .lookupFailed: hint = "ctnetlink lookup failed\(detail)"
        case .noSource: hint = "no ctnetlink socket"
        case .markZero: hint = ""
        }
        logger.warning("\(hint) for \(flow); \(action). Logged once; see the no-mark counters.")
    }

    private func respond(_ bytes: [UInt8], to reply: ReplyTarget) {
        completePending(response: bytes)
        var buffer = ByteBufferAllocator().buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        reply.send(buffer, batcher: batcher)
    }

    // MARK: - Attempts

    private func startAttempt(_ txn: Transaction, upstream index: Int) {
        txn.attempt += 1
        let attempt = txn.attempt
        let start = now
        txn.attemptStarted = start
        let budget = TimeAmount.nanoseconds(Int64(max(txn.deadline - start, 0) * 1e9))
        // The transaction is its own timer handler: no closure, promise or task object per
        // attempt (scheduleTask allocated three).
        txn.engine = self
        txn.timerDeadline = .now() + min(config.upstreamTimeout, budget)
        txn.timer = try? loop.assumeIsolated().scheduleCallback(at: txn.timerDeadline, handler: txn)
        switch txn.upstreamProtocol {
        case .udp: sendUDP(txn, upstream: index, attempt: attempt)
        case .tcp: sendTCP(txn, upstream: index, attempt: attempt)
        }
    }

    /// The current attempt of `txn` got no answer in time.
    func attemptTimedOut(_ txn: Transaction) {
        // A callback already due when its attempt ended may still run: it is stale unless
        // the current attempt's own deadline has passed.
        guard !txn.finished, txn.timer != nil, NIODeadline.now() >= txn.timerDeadline else { return }
        txn.timer = nil
        counters.upstreamTimeouts += 1
        attemptFailed(txn, outcome: .timeout)
    }

    /// Ends the current attempt (releases its socket slot or connection) and follows the plan.
    private func attemptFailed(_ txn: Transaction, outcome: UpstreamPlan.Outcome, penalise: Bool = true) {
        guard !txn.finished else { return }
        observeAttempt(txn, outcome)
        endAttempt(txn)
        let server = txn.upstreams[txn.plan.current]
        let now = self.now
        switch outcome {
        case _ where !penalise: break
        case .unusableAnswer: health.success(server, rtt: now - txn.attemptStarted)
        case .timeout: health.failure(server, now: now, penalty: seconds(config.upstreamTimeout))
        case .error, .answer: health.failure(server, now: now)
        }
        switch txn.plan.next(after: outcome) {
        case .send(let index) where now < txn.deadline:
            if txn.plan.round > 1 { counters.upstreamRetries += 1 }
            startAttempt(txn, upstream: index)
        case .send, .deliver, .servfail:
            finish(txn, answer: nil)
        }
    }

    private func endAttempt(_ txn: Transaction) {
        if let timer = txn.timer {
            txn.timer = nil
            timer.cancel()
        }
        if let socket = txn.udpSocket {
            if socket.pending[txn.sentID] === txn { socket.pending[txn.sentID] = nil }
            txn.udpSocket = nil
            maybeClose(socket)
        }
        if let channel = txn.tcpChannel {
            txn.tcpChannel = nil
            channel.close(promise: nil)
        }
    }

    /// Relays `answer` (already validated) or, with nil, SERVFAIL.
    private func finish(_ txn: Transaction, answer: ByteBuffer?) {
        guard !txn.finished else { return }
        endAttempt(txn)
        txn.finished = true
        if let key = txn.inflightKey, let removed = inflight.removeValue(forKey: key), removed !== txn {
            inflight[key] = removed  // another transaction leads this key now (rare)
        }
        // The client who asked first, then those who asked the same while it was in flight
        // (no array of them all: this runs for every query).
        let leader = Follower(query: txn.query, reply: txn.reply, tcpClient: txn.tcpClient,
                              client: txn.flow.client.address, event: txn.event)
        func forEachClient(_ body: (Follower) -> Void) {
            body(leader)
            for follower in txn.followers { body(follower) }
        }
        forEachClient { client in
            outstanding -= 1
            let left = outstandingPerClient[client.client, default: 1] - 1
            outstandingPerClient[client.client] = left > 0 ? left : nil
        }
        if let answer {
            if config.cacheSize > 0, let key = txn.cacheKey {
                cache.store(key, answer: Array(answer.readableBytesView), now: now)
            }
            let rcode = rcode(of: answer)
            let upstream = txn.upstreams[txn.plan.current]
            forEachClient { client in
                var copy = answer
                copy.withUnsafeMutableReadableBytes { bytes in
                    DNSRewrite.setID(client.query.header.id, in: bytes)
                    // Each client gets its own spelling of the name back (0x20 case).
                    let name = client.query.question.name.wire
                    if name.count + DNSHeader.size <= bytes.count {
                        for (i, b) in name.enumerated() { bytes[DNSHeader.size + i] = b }
                    }
                }
                counters.answered += 1
                complete(client.event, query: client.query, rcode: rcode, upstream: upstream)
                client.reply.send(copy, batcher: batcher)
                client.tcpClient?.queryDone()
            }
        } else {
            let now = self.now
            forEachClient { client in
                if config.serveStale > 0, let key = txn.cacheKey,
                   answerStale(key, to: client.query, reply: client.reply, tcpClient: client.tcpClient,
                               event: client.event, now: now) {
                    return
                }
                counters.servfail += 1
                complete(client.event, query: client.query, rcode: DNSRcode.servFail.rawValue, upstream: nil)
                respond(DNSResponseBuilder.errorResponse(to: client.query, rcode: .servFail), to: client.reply)
                client.tcpClient?.queryDone()
            }
        }
        if draining && outstanding == 0 {
            let waiters = drainWaiters
            drainWaiters = []
            waiters.forEach { $0.succeed(()) }
        }
    }

    /// Serve-stale (RFC 8767): answers `query` from an expired cache entry still inside
    /// the stale window, TTL 30. False when there is none.
    private func answerStale(_ key: AnswerCache<CacheView>.Key, to query: DNSMessage, reply: ReplyTarget,
                             tcpClient: TCPClientHandler?, event: PendingEvent?, now: Double) -> Bool {
        guard let stale = cache.lookupStale(key, id: query.header.id, questionName: query.question.name.wire, now: now)
        else { return false }
        counters.staleServed += 1
        counters.answered += 1
        complete(event, query: query, rcode: stale[3] & 0x0F, upstream: nil)  // (events of queries in flight)
        respond(stale, to: reply)
        tcpClient?.queryDone()
        return true
    }

    /// Validates an upstream answer against what we sent (RFC 5452: the address/port are
    /// enforced by the connected socket; here the ID and the question) and acts on it.
    private func handleAnswer(_ answer: ByteBuffer, txn: Transaction) -> Bool {
        let parsed = answer.withUnsafeReadableBytes { try? DNSMessage.parse($0) }
        guard let parsed, parsed.header.isResponse, parsed.header.id == txn.sentID,
              parsed.question == txn.query.question
        else {
            let header = answer.withUnsafeReadableBytes { try? DNSMessage.header($0) }
            if let header, header.isResponse, header.id == txn.sentID, header.qdcount == 0 {
                return handleQuestionless(header, txn: txn)
            }
            counters.mismatchedAnswers += 1
            return false
        }
        let rcode = parsed.header.rcode
        if rcode == DNSRcode.servFail.rawValue || rcode == DNSRcode.refused.rawValue {
            counters.upstreamUnusable += 1
            attemptFailed(txn, outcome: .unusableAnswer)
            return true
        }
        health.success(txn.upstreams[txn.plan.current], rtt: now - txn.attemptStarted)
        observeAttempt(txn, nil)
        if parsed.header.isTruncated { counters.truncatedRelayed += 1 }
        finish(txn, answer: answer.getSlice(at: answer.readerIndex, length: parsed.length) ?? answer)
        return true
    }

    /// An answer with our ID but no question, as some servers send for errors and
    /// truncation: an error rcode fails over at once (instead of waiting for the timeout),
    /// TC is passed on as our own TC answer so the client retries over TCP.
    private func handleQuestionless(_ header: DNSHeader, txn: Transaction) -> Bool {
        if header.isTruncated {
            health.success(txn.upstreams[txn.plan.current], rtt: now - txn.attemptStarted)
            observeAttempt(txn, nil)
            counters.truncatedRelayed += 1
            var tc = DNSResponseBuilder.errorResponse(to: txn.query, rcode: .noError)
            tc[2] |= 0x02
            finish(txn, answer: ByteBuffer(bytes: tc))
            return true
        }
        switch header.rcode {
        case DNSRcode.formErr.rawValue, DNSRcode.servFail.rawValue, DNSRcode.notImp.rawValue, DNSRcode.refused.rawValue:
            counters.upstreamUnusable += 1
            attemptFailed(txn, outcome: .unusableAnswer)
            return true
        default:
            counters.mismatchedAnswers += 1
            return false
        }
    }

    // MARK: - UDP upstream

    private func sendUDP(_ txn: Transaction, upstream index: Int, attempt: Int) {
        let pool = self.pool(mark: txn.mark, upstream: txn.upstreams[index])
        guard let socket = pickSocket(pool) else {
            // No socket could be opened (EMFILE, no route, ...; logged): fail over now.
            attemptFailed(txn, outcome: .error)
            return
        }
        sendUDP(txn, on: socket)
    }

    private func pool(mark: UInt32, upstream: Endpoint) -> UpstreamUDPPool {
        let key = UpstreamUDPPool.Key(mark: mark, upstream: upstream)
        if let pool = pools[key] { return pool }
        let pool = UpstreamUDPPool(key: key)
        pools[key] = pool
        return pool
    }

    /// A random ready socket of the pool; opens one more while the pool is below its size.
    private func pickSocket(_ pool: UpstreamUDPPool) -> UpstreamUDPSocket? {
        if pool.ready.count < config.socketsPerPool { openSocket(pool) }
        guard !pool.ready.isEmpty else { return nil }
        return pool.ready[random.below(pool.ready.count)]
    }

    private func sendUDP(_ txn: Transaction, on socket: UpstreamUDPSocket) {
        // An ID is never reused on one socket, so a late answer to an abandoned attempt
        // cannot match a newer query (a socket carries at most `queriesPerSocket`).
        var id = random.next16()
        while socket.usedIDs.contains(id) { id = random.next16() }
        socket.usedIDs.insert(id)
        txn.sentID = id
        txn.udpSocket = socket
        socket.pending[id] = txn
        socket.used += 1
        socket.lastUsed = now
        txn.upstreamQuery.withUnsafeMutableReadableBytes { DNSRewrite.setID(id, in: $0) }
        counters.upstreamSent += 1
        if socket.used >= config.queriesPerSocket { retire(socket) }  // closes once answered
        if txn.upstreamQuery.readableBytes <= UpstreamSendQueue.slotSize {
            // Sent with the tick's other queries (sendmmsg per socket), see `flushUpstream`.
            if upstreamSends.isFull { flushUpstream() }
            upstreamSends.enqueue(txn.upstreamQuery, socket: socket, txn: txn, id: id)
            batcher.scheduleFlush()
            return
        }
        let sent = txn.upstreamQuery.withUnsafeReadableBytes { send(socket.fd, $0.baseAddress, $0.count, 0) }
        if sent < 0 { sendFailed(errno, txn: txn, on: socket) }
    }

    /// Sends the queries of this tick. A refused one fails its attempt unless the attempt
    /// has moved on meanwhile.
    func flushUpstream() {
        upstreamSends.flush { entry, error in
            let txn = entry.txn
            guard !txn.finished, txn.udpSocket === entry.socket, txn.sentID == entry.id else { return }
            sendFailed(error, txn: txn, on: entry.socket)
        }
    }

    /// A refused send: ICMP unreachable reported late (the upstream), a full buffer (this
    /// query), or netfilter refusing the flow, e.g. a full conntrack table (the socket).
    private func sendFailed(_ error: Int32, txn: Transaction, on socket: UpstreamUDPSocket) {
        switch error {
        case ECONNREFUSED, EHOSTUNREACH, ENETUNREACH:
            udpSocketError(error, on: socket)
        case EAGAIN, EWOULDBLOCK, ENOBUFS, EINTR:
            // Our own send buffer, not the upstream: fail over without backing it off.
            counters.upstreamErrors += 1
            attemptFailed(txn, outcome: .error, penalise: false)
        default:
            logFault("send \(socket.pool.upstream)", "cannot send to upstream \(socket.pool.upstream) with mark \(hex(socket.pool.key.mark)): \(errnoText(error)) (a full conntrack table or a firewall rule refusing new upstream flows?)")
            counters.upstreamErrors += 1
            socket.retired = true
            socket.pool.ready.removeAll { $0 === socket }
            let waiting = Array(socket.pending.values)
            socket.pending.removeAll()
            close(socket)
            for txn in waiting { attemptFailed(txn, outcome: .error) }
        }
    }

    private func retire(_ socket: UpstreamUDPSocket) {
        guard !socket.retired else { return }
        socket.retired = true
        socket.pool.ready.removeAll { $0 === socket }
        maybeClose(socket)
    }

    private func maybeClose(_ socket: UpstreamUDPSocket) {
        guard socket.retired, socket.pending.isEmpty else { return }
        close(socket)
    }

    private func close(_ socket: UpstreamUDPSocket) {
        guard !socket.closed else { return }
        socket.closed = true
        recordPort(socket)
        upstreamSockets[socket.token] = nil
        Glibc.close(socket.fd)  // also leaves the notifier's epoll set
    }

    private var now: Double { Double(NIODeadline.now().uptimeNanoseconds) / 1e9 }

    private func recordPort(_ socket: UpstreamUDPSocket) {
        shared.recordPort(.init(upstream: socket.pool.upstream, port: socket.localPort),
                          mark: socket.pool.key.mark, now: now)
    }

    /// Opens a connected socket with the pool's mark. At high rates most ephemeral ports
    /// were used by some mark within the quarantine (at 60k queries/s, ~900 new sockets a
    /// second cycle the ~28k ports every 30 s), so about half the ports the kernel picks
    /// belong to another mark: up to 32 tries. A failure is logged and counted only when
    /// the pool has no socket left to send on; otherwise the pool stays smaller for a while.
    private func openSocket(_ pool: UpstreamUDPPool) {
        let mark = pool.key.mark
        // After shutdown closed the sockets (a retry timer may still fire): nothing new.
        guard let notifier else {
            openFailed(pool, "shutting down")
            return
        }
        for _ in 0..<32 {
            let fd: Int32
            do { fd = try DatagramReceiver.udpSocket(for: pool.upstream) } catch {
                openFailed(pool, "\(error)")
                return
            }
            var m = mark
            if mark != 0, setsockopt(fd, SOL_SOCKET, SO_MARK, &m, socklen_t(MemoryLayout<UInt32>.size)) != 0 {
                let e = errno
                Glibc.close(fd)
                openFailed(pool, "SO_MARK: \(errnoText(e))")
                return
            }
            if let e = DatagramReceiver.withSockAddr(pool.upstream, { connect(fd, $0, $1) }) {
                Glibc.close(fd)
                openFailed(pool, "connect: \(errnoText(e))")
                return
            }
            var storage = sockaddr_storage()
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let named = withUnsafeMutablePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
            }
            let local = named == 0 ? withUnsafePointer(to: &storage) { DatagramReceiver.endpoint($0) } : nil
            let qkey = PortQuarantine.Key(upstream: pool.upstream, port: local?.port ?? 0)
            if !shared.portAllowed(qkey, mark: mark, now: now) {
                // This 5-tuple carried another mark recently; its conntrack entry may still be
                // alive. Never reuse it for this mark.
                counters.portQuarantineRebinds += 1
                Glibc.close(fd)
                continue
            }
            let token = nextSocketToken
            nextSocketToken += 1
            do { try notifier.watch(fd, token: token) } catch {
                Glibc.close(fd)
                openFailed(pool, "\(error)")
                return
            }
            let socket = UpstreamUDPSocket(fd: fd, token: token, pool: pool, local: local)
            upstreamSockets[token] = socket
            recordPort(socket)
            pool.ready.append(socket)
            return
        }
        if pool.ready.isEmpty { openFailed(pool, "no local port free of other marks after 32 tries") }
    }

    private func openFailed(_ pool: UpstreamUDPPool, _ why: String) {
        logFault("open \(pool.upstream)", "cannot open upstream socket to \(pool.upstream) with mark \(hex(pool.key.mark)): \(why)")
        counters.upstreamErrors += 1
    }

    /// The notifier reported an upstream socket readable: reads its answers.
    func upstreamReady(_ token: Int) {
        for _ in 0..<Self.batchesPerTurn {
            guard let socket = upstreamSockets[token], !socket.closed else { return }
            let result = receiver.receive(socket.fd) { d in
                var buffer = allocator.buffer(capacity: d.bytes.count)
                buffer.writeBytes(d.bytes)
                udpAnswer(buffer, on: socket)
            }
            if let error = result.error { udpSocketError(error, on: socket) }
            if socket.closed { return }
            if result.count < DatagramReceiver.batch && result.error == nil {
                notifier?.rearm(socket.fd, token: token)
                return
            }
        }
        let bound = NIOLoopBound(self, eventLoop: loop)
        loop.execute { bound.value.upstreamReady(token) }
    }

    func udpAnswer(_ bytes: ByteBuffer, on socket: UpstreamUDPSocket) {
        guard bytes.readableBytes >= DNSHeader.size,
              let id = bytes.getInteger(at: bytes.readerIndex, as: UInt16.self),
              let txn = socket.pending[id]
        else {
            counters.unmatchedAnswers += 1
            return
        }
        _ = handleAnswer(bytes, txn: txn)
    }

    /// ICMP unreachable (ECONNREFUSED) and friends: every query waiting on this socket was
    /// sent to the same upstream, so each fails over.
    func udpSocketError(_ error: Int32, on socket: UpstreamUDPSocket) {
        counters.upstreamErrors += 1
        logger.debug("upstream \(socket.pool.upstream) socket error: \(errnoText(error))")
        for txn in Array(socket.pending.values) { attemptFailed(txn, outcome: .error) }
    }

    /// Closes every upstream socket (shutdown).
    func closeUpstreamSockets() {
        for socket in Array(upstreamSockets.values) { close(socket) }
        pools.removeAll()
    }

    // MARK: - TCP upstream

    private func sendTCP(_ txn: Transaction, upstream index: Int, attempt: Int) {
        let bound = NIOLoopBound(self, eventLoop: loop)
        let boundTxn = NIOLoopBound(txn, eventLoop: loop)
        var bootstrap = ClientBootstrap(group: loop)
            .connectTimeout(config.upstreamTimeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandlers([
                        ByteToMessageHandler(LengthFieldBasedFrameDecoder(lengthFieldBitLength: .twoBytes)),
                        LengthFieldPrepender(lengthFieldBitLength: .twoBytes),
                        UpstreamTCPHandler(engine: bound.value, txn: boundTxn.value, attempt: attempt),
                    ])
                }
            }
        if txn.mark != 0 {
            bootstrap = bootstrap.channelOption(.socket(SocketOptionLevel(SOL_SOCKET), SO_MARK),
                                                value: SocketOptionValue(Int32(bitPattern: txn.mark)))
        }
        bootstrap.connect(to: socketAddress(txn.upstreams[index])).assumeIsolated().whenComplete { result in
            switch result {
            case .success(let channel):
                guard txn.attempt == attempt, !txn.finished else { channel.close(promise: nil); return }
                txn.tcpChannel = channel
                let id = self.random.next16()
                txn.sentID = id
                var bytes = txn.upstreamQuery
                bytes.withUnsafeMutableReadableBytes { DNSRewrite.setID(id, in: $0) }
                self.counters.upstreamSent += 1
                channel.writeAndFlush(bytes, promise: nil)
            case .failure(let error):
                guard txn.attempt == attempt else { return }
                self.logFault("connect \(txn.upstreams[index])", "cannot connect to upstream \(txn.upstreams[index]) over TCP with mark \(hex(txn.mark)): \(error)")
                self.counters.upstreamErrors += 1
                self.attemptFailed(txn, outcome: .error)
            }
        }
    }

    func tcpAnswer(_ bytes: ByteBuffer, txn: Transaction, attempt: Int) {
        guard txn.attempt == attempt, !txn.finished else { return }
        if !handleAnswer(bytes, txn: txn) {
            // A wrong answer on our own TCP connection: the stream cannot be trusted.
            attemptFailed(txn, outcome: .error)
        }
    }

    func tcpUpstreamClosed(txn: Transaction, attempt: Int) {
        guard txn.attempt == attempt, !txn.finished, txn.tcpChannel != nil else { return }
        txn.tcpChannel = nil
        counters.upstreamErrors += 1
        attemptFailed(txn, outcome: .error)
    }

    /// Admits a new client TCP connection within the global and per-client limits (shared
    /// by all loops).
    func admitTCP(from client: IPAddress) -> Bool {
        guard shared.admitTCP(from: client) else {
            counters.tcpRejected += 1
            return false
        }
        return true
    }

    /// The TCP listener could not accept (EMFILE, ENFILE, ENOBUFS, ENOMEM); it backs off.
    func acceptFailed(_ error: any Error) {
        counters.acceptErrors += 1
        logFault("accept", "cannot accept TCP connections: \(error); accepting again shortly")
    }

    /// Logs a recurring fault at most once per 10 s per kind; the counters have the totals.
    private func logFault(_ kind: String, _ message: @autoclosure () -> String) {
        guard let skipped = faultLog.admit(kind, now: now) else { return }
        logger.warning("\(message())\(skipped > 0 ? " (\(skipped) more since the last report)" : "")")
    }

    func releaseTCP(from client: IPAddress) {
        shared.releaseTCP(from: client)
    }

    // MARK: - Lifecycle

    /// Succeeds when no query is in flight (immediately if none is).
    /// Closes upstream sockets idle for `upstreamSocketIdle` and forgets empty pools, so
    /// file descriptors stay bounded by recent activity, not by every mark ever seen.
    /// Runs periodically on the loop (started by `startSweeping`).
    func sweepIdleUpstreams() {
        let cutoff = now - seconds(config.upstreamSocketIdle)
        for (key, pool) in pools {
            for socket in pool.ready where socket.pending.isEmpty && socket.lastUsed < cutoff {
                counters.idleSocketsClosed += 1
                retire(socket)
            }
            if pool.ready.isEmpty {
                pools[key] = nil
            }
        }
    }

    func startSweeping() {
        let interval = TimeAmount.nanoseconds(max(config.upstreamSocketIdle.nanoseconds / 2, 100_000_000))
        let bound = NIOLoopBound(self, eventLoop: loop)
        loop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
            bound.value.sweepIdleUpstreams()
        }
    }

    func drain() -> EventLoopFuture<Void> {
        draining = true
        if outstanding == 0 { return loop.makeSucceededFuture(()) }
        let promise = loop.makePromise(of: Void.self)
        drainWaiters.append(promise)
        return promise.futureResult
    }
}

/// What an answer in the cache belongs to: the policy view, the pool that made it and the
/// mark it was fetched with. Two clients share an answer only when all three agree.
struct CacheView: Hashable, Sendable {
    var view: PolicyView
    var pool: String
    var upstreamMark: UInt32
}

/// The coalescing key, hashed once: the dictionary of queries in flight is probed up to
/// four times per query (find, insert, find, remove) and hashing the view's names and the
/// question is most of a probe's cost.
struct InflightKey: Hashable {
    let cache: AnswerCache<CacheView>.Key
    let proto: TransportProtocol
    private let hash: Int

    init(cache: AnswerCache<CacheView>.Key, proto: TransportProtocol) {
        self.cache = cache
        self.proto = proto
        var h = Hasher()
        h.combine(cache)
        h.combine(proto)
        self.hash = h.finalize()
    }

    func hash(into hasher: inout Hasher) { hasher.combine(hash) }

    static func == (a: InflightKey, b: InflightKey) -> Bool {
        a.hash == b.hash && a.proto == b.proto && a.cache == b.cache
    }
}

/// A client waiting on another client's identical query in flight.
struct Follower {
    var query: DNSMessage
    var reply: ReplyTarget
    var tcpClient: TCPClientHandler?
    var client: IPAddress
    var event: PendingEvent? = nil
}

/// ASCII lower case of one byte (wire-name comparisons).
func lowercase(_ b: UInt8) -> UInt8 { b >= 0x41 && b <= 0x5A ? b | 0x20 : b }

func seconds(_ t: TimeAmount) -> Double { Double(t.nanoseconds) / 1e9 }

func hex(_ v: UInt32) -> String { "0x" + String(v, radix: 16) }

func errnoText(_ e: Int32) -> String { "\(String(cString: strerror(e))) (errno \(e))" }
