import DNSWire
import MarkCore
import NIOCore
import QueryCore

/// Pooled upstreams (DoT, DoH, plain TCP): the attempt goes to this engine's
/// `UpstreamPools` (made at the first pooled query), which picks or opens a connection of
/// the attempt's (mark, upstream) pool on this same loop; the answer or the failure comes
/// back here as a job of the loop. A failure (connect, handshake, certificate, pin, HTTP)
/// fails the attempt over like any other; an encrypted upstream's query is never sent in
/// plain DNS instead.
extension QueryEngine {
    func sendPooled(_ start: StartAttempt, _ upstream: StreamUpstream) {
        let key = UpstreamPools.Key(mark: start.mark, upstream: upstream)
        attempts[start.ref.txn] = .secure(start.ref, key)
        core.counters.upstreamSent += 1
        let pools = streamPools ?? UpstreamPools(engine: self, engines: config.engines, stats: config.secureStats,
                                                 connectTimeout: config.upstreamTimeout,
                                                 idleTimeout: config.secureIdleTimeout, logger: logger)
        streamPools = pools
        pools.send(start.query, ref: start.ref, mark: start.mark, upstream: upstream)
    }

    func secureAnswer(_ bytes: ByteBuffer, ref: AttemptRef, id: UInt16) {
        guard core.isCurrent(ref), case .secure = attempts[ref.txn] else { return }
        // The pools forgot the attempt when they passed its answer on: ending it must not
        // hop to their loop again to cancel it (releaseSecure), a wake-up per query.
        _ = attempts.removeValue(forKey: ref.txn)
        bytes.withUnsafeReadableBytes { raw in
            perform(core.answerArrived(ref, expectedID: id, bytes: raw, now: now), answer: raw)
        }
        // An answer that does not match its query on our own connection: fail over.
        if core.isCurrent(ref) { fail(ref, .error) }
    }

    func secureFailed(_ ref: AttemptRef) {
        guard core.isCurrent(ref), case .secure = attempts[ref.txn] else { return }
        core.counters.upstreamErrors += 1
        fail(ref, .error)
    }

    /// The attempt is over: its connection forgets it (a late answer is dropped).
    func releaseSecure(_ ref: AttemptRef, _ key: UpstreamPools.Key) {
        streamPools?.cancel(ref, key: key)
    }

    /// At shutdown, once the queries are drained.
    func closePools() {
        streamPools?.closeAll()
    }
}
