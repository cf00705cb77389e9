import DNSWire
import MarkCore
import NIOCore
import NIOExtras
import NIOPosix
import QueryCore

#if canImport(Glibc)
import Glibc
#endif

/// TCP: client queries over TCP go upstream over TCP, a connection per attempt with the
/// client's mark set before connect (so the SYN and the conntrack entry carry it). The
/// connections live on `tcpLoop` (NIO); their events come back to the engine's loop.
extension QueryEngine {
    func sendTCP(_ start: StartAttempt) {
        let bound = NIOLoopBound(self, eventLoop: loop)
        let ref = start.ref
        var bootstrap = ClientBootstrap(group: tcpLoop)
            .connectTimeout(config.upstreamTimeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandlers([
                        ByteToMessageHandler(LengthFieldBasedFrameDecoder(lengthFieldBitLength: .twoBytes)),
                        LengthFieldPrepender(lengthFieldBitLength: .twoBytes),
                        UpstreamTCPHandler(engine: bound, ref: ref),
                    ])
                }
            }
        if start.mark != 0 {
            bootstrap = bootstrap.channelOption(.socket(SocketOptionLevel(SOL_SOCKET), SO_MARK),
                                                value: SocketOptionValue(Int32(bitPattern: start.mark)))
        }
        let upstream = start.upstream
        bootstrap.connect(to: socketAddress(upstream)).hop(to: loop).assumeIsolated().whenComplete { result in
            switch result {
            case .success(let channel):
                guard self.core.isCurrent(ref) else { channel.close(promise: nil); return }
                let id = self.random.next16()
                self.attempts[ref.txn] = .tcp(channel, id)
                var bytes = self.allocator.buffer(capacity: start.query.count)
                bytes.writeBytes(start.query)
                bytes.withUnsafeMutableReadableBytes { DNSRewrite.setID(id, in: $0) }
                self.core.counters.upstreamSent += 1
                channel.writeAndFlush(bytes, promise: nil)
            case .failure(let error):
                // The attempt may have timed out meanwhile: counted and logged once.
                guard self.core.isCurrent(ref) else { return }
                self.logFault("connect \(upstream)", "cannot connect to upstream \(upstream) over TCP with mark \(hex(start.mark)): \(error)")
                self.core.counters.upstreamErrors += 1
                self.fail(ref, .error)
            }
        }
    }

    func tcpAnswer(_ bytes: ByteBuffer, ref: AttemptRef) {
        guard core.isCurrent(ref), case .tcp(_, let id) = attempts[ref.txn] else { return }
        bytes.withUnsafeReadableBytes { raw in
            perform(core.answerArrived(ref, expectedID: id, bytes: raw, now: now), answer: raw)
        }
        // A wrong answer on our own TCP connection: the stream cannot be trusted.
        if core.isCurrent(ref) { fail(ref, .error) }
    }

    func tcpUpstreamClosed(_ ref: AttemptRef) {
        guard core.isCurrent(ref), case .tcp = attempts[ref.txn] else { return }
        core.counters.upstreamErrors += 1
        fail(ref, .error)
    }

    func socketAddress(_ e: Endpoint) -> SocketAddress {
        if let a = addresses[e] { return a }
        let a = e.socketAddress
        addresses[e] = a
        return a
    }

    /// The TCP listener could not accept (EMFILE, ENFILE, ENOBUFS, ENOMEM); it backs off.
    func acceptFailed(_ error: String) {
        core.counters.acceptErrors += 1
        logFault("accept", "cannot accept TCP connections: \(error); accepting again shortly")
    }
}
