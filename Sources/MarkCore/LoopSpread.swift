/// How many event loops the kernel gives UDP clients to (the listeners' SO_REUSEPORT
/// steering program): all of them under load, one when the load is light.
///
/// Why: each loop wakes and batches only for the clients steered to it. At the rates a
/// gateway sees (a few thousand queries a second), two loops each wake for half the queries
/// and batch half as well, so a query costs more CPU than with one loop (measured: 57.5 vs
/// 43.9 µs per forwarded query at 8,000 q/s, 1.2-2.1 vs 0.55 context switches per query).
/// Under load a second loop is what lets the forwarder scale, so the count follows the load.
///
/// The thresholds: a loop thread's CPU includes the kernel work of its sends (loopback
/// delivery, conntrack, nft), about 0.4 of a core at 8,000 forwarded queries a second on the
/// 2-vCPU test box; spreading there doubled the context switches and cost 20-30% more CPU
/// per query. So it spreads only near saturation, where the second loop buys throughput.
///
/// Events in: the CPU each loop's thread used over an interval, as a fraction of one core.
/// Out: the new number of loops to steer to, when it changes. One loop that is busier than
/// `spreadAbove` spreads at once; all of them together below `gatherBelow` for
/// `quietIntervals` intervals in a row gather again (hysteresis: spreading halves each
/// loop's share, so the two thresholds are far apart).
public struct LoopSpread: Sendable, Equatable {
    public let loops: Int
    public private(set) var active: Int
    private var quiet = 0

    public static let spreadAbove = 0.70
    public static let gatherBelow = 0.30
    public static let quietIntervals = 3

    /// Starts gathered on one loop (a busy start spreads within one interval).
    public init(loops: Int) {
        self.loops = max(1, loops)
        active = 1
    }

    public mutating func observe(busy: [Double]) -> Int? {
        guard loops > 1, busy.count == loops else { return nil }
        let total = busy.reduce(0, +)
        if active == 1 {
            guard busy[0] > Self.spreadAbove else { return nil }
            active = loops
            quiet = 0
            return active
        }
        guard total < Self.gatherBelow else {
            quiet = 0
            return nil
        }
        quiet += 1
        guard quiet >= Self.quietIntervals else { return nil }
        active = 1
        quiet = 0
        return active
    }
}
