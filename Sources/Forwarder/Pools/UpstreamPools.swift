import Logging
import MarkCore
import NIOCore
import NIOSSL
import QueryCore

/// One connection of a pool (DoT, DoH or plain TCP), on the pool's data-plane loop. Queries given
/// before it is ready wait in it; over TLS nothing is written before the handshake, the
/// certificate and the pins are checked.
protocol PooledConnection: AnyObject {
    func send(_ query: [UInt8], ref: QueryRef)
    /// The engine gave up on `ref` (timeout, another answer): a late answer is dropped.
    func cancel(_ ref: QueryRef)
    func close()
}

/// A query a connection carried that was not answered when the connection ended.
struct UnansweredQuery {
    var ref: QueryRef
    var query: [UInt8]
}

/// The engine's attempt a pooled connection carries.
typealias QueryRef = AttemptRef

extension AttemptRef {
    /// The order unanswered queries are re-sent or failed in.
    static func before(_ a: QueryRef, _ b: QueryRef) -> Bool { a.txn.index < b.txn.index }
}

/// One engine's stream connections (DoT, DoH, and plain upstreams' TCP queries), pooled
/// per (mark, upstream): a connection's socket gets the mark as SO_MARK before connect and
/// only ever carries queries of that mark. Lives on the engine's own data-plane loop
/// (`loop`), and so do its connections (`LoopStreamChannel`): a query and its answer never
/// change threads. Decisions are `ConnectionPoolState`'s; answers and failures reach the
/// engine as jobs of the same loop, after the connection's event is handled.
/// `max-connections` is shared out over the engines (`engines`, at least one connection
/// each); with the adaptive loop spread (the default) one engine serves every UDP client
/// until the first loop is busy.
final class UpstreamPools {
    struct Key: Hashable {
        var mark: UInt32
        var upstream: StreamUpstream

        /// The mark, the address and the kind (equality compares the whole upstream: name,
        /// CA, pins). Hashing every field, strings and pins included, cost more than the
        /// rest of choosing a connection, per query.
        func hash(into hasher: inout Hasher) {
            hasher.combine(mark)
            hasher.combine(upstream.endpoint)
            hasher.combine(upstream.isHTTPS)
        }
    }

    final class Pool {
        /// The upstream as written (`tls://...`): its stats and metrics label, made once
        /// (formatting it per query was ~4,400 instructions, callgrind).
        let name: String
        var state: ConnectionPoolState
        var connections: [Int: any PooledConnection] = [:]
        /// Which connection carries each query in flight.
        var carriers: [QueryRef: Int] = [:]
        /// Queries re-sent once after their connection was closed under them.
        var resent: Set<QueryRef> = []
        init(_ limits: ConnectionPoolState.Limits, name: String) {
            state = ConnectionPoolState(limits: limits)
            self.name = name
        }
    }

    let loop: DataPlaneLoop
    private unowned let engine: QueryEngine
    let stats: SecureStats
    let connectTimeout: TimeAmount
    let idleTimeout: Double
    let logger: Logger
    private var pools: [Key: Pool] = [:]
    private var contexts: [StreamUpstream: Result<NIOSSLContext, TLSFailure>] = [:]
    private var faultLog = FaultLogLimiter(interval: 10)
    private var sweep: RepeatedTask?

    /// How many engines share a pool's `max-connections` (each has its own pools).
    let engines: Int

    init(engine: QueryEngine, engines: Int, stats: SecureStats, connectTimeout: TimeAmount, idleTimeout: Double,
         logger: Logger) {
        self.engine = engine; self.loop = engine.loop; self.stats = stats; self.engines = engines
        self.connectTimeout = connectTimeout; self.idleTimeout = idleTimeout; self.logger = logger
    }

    var now: Double { Monotonic.seconds }

    // MARK: - From the engine

