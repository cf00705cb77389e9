import Logging
import MarkPolicy
import MarkSessions
import NIOCore
import NIOSSL
import Observability
import Sessions

#if canImport(Glibc)
import Glibc
#endif

/// `serve`'s sessions, when the policy has a mark with `sessions = true`: the SQLite store,
/// the service (re-applied at start-up and on SIGHUP), the control socket, the expiry tick.
/// Started as root, before `serve --user` drops it: the database is opened (and its WAL
/// files made) and the sockets bound while the directories are still writable. Every write
/// to the kernel (login, logout, expiry, re-apply) then runs on the control socket's loop,
/// which the drop parks and leaves with CAP_NET_ADMIN (`eventLoop`).
final class SessionSetup: Sendable {
    let service: SessionService
    private let control: SessionControl
    private let portal: CaptivePortalAPI?
    private let timer: RepeatedTask
    private let logger: Logger

    /// The loop that writes sessions to the kernel.
    var eventLoop: any EventLoop { control.eventLoop }
    /// Every loop that needs CAP_NET_ADMIN after `serve --user`: the control loop and the
    /// Captive Portal API's (its ctnetlink lookups).
    var eventLoops: [any EventLoop] { [control.eventLoop] + (portal.map { [$0.eventLoop] } ?? []) }

    struct StartError: Error, CustomStringConvertible { let description: String }

    static func start(_ policy: PolicyConfig, logger: Logger) throws(StartError) -> SessionSetup {
        let cfg = policy.sessions
        let store: SQLiteSessionStore
        do {
            makeParent(of: cfg.database, mode: 0o750)
            store = try SQLiteSessionStore(path: cfg.database)
        } catch {
            throw StartError(description: error.description)
        }
        let service = SessionService(policy: policy, store: store, kernel: SessionKernelShell(), logger: logger,
                                     clock: { Int64(time(nil)) })
        switch service.reapply(policy) {
        case .success(let n): logger.notice("sessions: \(n) live session(s) re-applied from \(cfg.database)")
        case .failure(let e): logger.error("sessions: cannot re-apply the stored sessions: \(e)")
        }
        let control: SessionControl
        do {
            makeParent(of: cfg.control, mode: 0o755)
            control = try SessionControl.start(path: cfg.control, service: service)
        } catch {
            throw StartError(description: "cannot listen on the control socket \(cfg.control): \(error)")
        }
        logger.info("sessions: control socket \(cfg.control)")
        var portal: CaptivePortalAPI? = nil
        if let api = cfg.portalAPI {
            let tls: NIOSSLContext?
            do { tls = try cfg.portalTLS.map(PortalTLS.context) } catch {
                control.stop()
                throw StartError(description: "the Captive Portal API's certificate \(cfg.portalTLS?.certFile ?? "") "
                                 + "and key \(cfg.portalTLS?.keyFile ?? ""): \(error)")
            }
            do { portal = try CaptivePortalAPI.start(api, service: service, tls: tls) } catch {
                control.stop()
                throw StartError(description: "cannot listen on \(api) for the Captive Portal API: \(error)")
            }
            if tls != nil {
                logger.info("sessions: Captive Portal API on https://\(api)\(CaptivePortalAPI.path)")
            } else {
                let note = "(fine for a test lab; RFC 8908 wants HTTPS: set portal-tls-cert and portal-tls-key)"
                logger.notice("sessions: Captive Portal API on http://\(api)\(CaptivePortalAPI.path) is plain HTTP \(note)")
            }
        }
        let timer = control.eventLoop.scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) { _ in
            service.expire()
        }
        return SessionSetup(service: service, control: control, portal: portal, timer: timer, logger: logger)
    }

    private init(service: SessionService, control: SessionControl, portal: CaptivePortalAPI?,
                 timer: RepeatedTask, logger: Logger) {
        self.service = service; self.control = control; self.portal = portal; self.timer = timer; self.logger = logger
    }

    /// SIGHUP: the new policy's session rules, every stored session re-applied (on the
    /// session loop; this waits for it).
    func reloaded(_ policy: PolicyConfig) {
        let service = self.service
        let result = try? eventLoop.submit { service.reapply(policy) }.wait()
        switch result ?? .failure(.kernel("the session loop is shut down")) {
        case .success(let n): logger.notice("sessions: \(n) live session(s) re-applied")
        case .failure(let e): logger.error("sessions: re-apply failed: \(e)")
        }
    }

    /// Session metrics (bounded labels: mark names) and `/sessions` (per-user figures) on
    /// the metrics listener.
    func install(into extensions: MetricsExtensions) {
        let service = self.service
        extensions.install((update: { metrics in
            let c = service.snapshot
            metrics.mirror("markdns_session_logins_total", total: c.logins)
            metrics.mirror("markdns_session_logouts_total", total: c.logouts)
            metrics.mirror("markdns_session_expiries_total", total: c.expiries)
            metrics.mirror("markdns_session_apply_failures_total", total: c.applyFailures)
            let live = service.live()
            for m in service.currentPolicy.marks where m.sessions {
                metrics.set("markdns_sessions_live", ["mark", m.name], to: Double(live.filter { $0.markName == m.name }.count))
            }
        }, sessions: {
            let live = service.live()
            let traffic = SessionControl.perUserTraffic(live, service)
            return Array(JSONText.sessions(live, now: service.now, traffic: { traffic[$0.client.description] }).utf8)
        }))
    }

    func stop() {
        timer.cancel()
        portal?.stop()
        control.stop()
    }

    /// Creates the directory a file goes in, when missing (one level: /run/markdns).
    private static func makeParent(of path: String, mode: mode_t) {
        guard let slash = path.lastIndex(of: "/"), slash != path.startIndex else { return }
        _ = mkdir(String(path[..<slash]), mode)
    }
}
