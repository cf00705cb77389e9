import MarkCore

/// One query's outcome, emitted once when the query gets its final answer (relayed,
/// cached, answered by the policy, refused or failed). Pure value: metrics, the top-N of
/// clients and the query log are all fed from it.
public struct QueryEvent: Sendable, Equatable {
    /// Wall-clock time of the answer, seconds since the Unix epoch.
    public var time: Double
    public var client: IPAddress
    public var proto: TransportProtocol
    /// The client flow's connmark as found in conntrack; nil when none was found.
    public var connmark: UInt32?
    /// The policy's name for the mark, `other` or `none` (a bounded set).
    public var markName: String
    /// The question name as dotted text ("" when the query could not be parsed).
    public var qname: String
    public var qtype: UInt16
    public var rcode: UInt8
    /// The upstream that gave the answer; nil for answers made here.
    public var upstream: Endpoint?
    /// The upstream as written when it is not plain DNS (`tls://192.0.2.1:853#dns.example`);
    /// the query log names it so.
    public var upstreamName: String?
    /// From the query's arrival to its answer.
    public var latency: Double
    public var cacheHit: Bool
    /// Why the policy answered the query itself (walled-garden, blocked ...), if it did.
    public var localReason: String?
    /// The query waited on an upstream (its own or an identical one in flight): a cache miss.
    public var forwarded = false

    public init(time: Double, client: IPAddress, proto: TransportProtocol, connmark: UInt32?, markName: String,
                qname: String, qtype: UInt16, rcode: UInt8, upstream: Endpoint? = nil, latency: Double,
                cacheHit: Bool = false, localReason: String? = nil) {
        self.time = time; self.client = client; self.proto = proto; self.connmark = connmark
        self.markName = markName; self.qname = qname; self.qtype = qtype; self.rcode = rcode
        self.upstream = upstream; self.latency = latency; self.cacheHit = cacheHit; self.localReason = localReason
    }

    /// The rcode as a metrics label (bounded: known names, else the number).
    public var rcodeName: String { Self.rcodeName(rcode) }

    public static func rcodeName(_ rcode: UInt8) -> String {
        switch rcode {
        case 0: "NOERROR"
        case 1: "FORMERR"
        case 2: "SERVFAIL"
        case 3: "NXDOMAIN"
        case 4: "NOTIMP"
        case 5: "REFUSED"
        default: "RCODE\(rcode & 0x0f)"
        }
    }
}
