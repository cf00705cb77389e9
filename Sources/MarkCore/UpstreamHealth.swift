/// What markdns knows of each upstream server: whether it keeps failing (backoff) and how
/// fast it answers (smoothed RTT). A server that failed (timeout or unreachable)
/// `threshold` times in a row is put back for a while, doubling from `initialBackoff` up
/// to `maxBackoff`; one success makes it healthy again. Pure: time is passed in (seconds,
/// monotonic).
public struct UpstreamHealth: Sendable {
    struct State: Sendable {
        var failures = 0
        var backoff: Double = 0
        var downUntil: Double = 0
        var srtt: Double?

        mutating func succeeded(rtt: Double?) {
            failures = 0
            backoff = 0
            downUntil = 0
            if let rtt { srtt = srtt.map { $0 + (rtt - $0) / 8 } ?? rtt }
        }
    }

    public let threshold: Int
    public let initialBackoff: Double
    public let maxBackoff: Double
    /// Every n-th query of a `fastest` pool starts with another server.
    public static let exploreEvery = 16
    private var states: [Endpoint: State] = [:]
    /// The latest `downUntil` of any server: until then some server may be down; after it
    /// none is, and ordering a pool needs no lookup per server.
    private var anyDownUntil: Double = 0

    public init(threshold: Int = 3, initialBackoff: Double = 1, maxBackoff: Double = 60) {
        self.threshold = threshold
        self.initialBackoff = initialBackoff
        self.maxBackoff = maxBackoff
    }

    /// A usable answer (or a refusal: the server is alive). `rtt` (seconds) feeds the
    /// smoothed RTT, weight 1/8 as TCP does.
    public mutating func success(_ server: Endpoint, rtt: Double? = nil) {
        // In place: one hash of the endpoint (this runs once per answer).
        states[server, default: State()].succeeded(rtt: rtt)
    }

    /// A timeout or error. `penalty` (seconds; the timeout) counts as an RTT sample, so
    /// a server that drops queries drifts to the back of a `fastest` pool.
    public mutating func failure(_ server: Endpoint, now: Double, penalty: Double? = nil) {
        var s = states[server] ?? State()
        s.failures += 1
        if s.failures >= threshold {
            s.backoff = s.backoff == 0 ? initialBackoff : min(s.backoff * 2, maxBackoff)
            s.downUntil = now + s.backoff
            anyDownUntil = max(anyDownUntil, s.downUntil)
            s.failures = 0
        }
        if let penalty { s.srtt = s.srtt.map { $0 + (penalty - $0) / 8 } ?? penalty }
        states[server] = s
    }

    public func isDown(_ server: Endpoint, now: Double) -> Bool {
        anyDownUntil > now && (states[server]?.downUntil ?? 0) > now
    }

    /// The smoothed RTT in seconds, nil before the first answer.
    public func srtt(_ server: Endpoint) -> Double? { states[server]?.srtt }

    /// The servers in their configured order, those backed off moved to the end (still
    /// tried when everything else fails, so a pool never has nothing to try).
    public func order(_ servers: [Endpoint], now: Double) -> [Endpoint] {
        order(servers, strategy: .failover, now: now, turn: 0)
    }

    /// The order to try `servers` in for one query. `turn` counts the pool's queries (the
    /// round-robin position and the exploration schedule). Backed-off servers go last.
    public func order(_ servers: [Endpoint], strategy: UpstreamStrategy, now: Double, turn: Int) -> [Endpoint] {
        var list = servers
        let n = servers.count
        if n > 1 {
            switch strategy {
            case .failover:
                break
            case .roundRobin:
                let k = turn % n
                list = Array(servers[k...] + servers[..<k])
            case .fastest:
                // Stable: equal RTTs keep their configured order. Unmeasured ones first.
                list = servers.enumerated().sorted {
                    let a = srtt($0.element) ?? -1, b = srtt($1.element) ?? -1
                    return a != b ? a < b : $0.offset < $1.offset
                }.map(\.element)
                if turn % Self.exploreEvery == Self.exploreEvery - 1 {
                    let pick = 1 + (turn / Self.exploreEvery) % (n - 1)
                    list.insert(list.remove(at: pick), at: 0)
                }
            }
        }
        guard list.contains(where: { isDown($0, now: now) }) else { return list }
        return list.filter { !isDown($0, now: now) } + list.filter { isDown($0, now: now) }
    }
}