    func send(_ query: [UInt8], ref: QueryRef, mark: UInt32, upstream: StreamUpstream) {
        let key = Key(mark: mark, upstream: upstream)
        let pool = pools[key] ?? makePool(key)
        let name = pool.name
        switch pool.state.route(now: now) {
        case .backedOff:
            stats.update(name) { $0.failures["backoff", default: 0] += 1 }
            report(ref, nil)
        case .use(let id, let reused):
            stats.update(name) { $0.queries += 1; if reused { $0.reusedQueries += 1 } }
            pool.carriers[ref] = id
            pool.connections[id]?.send(query, ref: ref)
        case .open(let id):
            stats.update(name) { $0.queries += 1; $0.connectionsOpened += 1; $0.connectionsOpen += 1 }
            guard let connection = open(key, id: id) else {
                pool.state.closed(id, failedToOpen: true, now: now)
                stats.update(name) { $0.connectionsOpen -= 1 }
                report(ref, nil)
                return
            }
            pool.connections[id] = connection
            pool.carriers[ref] = id
            connection.send(query, ref: ref)
        }
        startSweep()
    }

    func cancel(_ ref: QueryRef, key: Key) {
        guard let pool = pools[key], let id = pool.carriers.removeValue(forKey: ref) else { return }
        pool.resent.remove(ref)
        pool.connections[id]?.cancel(ref)
        pool.state.finished(id, now: now)
    }

    /// At shutdown.
    func closeAll() {
        sweep?.cancel()
        sweep = nil
        for pool in pools.values { pool.connections.values.forEach { $0.close() } }
    }

    // MARK: - From the connections

    func ready(_ key: Key, id: Int) {
        pools[key]?.state.opened(id, now: now)
        stats.update(key.upstream.description) { $0.handshakes += 1 }
    }

    /// An answer for `ref`, sent with `sentID`, came on connection `id`.
    func answered(_ key: Key, id: Int, ref: QueryRef, sentID: UInt16, answer: ByteBuffer) {
        guard let pool = pools[key], pool.carriers.removeValue(forKey: ref) != nil else { return }
        pool.resent.remove(ref)
        pool.state.finished(id, now: now)
        let engine = NIOLoopBound(engine, eventLoop: loop)
        loop.execute { engine.value.secureAnswer(answer, ref: ref, id: sentID) }
    }

    /// One query of connection `id` failed on its own (a DoH HTTP error, a reset stream):
    /// its attempt fails over; the connection stays.
    func queryFailed(_ key: Key, id: Int, ref: QueryRef, failure: TLSFailure) {
        guard let pool = pools[key], pool.carriers.removeValue(forKey: ref) != nil else { return }
        pool.resent.remove(ref)
        pool.state.finished(id, now: now)
        let name = key.upstream.description
        stats.update(name) { $0.failures[failure.cause.rawValue, default: 0] += 1 }
        if let skipped = faultLog.admit("\(name) \(failure.cause.rawValue)", now: now) {
            logger.warning("upstream \(name) (mark \(hex(key.mark))): \(failure.words); failing over\(skipped > 0 ? " (\(skipped) more since the last report)" : "")")
        }
        report(ref, failure)
    }

    /// The server set `edns-tcp-keepalive` on connection `id`.
    func keepalive(_ key: Key, id: Int, seconds: Double) {
        pools[key]?.state.keepalive(id, seconds: seconds)
    }

    /// Connection `id` ended. `failure`: why, when it never became ready or broke; nil when
    /// the server (or we) closed it in order. Its unanswered queries are re-sent once on
    /// another connection when it had been ready (a server closing an idle or busy
    /// connection is invisible to clients), else their attempts fail over.
    func closed(_ key: Key, id: Int, wasReady: Bool, failure: TLSFailure?, unanswered: [UnansweredQuery]) {
        guard let pool = pools[key], pool.connections.removeValue(forKey: id) != nil else { return }
        let name = key.upstream.description
        pool.state.closed(id, failedToOpen: !wasReady, now: now)
        stats.update(name) {
            $0.connectionsOpen -= 1
            if let failure { $0.failures[failure.cause.rawValue, default: 0] += 1 }
        }
        if let failure {
            let kind = "\(name) \(failure.cause.rawValue)"
            if let skipped = faultLog.admit(kind, now: now) {
                let plainNote = key.upstream.isEncrypted ? ", never in plain DNS" : ""
                logger.warning("upstream \(name) (mark \(hex(key.mark))): \(failure.words); failing over\(plainNote)\(skipped > 0 ? " (\(skipped) more since the last report)" : "")")
            }
        }
        for q in unanswered where pool.carriers.removeValue(forKey: q.ref) != nil {
            if wasReady, !(failure?.cause.isTLS ?? false), pool.resent.insert(q.ref).inserted {
                stats.update(name) { $0.resent += 1 }
                send(q.query, ref: q.ref, mark: key.mark, upstream: key.upstream)
            } else {
                pool.resent.remove(q.ref)
                report(q.ref, failure)
            }
        }
    }

