import QueryCore
import Forwarder
import FoundationEssentials
import MarkStats
import NIOConcurrencyHelpers

/// What other parts of the daemon add to the metrics listener once they run (sessions):
/// metrics updated at each scrape and the JSON of `/sessions`.
public final class MetricsExtensions: Sendable {
    public typealias Hooks = (update: @Sendable (MarkdnsMetrics) -> Void, sessions: @Sendable () -> [UInt8])
    private let hooks = NIOLockedValueBox<Hooks?>(nil)
    public init() {}
    public func install(_ h: Hooks) { hooks.withLockedValue { $0 = h } }
    var current: Hooks? { hooks.withLockedValue { $0 } }
}

/// What the metrics listener serves: `/metrics` (Prometheus text) and `/clients` (JSON,
/// the top-N clients per mark; `?n=` sets N, at most 1000).
public struct MetricsRoutes: Sendable {
    public let hub: ObservabilityHub
    public let accounting: AccountingSampler?
    public let snapshot: @Sendable () -> (counters: Counters, outstanding: Int)
    public let extensions: MetricsExtensions
    /// The DoT/DoH upstreams' counters.
    public let secure: SecureStats?

    public init(hub: ObservabilityHub, accounting: AccountingSampler?, extensions: MetricsExtensions = MetricsExtensions(),
                secure: SecureStats? = nil, snapshot: @escaping @Sendable () -> (counters: Counters, outstanding: Int)) {
        self.hub = hub; self.accounting = accounting; self.snapshot = snapshot; self.extensions = extensions
        self.secure = secure
    }

    public func reply(path: String, query: String) -> HTTPReply {
        switch path {
        case "/metrics":
            let metrics = hub.metrics
            let now = snapshot()
            metrics.update(from: now.counters, outstanding: now.outstanding)
            if let secure { metrics.update(secure: secure.snapshot) }
            if let log = hub.queryLog {
                metrics.mirror("markdns_querylog_dropped_total", total: log.dropped)
                metrics.mirror("markdns_querylog_written_total", total: log.written)
            }
            if let accounting, let totals = accounting.totals() {
                metrics.update(accounting: MarkAccounting.byName(totals), names: accounting.names)
            }
            extensions.current?.update(metrics)
            return HTTPReply(contentType: "text/plain; version=0.0.4; charset=utf-8", body: metrics.text())
        case "/clients":
            let n = Self.parameter("n", in: query).flatMap { Int($0) }.map { min(max($0, 0), 1000) } ?? 20
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            var body: [UInt8] = []
            if let data = try? encoder.encode(hub.clients(top: n)) { body = [UInt8](data) + [0x0A] }
            return HTTPReply(contentType: "application/json", body: body)
        case "/sessions":
            guard let hooks = extensions.current else { fallthrough }
            return HTTPReply(contentType: "application/json", body: hooks.sessions())
        default:
            return HTTPReply(status: .notFound, contentType: "text/plain", body: Array("try /metrics or /clients\n".utf8))
        }
    }

    static func parameter(_ name: String, in query: String) -> String? {
        for pair in query.split(separator: "&") {
            let kv = pair.split(separator: "=", maxSplits: 1)
            if kv.count == 2, kv[0] == name { return String(kv[1]) }
        }
        return nil
    }
}
