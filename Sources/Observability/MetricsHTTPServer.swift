import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// A response of the metrics listener.
public struct HTTPReply: Sendable {
    public var status: HTTPResponseStatus
    public var contentType: String
    public var body: [UInt8]

    public init(status: HTTPResponseStatus = .ok, contentType: String, body: [UInt8]) {
        self.status = status; self.contentType = contentType; self.body = body
    }
}

/// A request as a route sees it.
public struct HTTPRequestInfo: Sendable {
    public var method: HTTPMethod
    /// Path and query string as sent.
    public var uri: String
    /// The peer (nil on a UNIX socket).
    public var remote: SocketAddress?
    /// Our end of the connection (nil on a UNIX socket).
    public var local: SocketAddress? = nil

    public init(method: HTTPMethod, uri: String, remote: SocketAddress?, local: SocketAddress? = nil) {
        self.method = method; self.uri = uri; self.remote = remote; self.local = local
    }
}

/// The `--metrics ADDR:PORT` listener (and the session control socket and Captive Portal
/// API): HTTP/1.1 (NIOHTTP1) on a thread of its own, one response per connection.
///
/// Where routes run (`RouteThread`) is chosen, never left to Dispatch: after `serve --user`
/// only threads markdns made or parked at the right moment keep CAP_NET_ADMIN, and a route
/// may need it (a scrape dumps the conntrack table, a session login runs nft and rewrites
/// connmarks). A Dispatch worker may be one made before the drop, with no capability.
public final class MetricsHTTPServer: Sendable {
    private let group: MultiThreadedEventLoopGroup
    private let pool: NIOThreadPool?
    private let channel: any Channel
    public let localAddress: SocketAddress?
    /// The one loop that serves every request.
    public var eventLoop: any EventLoop { channel.eventLoop }

    public enum RouteThread: Sendable {
        /// On the server's loop thread, one request at a time (a route that must never wait
        /// on an event loop future; the session control socket).
        case eventLoop
        /// On one blocking thread started with the server, so created by the thread that
        /// starts it (routes that wait on the DNS loops for their counters: the metrics).
        case pool
    }

    /// GET and HEAD only: `route` gets the path and the query string.
    public static func start(host: String, port: Int,
                             route: @escaping @Sendable (_ path: String, _ query: String) -> HTTPReply) throws -> MetricsHTTPServer {
        try start(.tcp(host: host, port: port)) { req in
            guard req.method == .GET || req.method == .HEAD else {
                return HTTPReply(status: .methodNotAllowed, contentType: "text/plain", body: Array("GET only\n".utf8))
            }
            let parts = req.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
            return route(String(parts.first ?? ""), parts.count > 1 ? String(parts[1]) : "")
        }
    }

    public enum Bind: Sendable {
        case tcp(host: String, port: Int)
        /// A UNIX socket (an old socket file is replaced).
        case unix(path: String)
    }

    /// With `tls`, every connection starts with a TLS handshake (NIOSSLServerHandler ahead
    /// of HTTP): plain HTTP to the port gets no answer.
    public static func start(_ bind: Bind, routes: RouteThread = .pool, tls: NIOSSLContext? = nil,
                             route: @escaping @Sendable (HTTPRequestInfo) -> HTTPReply) throws -> MetricsHTTPServer {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let pool: NIOThreadPool? = routes == .pool ? NIOThreadPool(numberOfThreads: 1) : nil
        pool?.start()
        do {
            let bootstrap = ServerBootstrap(group: group)
                .serverChannelOption(.backlog, value: 32)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        if let tls { try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls)) }
                        try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                        try channel.pipeline.syncOperations.addHandler(MetricsHTTPHandler(route: route, pool: pool))
                    }
                }
            let channel: any Channel
            switch bind {
            case let .tcp(host, port):
                channel = try bootstrap.serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                    .bind(host: host, port: port).wait()
            case let .unix(path):
                channel = try bootstrap.bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true).wait()
            }
            return MetricsHTTPServer(group: group, pool: pool, channel: channel)
        } catch {
            try? group.syncShutdownGracefully()
            try? pool?.syncShutdownGracefully()
            throw error
        }
    }

    private init(group: MultiThreadedEventLoopGroup, pool: NIOThreadPool?, channel: any Channel) {
        self.group = group
        self.pool = pool
        self.channel = channel
        self.localAddress = channel.localAddress
    }

    public func stop() {
        try? channel.close().wait()
        try? group.syncShutdownGracefully()
        try? pool?.syncShutdownGracefully()
    }
}

final class MetricsHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let route: @Sendable (HTTPRequestInfo) -> HTTPReply
    private let pool: NIOThreadPool?
    private var request: HTTPRequestHead?

    init(route: @escaping @Sendable (HTTPRequestInfo) -> HTTPReply, pool: NIOThreadPool?) {
        self.route = route
        self.pool = pool
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            request = head
        case .body:
            break
        case .end:
            guard let head = request else { return }
            request = nil
            let info = HTTPRequestInfo(method: head.method, uri: head.uri, remote: context.channel.remoteAddress,
                                       local: context.channel.localAddress)
            let isHead = head.method == .HEAD
            let version = head.version
            guard let pool else {
                respond(route(info), version: version, bodyless: isHead, context: context)
                return
            }
            let route = self.route
            let bound = NIOLoopBound((handler: self, context: context), eventLoop: context.eventLoop)
            pool.runIfActive(eventLoop: context.eventLoop) { route(info) }.whenComplete { result in
                let reply = (try? result.get()) ?? HTTPReply(status: .serviceUnavailable, contentType: "text/plain",
                                                             body: Array("shutting down\n".utf8))
                bound.value.handler.respond(reply, version: version, bodyless: isHead, context: bound.value.context)
            }
        }
    }

    private func respond(_ reply: HTTPReply, version: HTTPVersion, bodyless: Bool, context: ChannelHandlerContext) {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: reply.contentType)
        headers.add(name: "Content-Length", value: "\(reply.body.count)")
        headers.add(name: "Connection", value: "close")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: version, status: reply.status, headers: headers))),
                      promise: nil)
        if !bodyless {
            var buffer = context.channel.allocator.buffer(capacity: reply.body.count)
            buffer.writeBytes(reply.body)
            context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        }
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
    }
}
