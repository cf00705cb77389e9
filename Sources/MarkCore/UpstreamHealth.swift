/// Which upstream servers are worth trying now. A server that failed (timeout or
/// unreachable) `threshold` times in a row is put back for a while, doubling from
/// `initialBackoff` up to `maxBackoff`; one success makes it healthy again. Pure: time is
/// passed in (seconds, monotonic).
public struct UpstreamHealth: Sendable {
    struct State: Sendable {
        var failures = 0
        var backoff: Double = 0
        var downUntil: Double = 0
    }

    public let threshold: Int
    public let initialBackoff: Double
    public let maxBackoff: Double
    private var states: [Endpoint: State] = [:]

    public init(threshold: Int = 3, initialBackoff: Double = 1, maxBackoff: Double = 60) {
        self.threshold = threshold
        self.initialBackoff = initialBackoff
        self.maxBackoff = maxBackoff
    }

    public mutating func success(_ server: Endpoint) {
        states[server] = nil
    }

    public mutating func failure(_ server: Endpoint, now: Double) {
        var s = states[server] ?? State()
        s.failures += 1
        if s.failures >= threshold {
            s.backoff = s.backoff == 0 ? initialBackoff : min(s.backoff * 2, maxBackoff)
            s.downUntil = now + s.backoff
            s.failures = 0
        }
        states[server] = s
    }

    public func isDown(_ server: Endpoint, now: Double) -> Bool {
        (states[server]?.downUntil ?? 0) > now
    }

    /// The servers in their configured order, those backed off moved to the end (still
    /// tried when everything else fails, so a pool never has nothing to try).
    public func order(_ servers: [Endpoint], now: Double) -> [Endpoint] {
        guard servers.contains(where: { isDown($0, now: now) }) else { return servers }
        return servers.filter { !isDown($0, now: now) } + servers.filter { isDown($0, now: now) }
    }
}
