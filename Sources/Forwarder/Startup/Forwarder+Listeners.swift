import CBatchIO
import Conntrack
import Logging
import MarkCore
import NIOCore
import NIOExtras
import NIOPosix
import QueryCore

#if canImport(Glibc)
import Glibc
#endif

/// Start-up's listeners: a raw UDP socket and a NIO TCP listener per loop and address
/// (SO_REUSEPORT with several loops), wildcard expansion, and the checks that fail early and
/// clearly (a port someone else holds, SO_MARK without CAP_NET_ADMIN).
extension Forwarder {

    /// A raw UDP listener for `engine`'s loop (see `RawUDPListener`); returns its descriptor.
    static func bindUDP(_ local: Endpoint, engine: NIOLoopBound<QueryEngine>, reusePort: Bool) throws -> Int32 {
        do {
            return try engine.eventLoop.submit {
                let listener = try RawUDPListener(local: local, reusePort: reusePort)
                do { try engine.value.adopt(listener) } catch { listener.close(); throw error }
                return listener.fd
            }.wait()
        } catch {
            throw bindError(error, address: local, proto: "udp")
        }
    }

    /// Closes every engine's UDP listeners and upstream sockets.
    static func stopEngines(_ engines: [NIOLoopBound<QueryEngine>]) {
        for engine in engines { try? engine.eventLoop.submit { engine.value.closeListeners() }.wait() }
    }

    /// Ends the data-plane threads (after their engines closed their sockets).
    static func stopLoops(_ loops: [DataPlaneLoop]) {
        for loop in loops { try? loop.syncShutdownGracefully() }
    }

    /// A TCP listener on `loop` (NIO) whose queries go to `engine`.
    static func bindTCP(_ address: SocketAddress, engine: NIOLoopBound<QueryEngine>, on loop: any EventLoop,
                                shared: SharedState, config: ForwarderConfig, reusePort: Bool) throws -> any Channel {
        let idle = config.tcpIdleTimeout
        let maxQueries = config.maxQueriesPerTCPConnection
        do {
            return try ServerBootstrap(group: loop)
                .serverChannelOption(.backlog, value: 256)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .serverChannelOption(.socket(SocketOptionLevel(SOL_SOCKET), SO_REUSEPORT), value: reusePort ? 1 : 0)
                .serverChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        // Out of descriptors: pause accepting for a while instead of spinning.
                        try channel.pipeline.syncOperations.addHandler(AcceptErrorHandler(engine: engine))
                    }
                }
                .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandlers([
                            IdleStateHandler(readTimeout: idle),
                            ByteToMessageHandler(LengthFieldBasedFrameDecoder(lengthFieldBitLength: .twoBytes)),
                            LengthFieldPrepender(lengthFieldBitLength: .twoBytes),
                            TCPClientHandler(engine: engine, shared: shared, maxQueries: maxQueries),
                        ])
                    }
                }
                .bind(to: address).wait()
        } catch {
            throw bindError(error, address: Endpoint(address: address.endpoint!.address, port: UInt16(address.port ?? 0)), proto: "tcp")
        }
    }

    /// Fails like a plain bind would when another socket already holds the address (UDP
    /// or TCP), before the SO_REUSEPORT listeners are bound.
    static func checkPortFree(_ address: SocketAddress, local: Endpoint) throws {
        for (type, proto) in [(SOCK_DGRAM, "udp"), (SOCK_STREAM, "tcp")] {
            let fd = socket(Int32(address.protocol.rawValue), Int32(type.rawValue), 0)
            guard fd >= 0 else { continue }
            defer { close(fd) }
            var one: Int32 = 1
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
            let rc = address.withSockAddr { sa, len in bind(fd, sa, socklen_t(len)) }
            if rc != 0 {
                throw bindError(IOError(errnoCode: errno, reason: "bind"), address: local, proto: proto)
            }
        }
    }

    static func bindError(_ error: any Error, address: Endpoint, proto: String) -> ForwarderStartError {
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
    static func checkMarkCapability(_ config: ForwarderConfig) throws {
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