    // MARK: - Inside

    private func makePool(_ key: Key) -> Pool {
        // Each engine has its own pools: max-connections is shared out over them (at least
        // one each), so that all loops together open no more than it says.
        let share = max(1, key.upstream.maxConnections / engines)
        let limits = ConnectionPoolState.Limits(maxConnections: share, maxInFlight: 100,
                                                idleTimeout: idleTimeout)
        let pool = Pool(limits, name: key.upstream.description)
        pools[key] = pool
        return pool
    }

    private func context(_ upstream: StreamUpstream) -> Result<NIOSSLContext, TLSFailure> {
        if let c = contexts[upstream] { return c }
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.minimumTLSVersion = .tlsv12
        tls.certificateVerification = .fullVerification
        tls.trustRoots = upstream.caFile.map { .file($0) } ?? .default
        if upstream.isHTTPS { tls.applicationProtocols = ["h2"] }
        let result: Result<NIOSSLContext, TLSFailure>
        do {
            result = .success(try NIOSSLContext(configuration: tls))
        } catch {
            result = .failure(TLSFailure(cause: .badCA, words: "cannot load the trusted CAs (\(upstream.caFile ?? "system store")): \(error)"))
        }
        contexts[upstream] = result
        return result
    }

    private func open(_ key: Key, id: Int) -> (any PooledConnection)? {
        if !key.upstream.isEncrypted {
            return StreamConnection.connect(owner: ConnectionOwner(pools: self, key: key, id: id), context: nil,
                                            timeout: connectTimeout)
        }
        switch context(key.upstream) {
        case .failure(let failure):
            let kind = "\(key.upstream) ca"
            if faultLog.admit(kind, now: now) != nil { logger.error("upstream \(key.upstream): \(failure.words)") }
            stats.update(key.upstream.description) { $0.failures[failure.cause.rawValue, default: 0] += 1 }
            return nil
        case .success(let context):
            let owner = ConnectionOwner(pools: self, key: key, id: id)
            if key.upstream.isHTTPS {
                return DoHConnection.connect(owner: owner, context: context, timeout: connectTimeout)
            }
            return StreamConnection.connect(owner: owner, context: context, timeout: connectTimeout)
        }
    }

    private func report(_ ref: QueryRef, _ failure: TLSFailure?) {
        let engine = NIOLoopBound(engine, eventLoop: loop)
        loop.execute { engine.value.secureFailed(ref) }
    }

    /// Once a second while connections exist: close the idle ones (RFC 7766 6.2.3).
    private func startSweep() {
        guard sweep == nil else { return }
        let pools = NIOLoopBound(self, eventLoop: loop)
        sweep = loop.scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) { _ in
            pools.value.closeIdle()
        }
    }

    private func closeIdle() {
        let now = self.now
        for (key, pool) in pools {
            for id in pool.state.idle(now: now) {
                stats.update(key.upstream.description) { $0.idleClosed += 1 }
                pool.connections[id]?.close()
            }
            if pool.state.isEmpty, pool.carriers.isEmpty { pools[key] = nil }
        }
        if pools.isEmpty { sweep?.cancel(); sweep = nil }
    }
}

/// A connection's way back to its pool: the pool, its key and the connection's id.
struct ConnectionOwner {
    unowned let pools: UpstreamPools
    let key: UpstreamPools.Key
    let id: Int

    var loop: DataPlaneLoop { pools.loop }
    var mark: UInt32 { key.mark }
    var upstream: StreamUpstream { key.upstream }

    func ready() { pools.ready(key, id: id) }
    func answered(_ ref: QueryRef, sentID: UInt16, answer: ByteBuffer) {
        pools.answered(key, id: id, ref: ref, sentID: sentID, answer: answer)
    }
    func queryFailed(_ ref: QueryRef, _ failure: TLSFailure) {
        pools.queryFailed(key, id: id, ref: ref, failure: failure)
    }
    func keepalive(seconds: Double) { pools.keepalive(key, id: id, seconds: seconds) }
    func closed(wasReady: Bool, failure: TLSFailure?, unanswered: [UnansweredQuery]) {
        pools.closed(key, id: id, wasReady: wasReady, failure: failure, unanswered: unanswered)
    }
}
