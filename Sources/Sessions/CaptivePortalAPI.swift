import MarkCore
import MarkPolicy
import MarkSessions
import NIOCore
import NIOHTTP1
import Observability

/// RFC 8908 Captive Portal API on `[sessions] portal-api`: `GET /captive-portal/api` answers
/// the asking client (by its source address) with `application/captive+json`: captive while
/// its mark is a walled garden, the `user-portal-url` of that mark, the seconds its session
/// has left. The mark is the client's session's, else the first `[[client]]` rule matching
/// its address (interface and MAC selectors cannot be told from an address). Plain HTTP:
/// RFC 8908 wants HTTPS, so put a TLS proxy in front outside a test lab.
public final class CaptivePortalAPI: Sendable {
    private let server: MetricsHTTPServer
    public var localAddress: SocketAddress? { server.localAddress }

    public static let path = "/captive-portal/api"

    public static func start(_ endpoint: Endpoint, service: SessionService) throws -> CaptivePortalAPI {
        let server = try MetricsHTTPServer.start(.tcp(host: endpoint.address.description, port: Int(endpoint.port))) {
            route($0, service)
        }
        return CaptivePortalAPI(server: server)
    }

    private init(server: MetricsHTTPServer) { self.server = server }

    public func stop() { server.stop() }

    static func route(_ req: HTTPRequestInfo, _ service: SessionService) -> HTTPReply {
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
        let session = service.session(of: .address(address))
        let mark: MarkRule?
        if let session {
            mark = policy.mark(named: session.markName)
        } else {
            mark = PolicyEngine(policy).firstMatchingRule(for: ClientIdentity(address: address)).flatMap { policy.mark(value: $0.mark) }
        }
        let captive = mark?.action.kind == .walledGarden
        let doc = CaptiveAPI.document(captive: captive, portalURL: mark?.userPortalURL, session: session, now: service.now)
        var reply = HTTPReply(contentType: CaptiveAPI.contentType, body: Array(doc.utf8))
        reply.status = .ok
        return reply
    }
}
