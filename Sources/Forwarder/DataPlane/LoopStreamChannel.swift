import CBatchIO
import MarkCore
import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// A TCP client connection whose socket the data-plane loop's own epoll drives, as a NIO
/// `Channel`: NIO's handlers (TLS, DNS framing, HTTP/2) run in its pipeline on the
/// data-plane thread, the same thread that asks the queries and takes the answers. Pooled
/// upstream connections used to live on a NIO loop, and every query crossed to it and its
/// answer back: two wake-ups per query where none are needed.
///
/// Only what a client connection needs: connect (SO_MARK set before it, so the SYN and the
/// conntrack entry carry the mark), read while open (level-triggered, like `autoRead`),
/// writes gathered until the end of the loop's tick and sent in one `send`, close. No
/// half-closure: the peer's FIN closes the channel. Everything runs on the loop.
final class LoopStreamChannel: Channel, ChannelCore, LoopStreamSource, @unchecked Sendable {
    private let loop: DataPlaneLoop
    private var _pipeline: ChannelPipeline!
    private let closePromise: EventLoopPromise<Void>
    let allocator = ByteBufferAllocator()
    private let remote: Endpoint

    private enum State { case idle, connecting(EventLoopPromise<Void>?), active, closed }
    private var state = State.idle
    private var fd: Int32 = -1
    private var token: UInt64 = 0
    private var writeInterest = false
    /// Written but not flushed; flushed and not yet sent (bytes, and each write's promise
    /// with the offset its last byte has in `outbound`'s stream of bytes).
    private var unflushed: [(ByteBuffer, EventLoopPromise<Void>?)] = []
    private var outbound: ByteBuffer
    private var outboundPromises: [(end: Int, promise: EventLoopPromise<Void>)] = []
    private var sentBytes = 0
    private var flushQueued = false
    private static let readSize = 16_384

    init(loop: DataPlaneLoop, remote: Endpoint) {
        self.loop = loop
        self.remote = remote
        self.closePromise = loop.makePromise()
        self.outbound = allocator.buffer(capacity: 0)
        self._pipeline = ChannelPipeline(channel: self)
    }

    /// A channel to `remote` on `loop`: `initialize` fills its pipeline, then the socket
    /// (with `mark` as SO_MARK) connects; the future is the connected channel, or fails
    /// with the connect's error or `ChannelError.connectTimeout` after `timeout`.
    static func connect(on loop: DataPlaneLoop, to remote: Endpoint, mark: UInt32, timeout: TimeAmount,
                        initialize: (any Channel) throws -> Void) -> EventLoopFuture<any Channel> {
        loop.preconditionInEventLoop()
        let channel = LoopStreamChannel(loop: loop, remote: remote)
        do { try initialize(channel) } catch {
            channel.close0(error: error, mode: .all, promise: nil)  // completes its close future
            return loop.makeFailedFuture(error)
        }
        let connected = loop.makePromise(of: Void.self)
        channel.register0(promise: nil)
        // On the next turn of the loop: whoever asked holds the connection by then, so a
        // failure at once (no socket, SO_MARK refused) reaches it like any later one.
        let bound = NIOLoopBound(channel, eventLoop: loop)
        loop.execute { bound.value.open(mark: mark, promise: connected) }
        let deadline = loop.assumeIsolated().scheduleTask(in: timeout) {
            if case .connecting = channel.state {
                channel.close0(error: ChannelError.connectTimeout(timeout), mode: .all, promise: nil)
            }
        }
        return connected.futureResult.assumeIsolated().map { () -> any Channel in
            deadline.cancel()
            return channel
        }.nonisolated()
    }

    // MARK: - Channel

    var eventLoop: any EventLoop { loop }
    var pipeline: ChannelPipeline { _pipeline }
    var closeFuture: EventLoopFuture<Void> { closePromise.futureResult }
    var localAddress: SocketAddress? { try? localAddress0() }
    var remoteAddress: SocketAddress? { try? remoteAddress0() }
    var parent: (any Channel)? { nil }
    var isWritable: Bool { true }
    /// Read on the loop only (the pools, the handlers).
    var isActive: Bool { if case .active = state { true } else { false } }
    var _channelCore: any ChannelCore { self }
    var syncOptions: (any NIOSynchronousChannelOptions)? { Options() }

