import Glibc
import Logging
import MarkCore
import NIOConcurrencyHelpers
import NIOCore
import NIOExtras
import NIOPosix
import Testing
@testable import Forwarder

/// A TCP client channel driven by the data-plane loop's epoll, against a real TCP server
/// on 127.0.0.1 (no root needed): NIO handlers run in its pipeline on the loop thread,
/// frames go out gathered and come back whole and in order however the kernel splits
/// them, a refused connect and a peer that closes end the channel the way NIO's own do.
@Suite("Loop stream channel")
struct LoopStreamChannelTests {
    /// Collects what reaches the end of the pipeline, and whether it all ran on the loop.
    final class Collector: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        let frames = NIOLockedValueBox<[[UInt8]]>([])
        let events = NIOLockedValueBox<[String]>([])
        let offLoop = NIOLockedValueBox(0)
        let got: EventLoopPromise<Void>
        let expected: Int
        private let settled = NIOLockedValueBox(false)

        init(expecting expected: Int, on loop: any EventLoop) {
            self.expected = expected
            self.got = loop.makePromise()
        }

        func channelActive(context: ChannelHandlerContext) {
            events.withLockedValue { $0.append("active") }
            context.fireChannelActive()
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            if !context.eventLoop.inEventLoop { offLoop.withLockedValue { $0 += 1 } }
            let frame = Array(unwrapInboundIn(data).readableBytesView)
            let n = frames.withLockedValue { $0.append(frame); return $0.count }
            if n == expected { settle(nil) }
        }

        func channelInactive(context: ChannelHandlerContext) {
            events.withLockedValue { $0.append("inactive") }
            settle(ChannelError.eof)
            context.fireChannelInactive()
        }

        /// Completes `got` once: the frames arrived, or the channel ended first.
        func settle(_ error: (any Error)?) {
            guard !settled.withLockedValue({ s in defer { s = true }; return s }) else { return }
            if let error { got.fail(error) } else { got.succeed(()) }
        }
    }

    /// Echoes every byte back; `closeAtOnce`: closes each connection it accepts instead.
    final class Echo: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let closeAtOnce: Bool
        init(closeAtOnce: Bool) { self.closeAtOnce = closeAtOnce }
        func channelActive(context: ChannelHandlerContext) {
            if closeAtOnce { context.close(promise: nil) }
        }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            context.writeAndFlush(data, promise: nil)
        }
    }

    func server(_ group: MultiThreadedEventLoopGroup, closeAtOnce: Bool = false) throws -> any Channel {
        try ServerBootstrap(group: group)
            .childChannelInitializer { $0.pipeline.addHandler(Echo(closeAtOnce: closeAtOnce)) }
            .bind(host: "127.0.0.1", port: 0).wait()
    }

    func loopback(_ port: Int) -> Endpoint {
        Endpoint(address: .v4(127, 0, 0, 1), port: UInt16(port))
    }

    func connect(_ loop: DataPlaneLoop, port: Int, _ collector: Collector) throws -> EventLoopFuture<any Channel> {
        try loop.submit {
            LoopStreamChannel.connect(on: loop, to: loopback(port), mark: 0, timeout: .seconds(5)) { channel in
                try channel.pipeline.syncOperations.addHandlers([
                    ByteToMessageHandler(LengthFieldBasedFrameDecoder(lengthFieldBitLength: .twoBytes)),
                    LengthFieldPrepender(lengthFieldBitLength: .twoBytes),
                    collector,
                ])
            }
        }.wait()
    }

    @Test func framesWrittenOnTheLoopComeBackWholeAndInOrder() throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let server = try server(group)
        defer { try? server.close().wait() }
        let loop = try DataPlaneLoop(name: "dp-stream", logger: Logger(label: "test"))
        loop.start()
        defer { try? loop.syncShutdownGracefully() }

        // Small frames and a few large ones (more than one read, more than one send).
        let sizes = (0..<200).map { $0 % 50 == 7 ? 60_000 : 12 + $0 % 300 }
        let collector = Collector(expecting: sizes.count, on: loop)
        let channel = try connect(loop, port: server.localAddress!.port!, collector).wait()
        try loop.submit {
            #expect(channel.isActive)
            for (i, size) in sizes.enumerated() {
                var b = channel.allocator.buffer(capacity: size)
                b.writeRepeatingByte(UInt8(i % 256), count: size)
                // Written in one tick: gathered, and sent at its end.
                channel.writeAndFlush(b, promise: nil)
            }
        }.wait()
        try collector.got.futureResult.wait()
        let frames = collector.frames.withLockedValue { $0 }
        #expect(frames.map(\.count) == sizes)
        #expect(frames.enumerated().allSatisfy { i, f in f.allSatisfy { $0 == UInt8(i % 256) } })
        #expect(collector.offLoop.withLockedValue { $0 } == 0)

        let writeDone = try loop.submit { () -> EventLoopFuture<Void> in
            channel.writeAndFlush(channel.allocator.buffer(bytes: [1, 2, 3]))
        }.wait()
        try writeDone.wait()  // the promise of a write completes once it is sent
        try channel.close().wait()
        try channel.closeFuture.wait()
        #expect(collector.events.withLockedValue { $0 } == ["active", "inactive"])
        #expect(!(try loop.submit { channel.isActive }.wait()))
    }

    @Test func aRefusedConnectFailsTheFuture() throws {
        // A port with no listener: bind one, note it, close it.
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let gone = try server(group)
        let port = gone.localAddress!.port!
        try gone.close().wait()
        let loop = try DataPlaneLoop(name: "dp-stream", logger: Logger(label: "test"))
        loop.start()
        defer { try? loop.syncShutdownGracefully() }
        let collector = Collector(expecting: 1, on: loop)
        #expect(throws: IOError.self) { try connect(loop, port: port, collector).wait() }
        // Never active, so never inactive either.
        #expect(collector.events.withLockedValue { $0 }.isEmpty)
        collector.settle(ChannelError.eof)
    }

    @Test func aPipelineThatCannotBeBuiltFailsTheConnectAndClosesTheChannel() throws {
        struct NoPipeline: Error {}
        let loop = try DataPlaneLoop(name: "dp-stream", logger: Logger(label: "test"))
        loop.start()
        defer { try? loop.syncShutdownGracefully() }
        let built = NIOLockedValueBox<(any Channel)?>(nil)
        let connected = try loop.submit {
            LoopStreamChannel.connect(on: loop, to: loopback(9), mark: 0, timeout: .seconds(5)) { channel in
                built.withLockedValue { $0 = channel }
                throw NoPipeline()
            }
        }.wait()
        #expect(throws: NoPipeline.self) { try connected.wait() }
        // Its close future completes: nothing is left open or waiting.
        let channel = try #require(built.withLockedValue { $0 })
        try channel.closeFuture.wait()
    }

    @Test func aPeerThatClosesEndsTheChannel() throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let server = try server(group, closeAtOnce: true)
        defer { try? server.close().wait() }
        let loop = try DataPlaneLoop(name: "dp-stream", logger: Logger(label: "test"))
        loop.start()
        defer { try? loop.syncShutdownGracefully() }
        let collector = Collector(expecting: 1, on: loop)
        let channel = try connect(loop, port: server.localAddress!.port!, collector).wait()
        try channel.closeFuture.wait()
        #expect(collector.events.withLockedValue { $0 } == ["active", "inactive"])
        // Writing to it now fails instead of going anywhere.
        let late = try loop.submit { channel.writeAndFlush(channel.allocator.buffer(bytes: [0, 1])) }.wait()
        #expect(throws: ChannelError.self) { try late.wait() }
    }
}
