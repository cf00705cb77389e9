import DNSWire
import Logging
import MarkCore
import MarkPolicy
import NIOCore
import QueryCore

/// The shell of one event loop's query path. The decisions are `core`'s (a pure
/// `QueryStateMachine`); this type finds marks (ctnetlink, packet marks), owns the
/// sockets, the one attempt timer and the reply targets, and performs what the core says.
///
/// Everything here runs on `loop`, a data-plane thread that waits on the UDP sockets
/// itself (see `DataPlaneLoop`); no locks. TCP connections live on `tcpLoop`, a NIO loop,
/// and reach the engine through `loop.execute` (see `TCP/`). The UDP sockets live in
/// `UDP/`, and what is told to the observer in `QueryEngine+Events`.
final class QueryEngine {
    let loop: DataPlaneLoop
    /// The NIO loop of this engine's TCP connections (client and upstream).
    let tcpLoop: any EventLoop
    let config: ForwarderConfig
    let markSource: (any MarkSource)?
    let logger: Logger
    var core: QueryStateMachine
    /// Where each waiting client's answer goes, by the handle the core knows it by.
    var clients = ClientSlab()
    /// The socket or connection of each transaction's current attempt.
    var attempts = AttemptSlots()
    let neighbours: NeighbourTable
    private var interfaceNames: [Int: String] = [:]
    var addresses: [Endpoint: SocketAddress] = [:]
    var pools: [UpstreamUDPPool.Key: UpstreamUDPPool] = [:]
    /// Every open upstream UDP socket, by its epoll token (above the listeners' tokens).
    var upstreamSockets: [Int: UpstreamUDPSocket] = [:]
    var nextSocketToken = QueryEngine.firstSocketToken
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
    var random = SecureRandom()
    var loggedNoMark: Set<NoMarkReason> = []
    /// Whether packet marks (SO_RCVMARK) may stand in for ctnetlink lookups.
    var markTrust: PacketMarkTrust
    var faultLog = FaultLogLimiter(interval: 10)
    /// When the loop's deadline, the one timer of this loop's attempts, is due (the core's
    /// earliest deadline when it was set; a later deadline needs no new timer).
    var timerAt = Double.infinity
    /// The client UDP sockets of this loop (the index is the epoll token).
    var listeners: [RawUDPListener] = []
    /// On the first loop only, with several loops: how many of them UDP clients are steered to.
    var spread: UDPSpread?
    /// Set at shutdown, once the listeners and upstream sockets are closed: no new socket.
    var socketsClosed = false
    private var drainWaiters: [EventLoopPromise<Void>] = []
    /// Told of every query's outcome (metrics, top clients, query log); see QueryEngine+Events.
    let observer: (any QueryObserver)?
    var pendingEvent: PendingEvent?
    /// `[[set]]` writes and the answers held for them (see `Sets/`).
    let sets = SetWriter()
    /// The policy's `tls://` and `https://` upstreams by address, and this engine's
    /// connection pools (on its own loop, made at the first pooled query; see `Pools/`).
    var secureUpstreams: [Endpoint: StreamUpstream]
    /// The TCP side of the plain upstreams (with their pool's `max-connections`).
    var tcpUpstreams: [Endpoint: StreamUpstream]
    var streamPools: UpstreamPools?

    init(loop: DataPlaneLoop, tcpLoop: any EventLoop, config: ForwarderConfig, markSource: (any MarkSource)?,
         shared: SharedState, neighbours: NeighbourTable, logger: Logger) {
        self.loop = loop
        self.tcpLoop = tcpLoop
        self.shared = shared
        self.batcher = WriteBatcher(loop: loop)
        defer {
            batcher.upstream = { [unowned self] in self.flushUpstream() }
            batcher.sets = { [unowned self] in self.flushSets() }
        }
        self.config = config
        self.markSource = markSource
        self.neighbours = neighbours
        self.logger = logger
        self.observer = config.observer
        self.markTrust = Self.markTrust(config, config.policy)
        self.core = QueryStateMachine(policy: config.policy, limits: config.queryLimits)
        self.secureUpstreams = config.policy.config.secureUpstreams
        self.tcpUpstreams = config.policy.config.tcpUpstreams
    }

