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

/// The `--metrics ADDR:PORT` listener: HTTP/1.1 (NIOHTTP1) on a thread of its own, one
/// response per connection. Routes run off the event loop (a scrape may dump the conntrack
/// table or wait on the DNS loop for its counters).
public final class MetricsHTTPServer: Sendable {
    private let group: MultiThreadedEventLoopGroup
    private let channel: any Channel
    public let localAddress: SocketAddress?

    public static func start(host: String, port: Int,
                             route: @escaping @Sendable (_ path: String, _ query: String) -> HTTPReply) throws -> MetricsHTTPServer {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        do {
            let channel = try ServerBootstrap(group: group)
                .serverChannelOption(.backlog, value: 32)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                        try channel.pipeline.syncOperations.addHandler(MetricsHTTPHandler(route: route))
                    }
                }
                .bind(host: host, port: port).wait()
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

    private let route: @Sendable (String, String) -> HTTPReply
    private var request: HTTPRequestHead?

    init(route: @escaping @Sendable (String, String) -> HTTPReply) {
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
            let uri = head.uri
            let isGet = head.method == .GET || head.method == .HEAD
            let isHead = head.method == .HEAD
            let version = head.version
            DispatchQueue.global().async {
                let reply: HTTPReply
                if isGet {
                    let parts = uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
                    reply = route(String(parts.first ?? ""), parts.count > 1 ? String(parts[1]) : "")
                } else {
                    reply = HTTPReply(status: .methodNotAllowed, contentType: "text/plain", body: Array("GET only\n".utf8))
                }
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
