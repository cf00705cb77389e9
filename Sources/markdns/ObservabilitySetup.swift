import Conntrack
import Forwarder
import Logging
import MarkCore
import MarkPolicy
import NIOCore
import NIOConcurrencyHelpers
import Observability

/// `serve`'s metrics listener, query log and save-mark check, wired together.
final class ObservabilitySetup: Sendable {
    let hub: ObservabilityHub?
    private let metricsAddress: Endpoint?
    private let accounting: AccountingSampler?
    private let server = NIOLockedValueBox<MetricsHTTPServer?>(nil)
    private let logger: Logger
    /// Sessions add their metrics and `/sessions` here once they run.
    let extensions = MetricsExtensions()
    /// The DoT/DoH counters the forwarder keeps (`ForwarderConfig.secureStats`).
    let secureStats = SecureStats()

    init(metrics: String?, queryLog: String?, queryLogQueue: Int, conntrack: Bool, policy: PolicyConfig, logger: Logger) {
        self.logger = logger
        metricsAddress = metrics.flatMap { try? Endpoint.parse($0) }
        let log = queryLog.map { path in
            QueryLogWriter(path: path, capacity: queryLogQueue, onError: { logger.error("\($0)") })
        }
        let saveMark = conntrack ? SaveMarkCheck(logger: logger) : nil
        let observes = metricsAddress != nil || log != nil
        hub = observes || saveMark != nil
            ? ObservabilityHub(metrics: MarkdnsMetrics(), queryLog: log, saveMarkCheck: saveMark, observesQueries: observes)
            : nil
        accounting = metricsAddress != nil && conntrack ? AccountingSampler(policy: policy) : nil
    }

    /// Binds the metrics listener (when asked for).
    func startListener(forwarder: Forwarder) throws(ForwarderStartError) {
        guard let address = metricsAddress, let hub else { return }
        let routes = MetricsRoutes(hub: hub, accounting: accounting, extensions: extensions, secure: secureStats,
                                   snapshot: { forwarder.snapshot() })
        do {
            let s = try MetricsHTTPServer.start(host: address.address.description, port: Int(address.port)) {
                routes.reply(path: $0, query: $1)
            }
            server.withLockedValue { $0 = s }
        } catch {
            _ = forwarder.shutdown(drainTimeout: .zero)
            throw ForwarderStartError(description: "cannot listen on \(address) for metrics: \(error)")
        }
        logger.info("metrics on http://\(address)/metrics, top clients on /clients")
        if accounting != nil, ConntrackDump.accountingEnabled() == false {
            logger.warning("net.netfilter.nf_conntrack_acct is 0: conntrack byte and packet counts per mark stay 0 (sysctl -w net.netfilter.nf_conntrack_acct=1)")
        }
    }

    func reopenLog() {
        guard let log = hub?.queryLog else { return }
        log.reopen()
        logger.notice("SIGUSR1: reopening the query log \(log.path)")
    }

    func reloaded(_ policy: PolicyConfig) {
        hub?.metrics.recordReload(ok: true)
        accounting?.setPolicy(policy)
    }

    func reloadFailed() { hub?.metrics.recordReload(ok: false) }

    func stopListener() { server.withLockedValue { $0 }?.stop() }

    func stopLog() { hub?.queryLog?.stop() }
}
