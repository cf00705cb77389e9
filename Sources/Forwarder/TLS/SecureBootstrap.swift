import MarkCore
import NIOCore
import NIOSSL

#if canImport(Glibc)
import Glibc
#endif

/// What DoT, DoH and plain TCP pooled connections share: the TCP connection on the pool's
/// data-plane loop with the pool's mark as SO_MARK (set before connect, so the SYN is
/// routed by it and the conntrack entry carries it), the TLS client handler, and a
/// handshake deadline.
enum SecureBootstrap {
    /// Connects; `pipeline` fills the new channel's pipeline first. `onChannel` gets the
    /// connected channel, `onFailure` a connect failure or a handshake that did not finish
    /// within `timeout` (both on the pool's loop).
    static func connect(owner: ConnectionOwner, timeout: TimeAmount, pipeline: (any Channel) throws -> Void,
                        onChannel: @escaping (any Channel) -> Void, onFailure: @escaping (TLSFailure) -> Void) {
        let loop = owner.loop
        let connected = LoopStreamChannel.connect(on: loop, to: owner.upstream.endpoint, mark: owner.mark,
                                                  timeout: timeout, initialize: pipeline)
        connected.assumeIsolated().whenComplete { result in
            switch result {
            case .success(let channel):
                onChannel(channel)
                // The handshake gets the same time as the connect.
                loop.assumeIsolated().scheduleTask(in: timeout) {
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