    var inFlight: Int { core.inFlight }
    var now: Double { Monotonic.seconds }

    func reload(_ policy: PolicyEngine) {
        core.reload(policy)
        secureUpstreams = policy.config.secureUpstreams
        tcpUpstreams = policy.config.tcpUpstreams
        // The ruleset may have changed with the policy: packet marks are checked again.
        markTrust = Self.markTrust(config, policy)
    }

    /// Packet-mark trust from scratch, for the policy's bits and mark source (unless
    /// `--mark-source` set it).
    static func markTrust(_ config: ForwarderConfig, _ policy: PolicyEngine) -> PacketMarkTrust {
        PacketMarkTrust(mode: config.markSource ?? policy.config.conntrack.markSource, mask: policy.mask)
    }

    func setLocalZone(_ zone: LocalZone) {
        core.setLocalZone(zone)
    }

    /// The counters with the listeners' reply drops.
    var countersNow: Counters {
        var c = core.counters
        for listener in listeners { c.replyDrops += listener.sendDrops }
        return c
    }

    // MARK: - Client side

    /// A query from a client. `bytes` is the whole DNS message (valid during the call).
    /// `cut`: a datagram longer than the receive buffer (MSG_TRUNC), only its start here.
    func receive(_ bytes: UnsafeRawBufferPointer, cut: Bool = false, flow: FlowTuple, reply: ReplyTarget, interfaceIndex: Int? = nil,
                 packetMark: UInt32? = nil, tcpClient: TCPClientToken? = nil) {
        // Open TCP connections get nothing more once the drain began (UDP: SERVFAIL).
        if let tcpClient, core.draining {
            tcpClient.queryDone()
            return
        }
        openEvent(flow)
        defer { pendingEvent = nil }
        let intake = core.intake(bytes, proto: flow.proto, cut: cut)
        let query: DNSMessage
        switch intake {
        case .drop:
            tcpClient?.queryDone()
            return
        case .reply(let answer):
            respond(answer, to: reply)
            tcpClient?.queryDone()
            return
        case .query(let q):
            query = q
        }
        // Mark of the client's flow, and what else of the client the policy needs.
        let lookup = resolveMark(flow, packetMark: packetMark, interfaceIndex: interfaceIndex)
        var identity = ClientIdentity(address: flow.client.address)
        let needs = core.identityNeeds(lookup)
        if needs.mac { identity.mac = neighbours.mac(for: flow.client.address) }
        if needs.interface { identity.interface = interfaceName(interfaceIndex) }
        let handle = clients.nextHandle
        let arriving = ArrivingQuery(message: query, proto: flow.proto, lookup: lookup, identity: identity,
                                     handle: handle)
        let now = self.now  // one clock read per query
        let arrival = core.queryArrived(arriving, bytes: bytes, now: now)
        noteDecision(lookup, arrival.markName)
        if let reason = arrival.missing { noteNoMark(reason, lookup: lookup, flow: flow, refused: arrival.refused) }
        switch arrival.action {
        case .answer(let answer, let source):
            noteSource(source)
            if !arrival.fills.isEmpty,
               holdForSets(arrival.fills, HeldReply(reply: reply, bytes: answer, tcpClient: tcpClient,
                                                    event: takeEvent(), delivery: nil)) {
                return
            }
            respond(answer, to: reply)
            tcpClient?.queryDone()
        case .joined:
            clients.insert(ClientContext(reply: reply, tcpClient: tcpClient, event: takeEvent()), at: handle)
        case .start(let start):
            clients.insert(ClientContext(reply: reply, tcpClient: tcpClient, event: takeEvent()), at: handle)
            startAttempt(start)
        }
    }

