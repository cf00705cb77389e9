import Conntrack
import Logging
import MarkCore
import MarkPolicy
import NIOCore
import NIOExtras
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

/// A start-up failure, worded for the operator: one line, what and why.
public struct ForwarderStartError: Error, CustomStringConvertible {
    public let description: String
    public init(description: String) { self.description = description }
}

/// The running forwarder: listeners on every configured address (UDP and TCP), one event
/// loop, one engine.
public final class Forwarder: Sendable {
    private let group: MultiThreadedEventLoopGroup
    private let engine: NIOLoopBound<QueryEngine>
    private let channels: [any Channel]
    public let boundAddresses: [String]
    private let logger: Logger

    public static func start(config: ForwarderConfig, logger: Logger) throws -> Forwarder {
        guard config.policy.config.pools.contains(where: { !$0.servers.isEmpty }) else {
            throw ForwarderStartError(description: "no upstream given (--upstream ADDR:PORT or a [[pool]] in the policy)")
        }
        let failClosed = config.policy.config.conntrack.onMissing == .refuse
        try checkMarkCapability(config)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        // The mark source is created on the loop that will use it (it is not thread-safe).
        let made: Result<(NIOLoopBound<QueryEngine>, Bool), ForwarderStartError> = try loop.submit {
            var markSource: (any MarkSource)? = nil
            if config.useConntrack {
                do {
                    markSource = try NetlinkMarkSource()
                } catch {
                    if failClosed {
                        return .failure(ForwarderStartError(description: "\(error); refusing unmarked queries (--require-mark / on-missing = \"refuse\") cannot be honoured"))
                    }
                    logger.warning("\(error); every query will be forwarded unmarked")
                }
            }
            let engine = QueryEngine(loop: loop, config: config, markSource: markSource, logger: logger)
            engine.startSweeping()
            return .success((NIOLoopBound(engine, eventLoop: loop), markSource != nil))
        }.wait()
        let engine: NIOLoopBound<QueryEngine>
        let hasMarkSource: Bool
        switch made {
        case .success(let (e, has)): engine = e; hasMarkSource = has
        case .failure(let error):
            try? group.syncShutdownGracefully()
            throw error
        }
        var channels: [any Channel] = []
        var names: [String] = []
        do {
            for endpoint in try expandWildcards(config.listen, logger: logger) {
                let address = endpoint.socketAddress
                channels.append(try bindUDP(address, local: endpoint, loop: loop, engine: engine))
                channels.append(try bindTCP(address, loop: loop, engine: engine, config: config))
                names.append(endpoint.description)
            }
        } catch {
            for c in channels { try? c.close().wait() }
            try? group.syncShutdownGracefully()
            throw error
        }
        logger.info("listening on \(names.joined(separator: ", ")) (udp+tcp); pools \(config.policy.config.pools.map { "\($0.name)=\($0.servers.map(\.description).joined(separator: ","))" }.joined(separator: " ")); marks from \(!hasMarkSource ? "nowhere (unmarked)" : "ctnetlink"), mask \(hex(config.policy.mask)), on-missing \(config.policy.config.conntrack.onMissing.rawValue)")
        return Forwarder(group: group, engine: engine, channels: channels, boundAddresses: names, logger: logger)
    }

    private init(group: MultiThreadedEventLoopGroup, engine: NIOLoopBound<QueryEngine>,
                 channels: [any Channel], boundAddresses: [String], logger: Logger) {
        self.group = group
        self.engine = engine
        self.channels = channels
        self.boundAddresses = boundAddresses
        self.logger = logger
    }

    /// Stops accepting queries, waits up to `drainTimeout` for those in flight, and
    /// returns the final counters.
    public func shutdown(drainTimeout: TimeAmount = .seconds(2)) -> Counters {
        let loop = engine.eventLoop
        let channels = self.channels
        let engine = self.engine
        let counters = try? loop.flatSubmit {
            let done = loop.makePromise(of: Void.self)
            engine.value.drain().cascade(to: done)
            loop.scheduleTask(in: drainTimeout) { done.succeed(()) }
            return done.futureResult.flatMap {
                EventLoopFuture.andAllComplete(channels.map { $0.close() }, on: loop)
            }.map { engine.value.counters }
        }.wait()
        try? group.syncShutdownGracefully()
        return counters ?? Counters()
    }

    /// Puts a new policy in force for every query that arrives from now on.
    public func reload(_ policy: PolicyEngine) {
        let engine = self.engine
        engine.eventLoop.execute { engine.value.reload(policy) }
    }