    func setOption<Option: ChannelOption>(_ option: Option, value: Option.Value) -> EventLoopFuture<Void> {
        loop.makeFailedFuture(ChannelError.operationUnsupported)
    }

    func getOption<Option: ChannelOption>(_ option: Option) -> EventLoopFuture<Option.Value> {
        loop.makeCompletedFuture { try Options().getOption(option) }
    }

    /// What the handlers ask: reads are automatic, the peer's FIN closes the channel.
    private struct Options: NIOSynchronousChannelOptions {
        func setOption<Option: ChannelOption>(_ option: Option, value: Option.Value) throws {
            throw ChannelError.operationUnsupported
        }

        func getOption<Option: ChannelOption>(_ option: Option) throws -> Option.Value {
            if option is ChannelOptions.Types.AutoReadOption, let v = true as? Option.Value { return v }
            if option is ChannelOptions.Types.AllowRemoteHalfClosureOption, let v = false as? Option.Value { return v }
            throw ChannelError.operationUnsupported
        }
    }

    // MARK: - ChannelCore

    func localAddress0() throws -> SocketAddress {
        guard fd >= 0, let local = DatagramReceiver.localEndpoint(of: fd) else { throw ChannelError.ioOnClosedChannel }
        return local.socketAddress
    }

    func remoteAddress0() throws -> SocketAddress { remote.socketAddress }

    func register0(promise: EventLoopPromise<Void>?) {
        promise?.succeed(())
        pipeline.syncOperations.fireChannelRegistered()
    }

    func registerAlreadyConfigured0(promise: EventLoopPromise<Void>?) {
        promise?.fail(ChannelError.operationUnsupported)
    }

    func bind0(to: SocketAddress, promise: EventLoopPromise<Void>?) {
        promise?.fail(ChannelError.operationUnsupported)
    }

    func connect0(to: SocketAddress, promise: EventLoopPromise<Void>?) {
        promise?.fail(ChannelError.operationUnsupported)  // `connect(on:to:...)` connects
    }

    func write0(_ data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard fd >= 0 else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        unflushed.append((unwrapData(data, as: ByteBuffer.self), promise))
    }

    func flush0() {
        guard !unflushed.isEmpty else { return }
        for (var bytes, promise) in unflushed {
            sentBytes += bytes.readableBytes
            outbound.writeBuffer(&bytes)
            if let promise { outboundPromises.append((sentBytes, promise)) }
        }
        unflushed.removeAll(keepingCapacity: true)
        guard case .active = state, !writeInterest, !flushQueued else { return }
        flushQueued = true
        loop.flushAtTickEnd(self)
    }

    func read0() {}  // always reading while open

    func close0(error: any Error, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        let wasActive: Bool
        switch state {
        case .closed:
            promise?.fail(ChannelError.alreadyClosed)
            return
        case .connecting(let connected):
            wasActive = false
            connected?.fail(error)
        case .idle:
            wasActive = false
        case .active:
            wasActive = true
        }
        state = .closed
        if fd >= 0 {
            loop.unwatchStream(fd, token: token)
            Glibc.close(fd)
            fd = -1
        }
        let failed = unflushed.compactMap(\.1) + outboundPromises.map(\.promise)
        unflushed = []
        outboundPromises = []
        outbound.clear()
        for p in failed { p.fail(ChannelError.ioOnClosedChannel) }
        promise?.succeed(())
        if wasActive { pipeline.syncOperations.fireChannelInactive() }
        pipeline.syncOperations.fireChannelUnregistered()
        // Later, as NIO's own channels do: a handler may still be walking the pipeline.
        let channel = NIOLoopBound(self, eventLoop: loop)
        loop.execute {
            let c = channel.value
            c.removeHandlers(pipeline: c.pipeline)
            c.closePromise.succeed(())
        }
    }

    func triggerUserOutboundEvent0(_ event: Any, promise: EventLoopPromise<Void>?) {
        promise?.fail(ChannelError.operationUnsupported)
    }

