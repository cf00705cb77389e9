import DNSWire
import MarkCore
import NIOCore
import NIOExtras
import NIOSSL
import QueryCore

#if canImport(Glibc)
import Glibc
#endif

/// One pooled stream connection of a (mark, upstream) pool: DNS over TCP framing (RFC 1035
/// 4.2.2), inside TLS for DNS over TLS (RFC 7858) or bare for a plain upstream's TCP queries,
/// queries pipelined with IDs unique on the connection and answers matched by ID in any
/// order (RFC 7766 6.2.1.1). The socket has SO_MARK set before connect. Runs on the pool's
/// data-plane loop.
final class StreamConnection: PooledConnection, ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let owner: ConnectionOwner
    private var channel: (any Channel)?
    private var ready = false
    private var ended = false
    private var closeRequested = false
    private var failure: TLSFailure?
    /// Queries sent (or waiting for the handshake), by the ID they carry on this connection.
    private var pending: [UInt16: UnansweredQuery] = [:]
    private var ids: [QueryRef: UInt16] = [:]
    private var waiting: [UInt16] = []
    private var nextID: UInt16

    private init(owner: ConnectionOwner) {
        self.owner = owner
        self.nextID = UInt16.random(in: 0...UInt16.max)
    }

    /// Opens the connection (TCP, then TLS with `context`; plain TCP without one) and returns
    /// it at once; queries wait until it is connected and, over TLS, the handshake is done.
    static func connect(owner: ConnectionOwner, context: NIOSSLContext?, timeout: TimeAmount) -> StreamConnection {
        let connection = StreamConnection(owner: owner)
        let bound = NIOLoopBound(connection, eventLoop: owner.loop)
        let upstream = owner.upstream
        SecureBootstrap.connect(owner: owner, timeout: timeout, pipeline: { channel in
            let c = bound.value
            if let context {
                try SecureBootstrap.addTLS(to: channel, context: context, upstream: upstream,
                                           onReady: { c.becameReady() }, onFailure: { c.failure = $0 })
            }
            try channel.pipeline.syncOperations.addHandlers([
                ByteToMessageHandler(LengthFieldBasedFrameDecoder(lengthFieldBitLength: .twoBytes)),
                LengthFieldPrepender(lengthFieldBitLength: .twoBytes),
                c,
            ])
        }, onChannel: {
            connection.attach($0)
            if context == nil, $0.isActive { connection.becameReady() }
        }, onFailure: { connection.failed($0) })
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
        var id = nextID
        while pending[id] != nil { id &+= 1 }
        nextID = id &+ 1
        pending[id] = UnansweredQuery(ref: ref, query: query)
        ids[ref] = id
        if ready { write(id, flush: true) } else { waiting.append(id) }
    }

    func cancel(_ ref: QueryRef) {
        guard let id = ids.removeValue(forKey: ref) else { return }
        pending[id] = nil
    }

    func close() {
        closeRequested = true
        channel?.close(promise: nil)
    }

    /// Sends a query with this connection's ID, asking for edns-tcp-keepalive when it has
    /// an OPT record to carry the option (RFC 7828 3.2.1): a server sends its idle timeout
    /// only in answer to a query that asked, and `channelRead` lets it shorten ours.
    private func write(_ id: UInt16, flush: Bool) {
        guard let channel, let q = pending[id] else { return }
        let size = q.query.count + EDNSKeepalive.requestSize
        var buffer = channel.allocator.buffer(capacity: size)
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { out in
            q.query.withUnsafeBytes { EDNSKeepalive.copyRequesting($0, into: out) }
        }
        buffer.setInteger(id, at: buffer.readerIndex)
        if flush { channel.writeAndFlush(buffer, promise: nil) } else { channel.write(buffer, promise: nil) }
    }

    private func becameReady() {
        guard !ended, !ready else { return }
        ready = true
        owner.ready()
        let queued = waiting
        waiting = []
        for id in queued { write(id, flush: false) }
        channel?.flush()
    }

    // MARK: - Channel events

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var frame = unwrapInboundIn(data)
        guard let id = frame.getInteger(at: frame.readerIndex, as: UInt16.self),
              let q = pending.removeValue(forKey: id)
        else { return }  // a late answer to a query given up on: dropped
        ids[q.ref] = nil
        if let seconds = frame.withUnsafeReadableBytes({ EDNSKeepalive.timeout(inAnswer: $0) }) {
            owner.keepalive(seconds: seconds)
            // This connection's timeout is nothing to pass on to the client.
            let length = frame.withUnsafeMutableReadableBytes { EDNSKeepalive.remove(fromAnswer: $0) }
            frame.moveWriterIndex(to: frame.readerIndex + length)
        }
        owner.answered(q.ref, sentID: id, answer: frame)
    }

    func channelInactive(context: ChannelHandlerContext) {
        end()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // Broken framing, resets, TLS alerts after the handshake: the connection is gone.
        if failure == nil, ready { failure = TLSFailure(cause: .closed, words: "connection lost: \(error)") }
        context.close(promise: nil)
    }

    private func end() {
        guard !ended else { return }
        ended = true
        let unanswered = pending.values.sorted { QueryRef.before($0.ref, $1.ref) }
        pending = [:]
        ids = [:]
        waiting = []
        owner.closed(wasReady: ready, failure: failure, unanswered: unanswered)
    }
}
