/// The failover plan of one query across an ordered list of upstreams. Pure state
/// machine: events in, the next action out.
///
/// Each upstream is tried once, in order. With `rounds` > 1, the servers that timed out
/// (a lost datagram, not a refusal or an unreachable port) are tried again in further
/// rounds; the caller stops the plan when the query's deadline passes.
public struct UpstreamPlan: Sendable {
    public enum Outcome: Equatable, Sendable {
        /// An answer we can relay (any rcode other than SERVFAIL/REFUSED).
        case answer
        /// The upstream answered SERVFAIL or REFUSED: it cannot help, try the next.
        case unusableAnswer
        /// No answer in time.
        case timeout
        /// The upstream could not be reached (ICMP unreachable, connect refused, ...).
        case error
    }

    public enum Action: Equatable, Sendable {
        /// Send (or resend) the query to the upstream at this index.
        case send(Int)
        /// Relay the answer just received to the client.
        case deliver
        /// Every upstream failed: answer SERVFAIL.
        case servfail
    }

    public let count: Int
    public let rounds: Int
    public private(set) var current: Int
    public private(set) var attempts: Int
    public private(set) var round = 1
    /// Indices still to try in this round, in order.
    private var queue: [Int]
    /// Indices that timed out in this round (candidates for the next).
    private var timedOut: [Int] = []

    public init(upstreamCount: Int, rounds: Int = 1) {
        precondition(upstreamCount > 0 && rounds > 0)
        self.count = upstreamCount
        self.rounds = rounds
        self.current = 0
        self.attempts = 1
        self.queue = Array(1..<upstreamCount)
    }

    /// The first action: send to the first upstream.
    public var start: Action { .send(0) }

    public mutating func next(after outcome: Outcome) -> Action {
        switch outcome {
        case .answer:
            return .deliver
        case .unusableAnswer, .timeout, .error:
            if outcome == .timeout, !timedOut.contains(current) { timedOut.append(current) }
            if queue.isEmpty, round < rounds, !timedOut.isEmpty {
                round += 1
                queue = timedOut
                timedOut = []
            }
            guard !queue.isEmpty else { return .servfail }
            current = queue.removeFirst()
            attempts += 1
            return .send(current)
        }
    }
}
