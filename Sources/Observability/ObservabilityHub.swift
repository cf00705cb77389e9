import Forwarder
import MarkCore
import MarkStats
import NIOConcurrencyHelpers

/// The forwarder's observer: feeds every query event to the metrics, the top-N of clients
/// and the query log, every upstream attempt to the metrics and the save-mark check.
/// Called on the DNS loop: it only counts and enqueues.
public final class ObservabilityHub: QueryObserver, @unchecked Sendable {
    public let metrics: MarkdnsMetrics
    public let queryLog: QueryLogWriter?
    public let saveMarkCheck: SaveMarkCheck?
    private let lock = NIOLock()
    private var top: TopClients
    /// Metrics and the query log want every query; the save-mark check alone does not.
    public let observesQueries: Bool

    public init(metrics: MarkdnsMetrics, queryLog: QueryLogWriter?, saveMarkCheck: SaveMarkCheck?,
                topCapacity: Int = 64, observesQueries: Bool = true) {
        self.observesQueries = observesQueries
        self.metrics = metrics
        self.queryLog = queryLog
        self.saveMarkCheck = saveMarkCheck
        self.top = TopClients(capacity: topCapacity)
    }

    public func queryCompleted(_ event: QueryEvent) {
        metrics.record(event)
        lock.withLock { top.record(event.client, mark: event.markName) }
        queryLog?.enqueue(event)
    }

    public func upstreamAttemptEnded(_ attempt: UpstreamAttempt) {
        if observesQueries { metrics.record(attempt) }
        saveMarkCheck?.consider(attempt)
    }

    public func conntrackLookup(seconds: Double, result: MarkLookup) {
        metrics.recordLookup(seconds: seconds, result: result)
    }

    /// The `/clients` document.
    public func clients(top n: Int) -> ClientsReport {
        lock.withLock { ClientsReport(top, n: n) }
    }
}
