import DNSWire
import MarkCore
import NIOCore
import QueryCore

#if canImport(Glibc)
import Glibc
#endif

/// Upstream UDP: connected sockets per (mark, upstream), picked at random, retired after
/// `queriesPerSocket` queries, an ID never reused on one socket, and a new socket's port
/// never one that carried another mark to the same upstream lately (port quarantine).
extension QueryEngine {
    func sendUDP(_ start: StartAttempt) {
        let pool = self.pool(mark: start.mark, upstream: start.upstream)
        guard let socket = pickSocket(pool) else {
            // No socket could be opened (EMFILE, no route, ...; logged): fail over now.
            fail(start.ref, .error)
            return
        }
        // An ID is never reused on one socket, so a late answer to an abandoned attempt
        // cannot match a newer query (a socket carries at most `queriesPerSocket`).
        var id = random.next16()
        while !socket.usedIDs.insert(id) { id = random.next16() }
        socket.pending[id] = start.ref
        attempts[start.ref.txn] = .udp(socket, id)
        socket.used += 1
        socket.lastUsed = now
        core.counters.upstreamSent += 1
        if socket.used >= config.queriesPerSocket { retire(socket) }  // closes once answered
        if start.query.count <= UpstreamSendQueue.slotSize {
            // Sent with the tick's other queries (sendmmsg per socket), see `flushUpstream`.
            // A flush can refill the queue (its refused sends fail over): if it is still
            // full, this one goes on its own.
            if upstreamSends.isFull { flushUpstream() }
            if !upstreamSends.isFull {
                upstreamSends.enqueue(start.query, id: id, socket: socket, ref: start.ref)
                batcher.scheduleFlush()
                return
            }
        }
        var bytes = start.query
        bytes.withUnsafeMutableBytes { DNSRewrite.setID(id, in: $0) }
        let sent = bytes.withUnsafeBytes { send(socket.fd, $0.baseAddress, $0.count, 0) }
        if sent < 0 { sendFailed(errno, ref: start.ref, on: socket) }
    }

    /// Sends the queries of this tick. Entries whose attempt has moved on meanwhile are
    /// not sent; a refused one fails its attempt.
    func flushUpstream() {
        upstreamSends.flush(isCurrent: { entry in
            guard core.isCurrent(entry.ref), case .udp(let s, let id) = attempts[entry.ref.txn] else { return false }
            return s === entry.socket && id == entry.id
        }, failed: { entry, error in
            guard core.isCurrent(entry.ref) else { return }
            sendFailed(error, ref: entry.ref, on: entry.socket)
        })
    }

    func pool(mark: UInt32, upstream: Endpoint) -> UpstreamUDPPool {
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

    /// A refused send: ICMP unreachable reported late (the upstream), a full buffer (this
    /// query), or netfilter refusing the flow, e.g. a full conntrack table (the socket).
    private func sendFailed(_ error: Int32, ref: AttemptRef, on socket: UpstreamUDPSocket) {
        switch error {
        case ECONNREFUSED, EHOSTUNREACH, ENETUNREACH:
            udpSocketError(error, on: socket)
        case EAGAIN, EWOULDBLOCK, ENOBUFS, EINTR:
            // Our own send buffer, not the upstream: fail over without backing it off.
            core.counters.upstreamErrors += 1
            fail(ref, .error, penalise: false)
        default:
            logFault("send \(socket.pool.upstream)", "cannot send to upstream \(socket.pool.upstream) with mark \(hex(socket.pool.key.mark)): \(errnoText(error)) (a full conntrack table or a firewall rule refusing new upstream flows?)")
            core.counters.upstreamErrors += 1
            socket.retired = true
            socket.pool.ready.removeAll { $0 === socket }
            let waiting = Array(socket.pending.values)
            socket.pending.removeAll()
            close(socket)
            for ref in waiting { fail(ref, .error) }
        }
    }

    private func retire(_ socket: UpstreamUDPSocket) {
        guard !socket.retired else { return }
        socket.retired = true
        socket.pool.ready.removeAll { $0 === socket }
        maybeClose(socket)
    }

    func maybeClose(_ socket: UpstreamUDPSocket) {
        guard socket.retired, socket.pending.isEmpty else { return }
        close(socket)
    }

    private func close(_ socket: UpstreamUDPSocket) {
        guard !socket.closed else { return }
        socket.closed = true
        recordPort(socket)
        upstreamSockets[socket.token] = nil
        Glibc.close(socket.fd)  // also leaves the loop's epoll set
    }

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
        // After shutdown closed the sockets (a retry may still come): nothing new.
        guard !socketsClosed else {
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
            // Without our own port the quarantine cannot be checked: never guess port 0.
            guard let local = DatagramReceiver.localEndpoint(of: fd) else {
                let e = errno
                Glibc.close(fd)
                openFailed(pool, "getsockname: \(errnoText(e))")
                return
            }
            if !shared.portAllowed(.init(upstream: pool.upstream, port: local.port), mark: mark, now: now) {
                // This 5-tuple carried another mark recently; its conntrack entry may still be
                // alive. Never reuse it for this mark.
                core.counters.portQuarantineRebinds += 1
                Glibc.close(fd)
                continue
            }
            let token = nextSocketToken
            nextSocketToken += 1
            do { try loop.watch(fd, token: token) } catch {
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
        core.counters.upstreamErrors += 1
    }

    /// The loop reported an upstream socket readable: reads its answers (level-triggered,
    /// as the listeners).
    func upstreamReady(_ token: Int) {
        for _ in 0..<Self.batchesPerTurn {
            guard let socket = upstreamSockets[token], !socket.closed else { return }
            let result = receiver.receive(socket.fd) { d in
                udpAnswer(d.bytes, cut: d.truncated, on: socket)
            }
            if let error = result.error { udpSocketError(error, on: socket) }
            if socket.closed || result.count < DatagramReceiver.batch { return }
        }
    }

    func udpAnswer(_ bytes: UnsafeRawBufferPointer, cut: Bool = false, on socket: UpstreamUDPSocket) {
        guard bytes.count >= DNSHeader.size else {
            core.counters.unmatchedAnswers += 1
            return
        }
        let id = UInt16(bytes[0]) << 8 | UInt16(bytes[1])
        guard let ref = socket.pending[id] else {
            core.counters.unmatchedAnswers += 1
            return
        }
        perform(core.answerArrived(ref, expectedID: id, bytes: bytes, cut: cut, now: now), answer: bytes)
    }

    /// ICMP unreachable (ECONNREFUSED) and friends: every query waiting on this socket was
    /// sent to the same upstream, so each fails over.
    func udpSocketError(_ error: Int32, on socket: UpstreamUDPSocket) {
        core.counters.upstreamErrors += 1
        logger.debug("upstream \(socket.pool.upstream) socket error: \(errnoText(error))")
        for ref in Array(socket.pending.values) { fail(ref, .error) }
    }

    /// Closes every upstream socket (shutdown).
    func closeUpstreamSockets() {
        for socket in Array(upstreamSockets.values) { close(socket) }
        pools.removeAll()
    }

    /// Closes upstream sockets idle for `upstreamSocketIdle` and forgets empty pools, so
    /// file descriptors stay bounded by recent activity, not by every mark ever seen.
    /// Runs periodically on the loop (started by `startSweeping`).
    func sweepIdleUpstreams() {
        let cutoff = now - seconds(config.upstreamSocketIdle)
        for (key, pool) in pools {
            for socket in pool.ready where socket.pending.isEmpty && socket.lastUsed < cutoff {
                core.counters.idleSocketsClosed += 1
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
}
