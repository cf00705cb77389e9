import MarkCore
import NIOCore
import NIOPosix
import NIOSSL

#if canImport(Glibc)
import Glibc
#endif

/// What DoT and DoH connections share: the TCP bootstrap with the pool's mark as SO_MARK
/// (set before connect, so the SYN is routed by it and the conntrack entry carries it),
/// the TLS client handler, and a handshake deadline.
enum SecureBootstrap {
    static func make(owner: ConnectionOwner, timeout: TimeAmount,
                     pipeline: @escaping @Sendable (any Channel) throws -> Void) -> ClientBootstrap {
        var bootstrap = ClientBootstrap(group: owner.loop)
            .connectTimeout(timeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try pipeline(channel) }
            }
        if owner.mark != 0 {
            bootstrap = bootstrap.channelOption(.socket(SocketOptionLevel(SOL_SOCKET), SO_MARK),
                                                value: SocketOptionValue(Int32(bitPattern: owner.mark)))
        }
        return bootstrap
    }

    /// Connects; `onChannel` gets the channel, `onFailure` a connect failure or a handshake
    /// that did not finish within `timeout` (both on the pool's loop).
    static func connect(_ bootstrap: ClientBootstrap, owner: ConnectionOwner, timeout: TimeAmount,
                        onChannel: @escaping (any Channel) -> Void, onFailure: @escaping (TLSFailure) -> Void) {
        let upstream = owner.upstream
        bootstrap.connect(to: upstream.endpoint.socketAddress).assumeIsolated().whenComplete { result in
            switch result {
            case .success(let channel):
                onChannel(channel)
                // The handshake gets the same time as the connect.
                owner.loop.assumeIsolated().scheduleTask(in: timeout) {
                    guard channel.isActive else { return }
                    _ = channel.pipeline.handler(type: TLSHandshakeWatcher.self).assumeIsolated().map { watcher in
                        if !watcher.isDone {
                            onFailure(TLSFailure(cause: .handshake, words: "no TLS handshake within \(timeout.nanoseconds / 1_000_000) ms"))
                        }
                    }
                }
            case .failure(let error):
                onFailure(TLSFailure(cause: .connect, words: "cannot connect over TCP with mark \(hex(owner.mark)): \(error)"))
            }
        }
    }

    /// The TLS client handler and the handshake watcher, first in a new channel's pipeline:
    /// `onReady` once the handshake, the name and the pins are checked; `onFailure` says why not.
    static func addTLS(to channel: any Channel, context: NIOSSLContext, upstream: StreamUpstream,
                       onReady: @escaping () -> Void, onFailure: @escaping (TLSFailure) -> Void) throws {
        let note = VerificationNote()
        try channel.pipeline.syncOperations.addHandlers([
            try NIOSSLClientHandler.make(context: context, upstream: upstream, note: note),
            TLSHandshakeWatcher(upstream: upstream, note: note, onReady: { _ in onReady() }, onFailure: onFailure),
        ])
    }
}
