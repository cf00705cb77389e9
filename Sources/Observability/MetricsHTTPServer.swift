import Dispatch
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix

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
}

/// The `--metrics ADDR:PORT` listener (and the session control socket and Captive Portal
/// API): HTTP/1.1 (NIOHTTP1) on a thread of its own, one response per connection. Routes
/// run off the event loop (a scrape may dump the conntrack table or wait on the DNS loop
/// for its counters; a session login runs nft).
public final class MetricsHTTPServer: Sendable {
    private let group: MultiThreadedEventLoopGroup
    private let channel: any Channel
    public let localAddress: SocketAddress?

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

    public static func start(_ bind: Bind, route: @escaping @Sendable (HTTPRequestInfo) -> HTTPReply) throws -> MetricsHTTPServer {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        do {
            let bootstrap = ServerBootstrap(group: group)
                .serverChannelOption(.backlog, value: 32)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                        try channel.pipeline.syncOperations.addHandler(MetricsHTTPHandler(route: route))
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
            return MetricsHTTPServer(group: group, channel: channel)
        } catch {
            try? group.syncShutdownGracefully()
            throw error
        }
    }

    private init(group: MultiThreadedEventLoopGroup, channel: any Channel) {
        self.group = group
        self.channel = channel
        self.localAddress = channel.localAddress
    }

    public func stop() {
        try? channel.close().wait()
        try? group.syncShutdownGracefully()
    }
}

final class MetricsHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let route: @Sendable (HTTPRequestInfo) -> HTTPReply
    private var request: HTTPRequestHead?

    init(route: @escaping @Sendable (HTTPRequestInfo) -> HTTPReply) {
        self.route = route
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
            let route = self.route
            let bound = NIOLoopBound((handler: self, context: context), eventLoop: context.eventLoop)
            let info = HTTPRequestInfo(method: head.method, uri: head.uri, remote: context.channel.remoteAddress)
            let isHead = head.method == .HEAD
            let version = head.version
            DispatchQueue.global().async {
                let reply = route(info)
                bound.eventLoop.execute {
                    bound.value.handler.respond(reply, version: version, bodyless: isHead, context: bound.value.context)
                }
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
