/// The failover plan of one query across an ordered list of upstreams. Pure state
/// machine: events in, the next action out.
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
    public private(set) var current: Int
    public private(set) var attempts: Int

    public init(upstreamCount: Int) {
        precondition(upstreamCount > 0)
        self.count = upstreamCount
        self.current = 0
        self.attempts = 1
    }

    /// The first action: send to the first upstream.
    public var start: Action { .send(0) }

    public mutating func next(after outcome: Outcome) -> Action {
        switch outcome {
        case .answer:
            return .deliver
        case .unusableAnswer, .timeout, .error:
            guard current + 1 < count else { return .servfail }
            current += 1
            attempts += 1
            return .send(current)
        }
    }
}
