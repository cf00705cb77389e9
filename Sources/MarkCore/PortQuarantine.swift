/// Remembers which mark last used a local port towards an upstream, so a new socket is
/// never given a 5-tuple whose conntrack entry may still be alive with another mark.
///
/// The kernel picks ephemeral ports; when a socket of mark A is closed and a new socket of
/// mark B gets the same port to the same upstream within the conntrack UDP timeout, the
/// OUTPUT save-mark rule would rewrite the old entry's mark packet by packet and mix the
/// two marks' accounting. Pure: time is passed in.
public struct PortQuarantine: Sendable {
    public struct Key: Hashable, Sendable {
        public var upstream: Endpoint
        public var port: UInt16
        public init(upstream: Endpoint, port: UInt16) { self.upstream = upstream; self.port = port }
    }

    /// How long a port stays bound to its last mark after last use (seconds). The
    /// default covers the kernel's UDP stream timeout (120 s) with margin.
    public let holdSeconds: Double
    private var lastUse: [Key: (mark: UInt32, time: Double)] = [:]
    private var lastSweep: Double = 0

    public init(holdSeconds: Double = 180) { self.holdSeconds = holdSeconds }

    /// True when `port` may carry `mark` to `upstream` at time `now`.
    public func allows(_ key: Key, mark: UInt32, now: Double) -> Bool {
        guard let entry = lastUse[key] else { return true }
        return entry.mark == mark || now - entry.time > holdSeconds
    }

    /// Records that `port` carried `mark` at `now` (call on open and on close).
    public mutating func record(_ key: Key, mark: UInt32, now: Double) {
        lastUse[key] = (mark, now)
        if now - lastSweep > holdSeconds {
            lastUse = lastUse.filter { now - $0.value.time <= holdSeconds }
            lastSweep = now
        }
    }

    public var count: Int { lastUse.count }
}
