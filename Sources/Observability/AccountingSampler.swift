import Conntrack
import MarkCore
import MarkPolicy
import MarkStats
import NIOConcurrencyHelpers

#if canImport(Glibc)
import Glibc
#endif

/// Conntrack accounting for `/metrics`: the table is dumped at most once per `interval`
/// (a scrape storm must not turn into a dump storm); scrapes in between get the last sums.
public final class AccountingSampler: @unchecked Sendable {
    private let lock = NIOLock()
    private let interval: Double
    private var last: (at: Double, totals: [MarkTotals])?
    private var policy: PolicyConfig
    private let dump: @Sendable () throws -> [FlowCounters]
    private let clock: @Sendable () -> Double

    public init(policy: PolicyConfig, interval: Double = 5,
                dump: @escaping @Sendable () throws -> [FlowCounters] = { try ConntrackDump.flows() },
                clock: @escaping @Sendable () -> Double = AccountingSampler.monotonic) {
        self.policy = policy
        self.interval = interval
        self.dump = dump
        self.clock = clock
    }

    public func setPolicy(_ p: PolicyConfig) { lock.withLock { policy = p; last = nil } }

    /// The sums per mark, fresh or at most `interval` seconds old; nil when the dump fails.
    public func totals() -> [MarkTotals]? {
        lock.withLock {
            let now = clock()
            if let last, now - last.at < interval { return last.totals }
            guard let flows = try? dump() else { return nil }
            let totals = MarkAccounting.totals(flows, policy: policy)
            last = (now, totals)
            return totals
        }
    }

    /// Every name the policy can give a mark (so absent marks export 0, not nothing).
    public var names: [String] {
        lock.withLock { policy.marks.map(\.name) + [PolicyDecision.otherName, PolicyDecision.noneName] }
    }

    public static let monotonic: @Sendable () -> Double = {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
}