    func respond(_ bytes: [UInt8], to reply: ReplyTarget) {
        completePending(response: bytes)
        bytes.withUnsafeBytes { reply.send($0, batcher: batcher, allocator: allocator) }
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

    private func interfaceName(_ index: Int?) -> String? {
        guard let index, index > 0 else { return nil }
        if let n = interfaceNames[index] { return n }
        guard let n = SystemText.interfaceName(index) else { return nil }
        interfaceNames[index] = n
        return n
    }

    // MARK: - Performing the core's actions

    /// Starts an attempt on its transport, with the timer covering its deadline.
    func startAttempt(_ start: StartAttempt) {
        if start.deadline < timerAt { armTimer(at: start.deadline) }
        // One emptiness check on the plain-only path (no hashing of the upstream per attempt).
        if !secureUpstreams.isEmpty, let secure = secureUpstreams[start.upstream] { return sendPooled(start, secure) }
        switch start.proto {
        case .udp: sendUDP(start)
        case .tcp: sendTCP(start)
        }
    }

    /// Performs the result of an attempt event. `answer` is the upstream's answer it was
    /// about, if any.
    func perform(_ result: AttemptResult, answer: UnsafeRawBufferPointer? = nil) {
        if let ended = result.ended {
            let io = attempts.removeValue(forKey: ended.ref.txn)
            observeAttempt(ended, local: io?.localEndpoint)
            if let io { release(io) }
        }
        switch result.action {
        case .ignored: break
        case .retry(let start): startAttempt(start)
        case .finish(let finish): deliver(finish, answer: answer)
        }
    }

    /// Fails attempt `ref` (if it is still the current one) and performs what follows.
    func fail(_ ref: AttemptRef, _ outcome: UpstreamPlan.Outcome, penalise: Bool = true) {
        perform(core.attemptFailed(ref, outcome: outcome, penalise: penalise, now: now))
    }

    private func deliver(_ finish: Finish, answer: UnsafeRawBufferPointer?) {
        let hold = !finish.fills.isEmpty && holdForSets(finish.fills, nil)
        for d in finish.deliveries {
            guard let client = clients.remove(d.handle) else { continue }
            if hold {
                sets.tickReplies.append(HeldReply(reply: client.reply, bytes: heldBytes(d, finish, answer: answer),
                                                  tcpClient: client.tcpClient, event: client.event, delivery: d))
                continue
            }
            complete(client.event, delivery: d)
            if let bytes = d.bytes {
                bytes.withUnsafeBytes { client.reply.send($0, batcher: batcher, allocator: allocator) }
            } else if let replacement = finish.replacement {
                replacement.withUnsafeBytes { src in
                    client.reply.send(count: src.count, batcher: batcher, allocator: allocator) { out in
                        out.copyMemory(from: src)
                        d.rewrite.apply(to: out)
                    }
                }
            } else {
                // The upstream's answer itself, cut to the length the core kept, with this
                // client's ID, case and flags written in place in the send slot.
                let length = min(finish.answerLength ?? 0, answer?.count ?? 0)
                client.reply.send(count: length, batcher: batcher, allocator: allocator) { out in
                    if let answer, length > 0 { out.copyMemory(from: UnsafeRawBufferPointer(rebasing: answer[0..<length])) }
                    d.rewrite.apply(to: out)
                }
            }
            client.tcpClient?.queryDone()
        }
        if finish.drained {
            let waiters = drainWaiters
            drainWaiters = []
            waiters.forEach { $0.succeed(()) }
        }
    }

    /// Gives an attempt's socket slot back or closes its connection.
    func release(_ io: AttemptIO) {
        switch io {
        case .udp(let socket, let id):
            socket.pending[id] = nil
            maybeClose(socket)
        case .secure(let ref, let key):
            releaseSecure(ref, key)
        }
    }

    /// Logs a recurring fault at most once per 10 s per kind; the counters have the totals.
    func logFault(_ kind: String, _ message: @autoclosure () -> String) {
        guard let skipped = faultLog.admit(kind, now: now) else { return }
        logger.warning("\(message())\(skipped > 0 ? " (\(skipped) more since the last report)" : "")")
    }

    // MARK: - Lifecycle

    func drain() -> EventLoopFuture<Void> {
        if core.drain() { return loop.makeSucceededFuture(()) }
        let promise = loop.makePromise(of: Void.self)
        drainWaiters.append(promise)
        return promise.futureResult
    }
}

/// The socket or connection an attempt went out on, and the ID it was sent with.
enum AttemptIO {
    case udp(UpstreamUDPSocket, UInt16)
    /// A query on a pooled DoT, DoH or TCP connection (the pool knows which one).
    case secure(AttemptRef, UpstreamPools.Key)

    var localEndpoint: Endpoint? {
        if case .udp(let socket, _) = self { return socket.local }
        return nil
    }
}
