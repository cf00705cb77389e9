/// Lets a recurring fault be logged at most once per `interval` per kind, and says how
/// many were not logged since, so a fault that hits every query under load (every send
/// refused, no descriptors left) cannot flood the log; the counters keep the totals.
/// Pure: time is passed in (seconds, monotonic). Kinds should be few (per fault type and
/// upstream, not per query).
public struct FaultLogLimiter: Sendable {
    public let interval: Double
    private var lastLogged: [String: Double] = [:]
    private var suppressed: [String: Int] = [:]

    public init(interval: Double = 10) {
        self.interval = interval
    }

    /// nil: do not log this one (it is counted as suppressed). Otherwise log it now; the
    /// value is how many of this kind were suppressed since the last one logged.
    public mutating func admit(_ kind: String, now: Double) -> Int? {
        if let last = lastLogged[kind], now - last < interval {
            suppressed[kind, default: 0] += 1
            return nil
        }
        lastLogged[kind] = now
        return suppressed.removeValue(forKey: kind) ?? 0
    }
}
