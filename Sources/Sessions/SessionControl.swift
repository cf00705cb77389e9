import Conntrack
import MarkSessions
import NIOCore
import NIOHTTP1
import Observability

#if canImport(Glibc)
import Glibc
#endif

/// The control socket: `markdns session ...` speaks HTTP/1 to it (`ControlRequest`), it
/// answers JSON. A UNIX socket of mode 0660: root and the socket's group may control.
public final class SessionControl: Sendable {
    private let server: MetricsHTTPServer
    public let path: String

    public static func start(path: String, service: SessionService) throws -> SessionControl {
        let server = try MetricsHTTPServer.start(.unix(path: path), routes: .eventLoop) { route($0, service) }
        guard chmod(path, 0o660) == 0 else {
            server.stop()
            throw SessionStoreError("cannot chmod 0660 \(path): \(String(cString: strerror(errno)))")
        }
        return SessionControl(server: server, path: path)
    }

    private init(server: MetricsHTTPServer, path: String) { self.server = server; self.path = path }

    /// The loop every control request runs on: logins and logouts (nft, ctnetlink) happen
    /// there, so the daemon runs its expiry and re-apply there too (one thread writes the
    /// session state to the kernel, and it is the one that keeps CAP_NET_ADMIN under --user).
    public var eventLoop: any EventLoop { server.eventLoop }

    public func stop() {
        server.stop()
        unlink(path)
    }

    static func json(_ status: HTTPResponseStatus, _ text: String) -> HTTPReply {
        HTTPReply(status: status, contentType: "application/json", body: Array(text.utf8))
    }

    static func route(_ req: HTTPRequestInfo, _ service: SessionService) -> HTTPReply {
        let parsed = ControlRequest.parse(method: req.method.rawValue, uri: req.uri)
        let request: ControlRequest
        switch parsed {
        case .failure(let r): return json(HTTPResponseStatus(statusCode: r.status), JSONText.error(r.description))
        case .success(let r): request = r
        }
        let now = service.now
        switch request {
        case let .login(client, mark, user, duration):
            switch service.login(.init(client: client, mark: mark, user: user, duration: duration)) {
            case .success(let s): return json(.ok, JSONText.session(s, now: now) + "\n")
            case .failure(let f): return failure(f)
            }
        case .logout(let client):
            switch service.logout(client) {
            case .success: return json(.ok, "{\"logout\":\(JSONText.string(client.description))}\n")
            case .failure(let f): return failure(f)
            }
        case .list(let text):
            let live = service.live()
            let traffic = perUserTraffic(live, service)
            if text {
                return HTTPReply(contentType: "text/plain", body: Array(SessionTable.render(live, now: now, traffic: traffic).utf8))
            }
            return json(.ok, JSONText.sessions(live, now: now, traffic: { traffic[$0.client.description] }))
        case .show(let client):
            guard let s = service.session(of: client) else {
                return json(.notFound, JSONText.error(SessionError.noSession(client).description))
            }
            return json(.ok, JSONText.session(s, now: now) + "\n")
        }
    }

    /// Bytes and packets per user of range marks, from the conntrack table (both directions;
    /// zero unless net.netfilter.nf_conntrack_acct is on).
    public static func perUserTraffic(_ live: [Session], _ service: SessionService) -> [String: JSONText.Traffic] {
        let ranges = Set(service.currentPolicy.marks.filter { $0.range != nil }.map(\.name))
        guard live.contains(where: { ranges.contains($0.markName) }), let flows = try? ConntrackDump.flows() else { return [:] }
        return JSONText.perUser(live, rangeMarks: ranges, flows: flows.map {
            (mark: $0.mark, bytes: $0.originalBytes + $0.replyBytes, packets: $0.originalPackets + $0.replyPackets)
        })
    }

    static func failure(_ f: SessionService.Failure) -> HTTPReply {
        switch f {
        case .refused(.noSession): return json(.notFound, JSONText.error(f.description))
        case .refused: return json(.badRequest, JSONText.error(f.description))
        case .store, .kernel: return json(.internalServerError, JSONText.error(f.description))
        }
    }
}
