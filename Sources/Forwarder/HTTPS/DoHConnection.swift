import MarkCore
import NIOCore
import NIOHPACK
import NIOHTTP2
import NIOSSL
import QueryCore

/// One DNS-over-HTTPS connection (RFC 8484) of a (mark, upstream) pool: HTTP/2 over TLS
/// (ALPN h2), one stream per query, many streams at once. The socket has SO_MARK set
/// before connect. Queries carry ID 0 (RFC 8484 4.1); the stream names the answer. Runs on
/// the pool's data-plane loop.
final class DoHConnection: PooledConnection {
    private let owner: ConnectionOwner
    private var channel: (any Channel)?
    private var multiplexer: NIOHTTP2Handler.StreamMultiplexer?
    private var ready = false
    private var ended = false
    private var closeRequested = false
    private var failure: TLSFailure?
    private var pending: [QueryRef: UnansweredQuery] = [:]
    private var streams: [QueryRef: any Channel] = [:]
    private var waiting: [QueryRef] = []

    private init(owner: ConnectionOwner) { self.owner = owner }

    static func connect(owner: ConnectionOwner, context: NIOSSLContext, timeout: TimeAmount) -> DoHConnection {
        let connection = DoHConnection(owner: owner)
        let bound = NIOLoopBound(connection, eventLoop: owner.loop)
        let upstream = owner.upstream
        SecureBootstrap.connect(owner: owner, timeout: timeout, pipeline: { channel in
            let c = bound.value
            try SecureBootstrap.addTLS(to: channel, context: context, upstream: upstream,
                                       onReady: { c.becameReady() }, onFailure: { c.failure = $0 })
            c.multiplexer = try channel.pipeline.syncOperations.configureHTTP2Pipeline(
                mode: .client, connectionConfiguration: .init(), streamConfiguration: .init()
            ) { stream in stream.close() }  // the server pushes nothing we want
            try channel.pipeline.syncOperations.addHandler(ConnectionEndHandler { c.end() })
        }, onChannel: { connection.attach($0) },
                                onFailure: { connection.failed($0) })
        return connection
    }

    private func attach(_ channel: any Channel) {
        self.channel = channel
        if closeRequested || ended { channel.close(promise: nil) }
    }

    private func failed(_ failure: TLSFailure) {
        if self.failure == nil { self.failure = failure }
        if let channel { channel.close(promise: nil) } else { end() }
    }

    // MARK: - PooledConnection

    func send(_ query: [UInt8], ref: QueryRef) {
        guard !ended, query.count >= 12 else { return }
        var q = query
        q[0] = 0
        q[1] = 0
        pending[ref] = UnansweredQuery(ref: ref, query: q)
        if ready { openStream(ref) } else { waiting.append(ref) }
    }

    func cancel(_ ref: QueryRef) {
        pending[ref] = nil
        streams.removeValue(forKey: ref)?.close(promise: nil)  // RST_STREAM
    }

    func close() {
        closeRequested = true
        channel?.close(promise: nil)
    }

    private func becameReady() {
        ready = true
        owner.ready()
        let queued = waiting
        waiting = []
        queued.forEach(openStream)
    }

    private func openStream(_ ref: QueryRef) {
        guard let multiplexer, let q = pending[ref] else { return }
        let request = DoHExchange.request(for: q.query, upstream: owner.upstream)
        let bound = NIOLoopBound(self, eventLoop: owner.loop)
        multiplexer.createStreamChannel { stream in
            stream.eventLoop.makeCompletedFuture {
                try stream.pipeline.syncOperations.addHandler(
                    DoHStreamHandler(request: request, onResponse: { bound.value.response(ref, $0) }))
            }
        }.assumeIsolated().whenComplete { result in
            switch result {
            case .success(let stream):
                if self.pending[ref] != nil { self.streams[ref] = stream } else { stream.close(promise: nil) }
            case .failure(let error):
                self.streamFailed(ref, TLSFailure(cause: .http, words: "cannot open an HTTP/2 stream: \(error)"))
            }
        }
    }

    /// A stream ended: with a response, or with nil when it was reset or closed first.
    private func response(_ ref: QueryRef, _ outcome: DoHExchange.Outcome?) {
        streams[ref] = nil
        guard pending[ref] != nil else { return }
        switch outcome {
        case .answer(let body)?:
            pending[ref] = nil
            var buffer = ByteBuffer()
            buffer.writeBytes(body)
            owner.answered(ref, sentID: 0, answer: buffer)
        case .httpError(let words)?:
            streamFailed(ref, TLSFailure(cause: .http, words: words))
        case nil:
            // The whole connection going away is `end`'s (its queries are re-sent once).
            guard channel?.isActive == true else { return }
            streamFailed(ref, TLSFailure(cause: .http, words: "the server reset the HTTP/2 stream"))
        }
    }

    private func streamFailed(_ ref: QueryRef, _ failure: TLSFailure) {
        guard pending.removeValue(forKey: ref) != nil else { return }
        owner.queryFailed(ref, failure)
    }

    fileprivate func end() {
        guard !ended else { return }
        ended = true
        let unanswered = pending.values.sorted { QueryRef.before($0.ref, $1.ref) }
        pending = [:]
        streams = [:]
        waiting = []
        owner.closed(wasReady: ready, failure: failure, unanswered: unanswered)
    }
}

/// Last in the connection's pipeline: tells the connection it is gone, and closes it on
/// errors (TLS alerts, HTTP/2 protocol errors).
private final class ConnectionEndHandler: ChannelInboundHandler {
    typealias InboundIn = Any
    private let onEnd: () -> Void
    init(_ onEnd: @escaping () -> Void) { self.onEnd = onEnd }

    func channelInactive(context: ChannelHandlerContext) {
        onEnd()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
