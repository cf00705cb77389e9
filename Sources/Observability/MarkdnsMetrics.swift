import QueryCore
import CoreMetrics
import Forwarder
import MarkCore
import MarkStats
import NIOConcurrencyHelpers
import Prometheus

/// Every markdns metric, in one Prometheus registry, made through the swift-metrics API.
///
/// Labels are bounded: mark names come from the policy (plus `other` and `none`),
/// upstreams from the configured pools, reasons and rcodes from fixed sets. No client
/// address is ever a label. Handles are made once per label set and kept (under a lock:
/// events arrive on the DNS loop, scrapes on the HTTP one).
public final class MarkdnsMetrics: @unchecked Sendable {
    public let registry = PrometheusCollectorRegistry()
    private let factory: PrometheusMetricsFactory
    private let lock = NIOLock()
    private var counters: [Key: CoreMetrics.Counter] = [:]
    private var timers: [Key: CoreMetrics.Timer] = [:]
    private var gauges: [Key: CoreMetrics.Gauge] = [:]
    /// Last value seen of each counter mirrored from the engine's `Counters`.
    private var mirrored: [Key: Int] = [:]

    struct Key: Hashable {
        var name: String
        var labels: [String]
        var dimensions: [(String, String)] { stride(from: 0, to: labels.count, by: 2).map { (labels[$0], labels[$0 + 1]) } }
    }

    public init() {
        var f = PrometheusMetricsFactory(registry: registry)
        let ms: (Double) -> Duration = { .nanoseconds(Int64($0 * 1_000_000)) }
        f.defaultDurationHistogramBuckets = [0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000].map(ms)
        f.durationHistogramBuckets["markdns_conntrack_lookup_seconds"] =
            [0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 5].map(ms)
        factory = f
    }

    /// The handle of `key` in `store`, made on first use.
    private func handle<M>(_ store: ReferenceWritableKeyPath<MarkdnsMetrics, [Key: M]>, _ key: Key,
                           make: (String, [(String, String)], PrometheusMetricsFactory) -> M) -> M {
        lock.withLock {
            if let h = self[keyPath: store][key] { return h }
            let h = make(key.name, key.dimensions, factory)
            self[keyPath: store][key] = h
            return h
        }
    }

    public func increment(_ name: String, _ labels: [String] = [], by n: Int = 1) {
        let counter = handle(\.counters, Key(name: name, labels: labels)) { CoreMetrics.Counter(label: $0, dimensions: $1, factory: $2) }
        if n > 0 { counter.increment(by: n) }
    }

    public func time(_ name: String, _ labels: [String] = [], seconds: Double) {
        let timer = handle(\.timers, Key(name: name, labels: labels)) { CoreMetrics.Timer(label: $0, dimensions: $1, factory: $2) }
        timer.recordNanoseconds(Int64(max(0, seconds) * 1e9))
    }

    public func set(_ name: String, _ labels: [String] = [], to value: Double) {
        let gauge = handle(\.gauges, Key(name: name, labels: labels)) { CoreMetrics.Gauge(label: $0, dimensions: $1, factory: $2) }
        gauge.record(value)
    }

    /// A counter kept elsewhere (the engine's `Counters`) exported as a Prometheus counter:
    /// increments by what it grew since the last call.
    public func mirror(_ name: String, _ labels: [String] = [], total: Int) {
        let key = Key(name: name, labels: labels)
        let delta = lock.withLock {
            let d = total - mirrored[key, default: 0]
            mirrored[key] = total
            return d
        }
        increment(name, labels, by: max(0, delta))
    }

    // MARK: - What the forwarder reports

    public func record(_ e: QueryEvent) {
        increment("markdns_queries_total", ["mark", e.markName, "proto", e.proto.description, "rcode", e.rcodeName])
        if e.cacheHit { increment("markdns_cache_hits_total", ["mark", e.markName]) }
        if e.forwarded { increment("markdns_cache_misses_total", ["mark", e.markName]) }
        if let reason = e.localReason { increment("markdns_local_answers_total", ["mark", e.markName, "reason", reason]) }
    }

