import Conntrack
import MarkCore
import MarkPolicy
import MarkSessions
import NIOCore
import NIOHTTP1
import NIOSSL
import Observability

/// RFC 8908 Captive Portal API on `[sessions] portal-api`: `GET /captive-portal/api` answers
/// the asking client (by its source address) with `application/captive+json`: captive while
/// its mark is a walled garden, the `user-portal-url` of that mark, the seconds its session
/// has left. The mark is the client's session's (by address or by the MAC the neighbour
/// table gives it), else the connmark of its connection to this API, else the first
/// `[[client]]` rule matching it (`PolicyConfig.portalMark`). HTTPS with a TLS context
/// (`PortalTLS`), else plain HTTP (a test lab: RFC 8908 wants HTTPS).
public final class CaptivePortalAPI: Sendable {
    private let server: MetricsHTTPServer
    public var localAddress: SocketAddress? { server.localAddress }

    public static let path = "/captive-portal/api"

    /// What the kernel says about the asking client: the connmark of its connection to us,
    /// the MAC of its address. Production: ctnetlink and the neighbour table.
    public typealias Identify = @Sendable (_ client: Endpoint, _ local: Endpoint) -> (connmark: UInt32?, mac: MACAddress?)

    /// Routes run on the server's loop: the ctnetlink lookup needs CAP_NET_ADMIN after
    /// `serve --user`, and that loop is one the drop parks (`eventLoop`).
    public static func start(_ endpoint: Endpoint, service: SessionService, tls: NIOSSLContext? = nil,
                             identify: @escaping Identify = CaptivePortalAPI.kernelIdentify) throws -> CaptivePortalAPI {
        let server = try MetricsHTTPServer.start(.tcp(host: endpoint.address.description, port: Int(endpoint.port)),
                                                 routes: .eventLoop, tls: tls) {
            route($0, service, identify: identify)
        }
        return CaptivePortalAPI(server: server)
    }

    public var eventLoop: any EventLoop { server.eventLoop }

    /// The connmark of the TCP connection client -> local (ctnetlink, by its reply tuple) and
    /// the client's MAC (rtnetlink neighbour dump); nil where the kernel has none.
    public static let kernelIdentify: Identify = { client, local in
        let flow = FlowTuple(proto: .tcp, client: client, local: local)
        var connmark: UInt32? = nil
        if let source = try? NetlinkMarkSource(), case .found(let m) = source.lookup(flow) { connmark = m }
        let mac = (try? NeighbourDump.entries()).flatMap { Neighbours.table($0)[client.address] }
        return (connmark, mac)
    }

    private init(server: MetricsHTTPServer) { self.server = server }

    public func stop() { server.stop() }

    static func route(_ req: HTTPRequestInfo, _ service: SessionService, identify: Identify) -> HTTPReply {
        let path = req.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? ""
        guard path == Self.path else {
            return HTTPReply(status: .notFound, contentType: "text/plain", body: Array("not found\n".utf8))
        }
        guard req.method == .GET || req.method == .HEAD else {
            return HTTPReply(status: .methodNotAllowed, contentType: "text/plain", body: Array("GET only\n".utf8))
        }
        guard let text = req.remote?.ipAddress, let address = IPAddress(text) else {
            return HTTPReply(status: .badRequest, contentType: "text/plain", body: Array("no client address\n".utf8))
        }
        let policy = service.currentPolicy
        var kernel: (connmark: UInt32?, mac: MACAddress?) = (nil, nil)
        if let port = req.remote?.port, let localText = req.local?.ipAddress, let localAddress = IPAddress(localText),
           let localPort = req.local?.port {
            kernel = identify(Endpoint(address: address, port: UInt16(port)), Endpoint(address: localAddress, port: UInt16(localPort)))
        }
        let session = service.session(of: .address(address)) ?? kernel.mac.flatMap { service.session(of: .mac($0)) }
        let mark = policy.portalMark(session: session?.markName, connmark: kernel.connmark,
                                     client: ClientIdentity(address: address, mac: kernel.mac?.bytes))
        let captive = mark?.action.kind == .walledGarden
        let doc = CaptiveAPI.document(captive: captive, portalURL: mark?.userPortalURL, session: session, now: service.now)
        var reply = HTTPReply(contentType: CaptiveAPI.contentType, body: Array(doc.utf8))
        reply.status = .ok
        return reply
    }
}