    func channelRead0(_ data: NIOAny) {}  // reached the end of the pipeline: dropped
    func errorCaught0(error: any Error) {}

    // MARK: - The socket

    private func open(mark: UInt32, promise: EventLoopPromise<Void>) {
        state = .connecting(promise)
        let family = remote.address.isIPv6 ? AF_INET6 : AF_INET
        let s = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard s >= 0 else { return fail(IOError(errnoCode: errno, reason: "socket")) }
        fd = s
        var m = mark
        if mark != 0, setsockopt(s, SOL_SOCKET, SO_MARK, &m, socklen_t(MemoryLayout<UInt32>.size)) != 0 {
            return fail(IOError(errnoCode: errno, reason: "setsockopt(SO_MARK)"))
        }
        var one: Int32 = 1
        _ = setsockopt(s, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        if let e = DatagramReceiver.withSockAddr(remote, { Glibc.connect(s, $0, $1) }), e != EINPROGRESS {
            return fail(IOError(errnoCode: e, reason: "connect"))
        }
        do { token = try loop.watchStream(s, source: self, writable: true) } catch { return fail(error) }
        writeInterest = true
    }

    /// The connect failed: `close0` fails its promise.
    private func fail(_ error: any Error) {
        close0(error: error, mode: .all, promise: nil)
    }

    func streamReady(_ flags: UInt8) {
        if case .connecting(let connected) = state {
            guard flags & UInt8(MARKDNS_EV_WRITE | MARKDNS_EV_ERROR) != 0 else { return }
            var error: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            _ = getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length)
            if error != 0 { return close0(error: IOError(errnoCode: error, reason: "connect"), mode: .all, promise: nil) }
            state = .active
            setWriteInterest(outbound.readableBytes > 0)
            connected?.succeed(())
            pipeline.syncOperations.fireChannelActive()
            return
        }
        guard case .active = state else { return }
        if flags & UInt8(MARKDNS_EV_WRITE) != 0 { send() }
        if flags & UInt8(MARKDNS_EV_READ | MARKDNS_EV_ERROR) != 0 { receive() }
    }

    func streamTickEnd() {
        flushQueued = false
        send()
    }

    /// Sends what was flushed, as much as the socket takes; the rest waits for EPOLLOUT.
    private func send() {
        guard case .active = state else { return }
        while outbound.readableBytes > 0 {
            let n = outbound.withUnsafeReadableBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 {
                let e = errno
                if e == EINTR { continue }
                if e == EAGAIN || e == EWOULDBLOCK { break }
                return broken(IOError(errnoCode: e, reason: "send"))
            }
            outbound.moveReaderIndex(forwardBy: n)
        }
        let unsent = outbound.readableBytes
        let done = sentBytes - unsent
        while let first = outboundPromises.first, first.end <= done {
            outboundPromises.removeFirst()
            first.promise.succeed(())
        }
        if unsent == 0 { outbound.clear() }
        setWriteInterest(unsent > 0)
    }

    private func receive() {
        for _ in 0..<4 {
            var buffer = allocator.buffer(capacity: Self.readSize)
            var rc = 0
            let n = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: Self.readSize) { raw in
                rc = Glibc.read(fd, raw.baseAddress, raw.count)
                return max(0, rc)
            }
            if rc < 0 {
                let e = errno
                if e == EAGAIN || e == EWOULDBLOCK || e == EINTR { break }
                return broken(IOError(errnoCode: e, reason: "read"))
            }
            // The peer closed: no half-closure.
            if n == 0 { return broken(nil) }
            pipeline.syncOperations.fireChannelRead(NIOAny(buffer))
            guard case .active = state, n == Self.readSize else { break }
        }
        if case .active = state { pipeline.syncOperations.fireChannelReadComplete() }
    }

    private func broken(_ error: (any Error)?) {
        if let error { pipeline.syncOperations.fireErrorCaught(error) }
        if case .active = state { close0(error: error ?? ChannelError.eof, mode: .all, promise: nil) }
    }

    private func setWriteInterest(_ on: Bool) {
        guard on != writeInterest, fd >= 0 else { return }
        writeInterest = on
        loop.rewatchStream(fd, token: token, writable: on)
    }
}