    public func record(_ a: UpstreamAttempt) {
        let upstream = a.upstream.description
        increment("markdns_upstream_queries_total", ["upstream", upstream, "proto", a.proto.description])
        if a.outcome == .answered {
            time("markdns_upstream_latency_seconds", ["upstream", upstream], seconds: a.latency)
        } else {
            increment("markdns_upstream_failures_total", ["upstream", upstream, "reason", a.outcome.rawValue])
        }
    }

    public func recordLookup(seconds: Double, result: MarkLookup) {
        let outcome: String
        switch result {
        case .found: outcome = "found"
        case .notFound: outcome = "not_found"
        case .failed: outcome = "failed"
        }
        increment("markdns_conntrack_lookups_total", ["result", outcome])
        time("markdns_conntrack_lookup_seconds", seconds: seconds)
    }

    public func recordReload(ok: Bool) {
        increment("markdns_config_reloads_total", ["result", ok ? "ok" : "failed"])
    }

    /// The engine's own counts of what never became a `QueryEvent` or is not in one:
    /// drops and refusals by reason, queries without a mark by reason, in flight.
    public func update(from c: Counters, outstanding: Int) {
        mirror("markdns_dropped_total", ["reason", "malformed"], total: c.droppedMalformed)
        mirror("markdns_dropped_total", ["reason", "tcp_connection_limit"], total: c.tcpRejected)
        mirror("markdns_dropped_total", ["reason", "reply_send_failed"], total: c.replyDrops)
        mirror("markdns_accept_errors_total", total: c.acceptErrors)
        mirror("markdns_refusals_total", ["reason", "overload"], total: c.overload)
        mirror("markdns_refusals_total", ["reason", "policy"], total: c.refused)
        mirror("markdns_refusals_total", ["reason", "formerr"], total: c.formerr)
        mirror("markdns_refusals_total", ["reason", "notimp"], total: c.notimp)
        for reason in NoMarkReason.allCases {
            mirror("markdns_unmarked_queries_total", ["reason", reason.rawValue], total: c.unmarked[reason, default: 0])
        }
        mirror("markdns_coalesced_queries_total", total: c.coalesced)
        // Marks taken from the packet (SO_RCVMARK) instead of a ctnetlink lookup, and the
        // comparisons that keep that honest.
        mirror("markdns_packet_marks_total", total: c.packetMarks)
        mirror("markdns_packet_mark_checks_total", ["result", "match"], total: c.packetMarksVerified)
        mirror("markdns_packet_mark_checks_total", ["result", "mismatch"], total: c.packetMarkMismatches)
        mirror("markdns_upstream_unmatched_answers_total", total: c.unmatchedAnswers + c.mismatchedAnswers)
        // [[set]] writes per set: elements added, refreshed (written again before their
        // timeout ran out), refused or unsent; answers released at the deadline unacknowledged.
        for (name, counts) in c.sets {
            mirror("markdns_set_elements_total", ["set", name, "result", "added"], total: counts.added)
            mirror("markdns_set_elements_total", ["set", name, "result", "refreshed"], total: counts.refreshed)
            mirror("markdns_set_elements_total", ["set", name, "result", "failed"], total: counts.failures)
            mirror("markdns_set_deadline_misses_total", ["set", name], total: counts.deadlineMisses)
        }
        set("markdns_outstanding_queries", to: Double(outstanding))
    }

    /// Conntrack accounting per mark name (gauges: flows come and go).
    public func update(accounting: [String: MarkTotals], names: [String]) {
        for name in Set(names).union(accounting.keys) {
            let t = accounting[name]
            set("markdns_conntrack_flows", ["mark", name], to: Double(t?.flows ?? 0))
            set("markdns_conntrack_bytes", ["mark", name, "direction", "original"], to: Double(t?.originalBytes ?? 0))
            set("markdns_conntrack_bytes", ["mark", name, "direction", "reply"], to: Double(t?.replyBytes ?? 0))
            set("markdns_conntrack_packets", ["mark", name, "direction", "original"], to: Double(t?.originalPackets ?? 0))
            set("markdns_conntrack_packets", ["mark", name, "direction", "reply"], to: Double(t?.replyPackets ?? 0))
        }
    }

    public func text() -> [UInt8] { registry.emitToBuffer() }
}
