import DNSCache
import DNSWire
import MarkCore
import NIOCore

/// One client query on its way through the forwarder. Lives on the engine's event loop.
final class Transaction {
    let query: DNSMessage
    /// The client's bytes with the EDNS payload size rewritten; the ID is set per attempt.
    var upstreamQuery: ByteBuffer
    let flow: FlowTuple
    let mark: UInt32
    let reply: ReplyTarget
    /// The pool's servers, in order, as decided when the query arrived (a reload does not
    /// change a query in flight).
    let upstreams: [Endpoint]
    /// Client queries over TCP go upstream over TCP; UDP ones over UDP.
    var upstreamProtocol: TransportProtocol { flow.proto }
    var plan: UpstreamPlan
    /// Monotonic seconds: when the query's budget ends, and when the current attempt began.
    let deadline: Double
    var attemptStarted: Double = 0
    /// Bumped for every attempt, so events of an abandoned attempt are recognised.
    var attempt = 0
    /// The timeout of the current attempt (nil once it fired or was cancelled).
    var timer: NIOScheduledCallback?
    var timerDeadline = NIODeadline.uptimeNanoseconds(0)
    /// Whose timer this is (set when an attempt starts).
    weak var engine: QueryEngine?
    var udpSocket: UpstreamUDPSocket?
    var sentID: UInt16 = 0
    var tcpChannel: (any Channel)?
    var finished = false
    /// The TCP client connection this query came on, to release its in-flight slot.
    var tcpClient: TCPClientHandler?
    /// Cache and coalescing keys (nil for queries that must not be cached).
    var cacheKey: AnswerCache<CacheView>.Key?
    var inflightKey: InflightKey?
    /// Clients that asked the same thing while this query was in flight.
    var followers: [Follower] = []
    /// The query's pending outcome event (when observed), and the attempt last reported
    /// to the observer (each attempt is reported once).
    var event: PendingEvent?
    var observedAttempt = 0

    init(query: DNSMessage, upstreamQuery: ByteBuffer, flow: FlowTuple, mark: UInt32,
         reply: ReplyTarget, upstreams: [Endpoint], deadline: Double) {
        self.query = query
        self.upstreamQuery = upstreamQuery
        self.flow = flow
        self.mark = mark
        self.reply = reply
        self.upstreams = upstreams
        self.deadline = deadline
        // Servers that timed out get a second round, within the deadline.
        self.plan = UpstreamPlan(upstreamCount: upstreams.count, rounds: 2)
    }
}

extension Transaction: NIOScheduledCallbackHandler {
    func handleScheduledCallback(eventLoop: some EventLoop) {
        engine?.attemptTimedOut(self)
    }
}