    /// The counters now (for periodic stats).
    public func counters() -> Counters {
        let engine = self.engine
        return (try? engine.eventLoop.submit { engine.value.counters }.wait()) ?? Counters()
    }

    /// The counters and the number of queries in flight now (for /metrics). Blocks on the
    /// DNS loop: call it from another thread.
    public func snapshot() -> (counters: Counters, outstanding: Int) {
        let engine = self.engine
        return (try? engine.eventLoop.submit { (engine.value.counters, engine.value.inFlight) }.wait()) ?? (Counters(), 0)
    }

    // MARK: - Binding

    private static func bindUDP(_ address: SocketAddress, local: Endpoint, loop: any EventLoop,
                                engine: NIOLoopBound<QueryEngine>) throws -> any Channel {
        do {
            return try DatagramBootstrap(group: loop)
                .channelOption(.socketOption(.so_reuseaddr), value: 1)
                .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 4096))
                .channelOption(.datagramVectorReadMessageCount, value: 16)
                .channelOption(.receivePacketInfo, value: true)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(
                            UDPListenerHandler(engine: engine.value, local: local))
                    }
                }
                .bind(to: address).wait()
        } catch {
            throw bindError(error, address: local, proto: "udp")
        }
    }

    private static func bindTCP(_ address: SocketAddress, loop: any EventLoop,
                                engine: NIOLoopBound<QueryEngine>, config: ForwarderConfig) throws -> any Channel {
        let idle = config.tcpIdleTimeout
        do {
            return try ServerBootstrap(group: loop)
                .serverChannelOption(.backlog, value: 256)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandlers([
                            IdleStateHandler(readTimeout: idle),
                            ByteToMessageHandler(LengthFieldBasedFrameDecoder(lengthFieldBitLength: .twoBytes)),
                            LengthFieldPrepender(lengthFieldBitLength: .twoBytes),
                            TCPClientHandler(engine: engine.value),
                        ])
                    }
                }
                .bind(to: address).wait()
        } catch {
            throw bindError(error, address: Endpoint(address: address.endpoint!.address, port: UInt16(address.port ?? 0)), proto: "tcp")
        }
    }

    private static func bindError(_ error: any Error, address: Endpoint, proto: String) -> ForwarderStartError {
        var why = "\(error)"
        if let io = error as? IOError {
            why = errnoText(io.errnoCode)
            if io.errnoCode == EACCES {
                why += "; ports below 1024 need root or CAP_NET_BIND_SERVICE"
            } else if io.errnoCode == EADDRNOTAVAIL {
                why += "; the address is not configured on this host"
            }
        }
        return ForwarderStartError(description: "cannot listen on \(address)/\(proto): \(why)")
    }

    /// `0.0.0.0:53` / `[::]:53` become every local address of that family: a reply must
    /// leave from the address the query came to, which a wildcard socket cannot choose.
    static func expandWildcards(_ listen: [Endpoint], logger: Logger) throws -> [Endpoint] {
        var out: [Endpoint] = []
        for endpoint in listen {
            guard endpoint.address.isUnspecified else {
                if !out.contains(endpoint) { out.append(endpoint) }
                continue
            }
            let devices = try System.enumerateDevices()
            let addresses = devices.compactMap { $0.address?.endpoint?.address }
                .filter { $0.isIPv6 == endpoint.address.isIPv6 }
                .filter { addr in
                    // Skip IPv6 link-local: it would need a scope id.
                    if case .v6(let b) = addr { return !(b[0] == 0xFE && b[1] & 0xC0 == 0x80) }
                    return true
                }
            for a in addresses {
                let e = Endpoint(address: a, port: endpoint.port)
                if !out.contains(e) { out.append(e) }
            }
            logger.info("\(endpoint) expanded to \(addresses.count) local address(es); addresses added later are not served")
        }
        return out
    }

    /// SO_MARK needs CAP_NET_ADMIN: find out at start, not on the first marked query.
    private static func checkMarkCapability(_ config: ForwarderConfig) throws {
        guard config.useConntrack else { return }
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { return }
        defer { close(fd) }
        var mark: UInt32 = 1
        if setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, socklen_t(MemoryLayout<UInt32>.size)) != 0 {
            let e = errno
            throw ForwarderStartError(description:
                "cannot set SO_MARK on upstream sockets: \(errnoText(e)); markdns needs CAP_NET_ADMIN (run as root or grant the capability)")
        }
    }
}
