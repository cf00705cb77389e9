@_exported import TestSupport
import DNSCache
import DNSWire

// Hand-built DNS answers for the cache tests. Header and question go through
// `DNSHeader.write` / `DNSQuestion.write`, OPT through `DNSResponseBuilder.appendOPT`;
// resource records are encoded here byte by byte so every TTL offset is known.

typealias Cache = AnswerCache<String>

/// Response flags: QR, RD, RA plus the rcode (and TC where named).
enum Flags {
    static let noError: UInt16 = 0x8180
    static let formErr: UInt16 = 0x8181
    static let servFail: UInt16 = 0x8182
    static let nxDomain: UInt16 = 0x8183
    static let notImp: UInt16 = 0x8184
    static let refused: UInt16 = 0x8185
    static let truncated: UInt16 = 0x8380  // NOERROR with TC
    static let query: UInt16 = 0x0100      // QR clear
}

func be16(_ v: UInt16) -> [UInt8] { [UInt8(v >> 8), UInt8(v & 0xFF)] }
func be32(_ v: UInt32) -> [UInt8] { be16(UInt16(v >> 16)) + be16(UInt16(v & 0xFFFF)) }

func readBE32(_ b: [UInt8], at o: Int) -> UInt32 {
    UInt32(b[o]) << 24 | UInt32(b[o + 1]) << 16 | UInt32(b[o + 2]) << 8 | UInt32(b[o + 3])
}

func writeBE32(_ v: UInt32, into b: inout [UInt8], at o: Int) {
    b.replaceSubrange(o..<(o + 4), with: be32(v))
}

/// Uncompressed wire form of a dotted name.
func wire(_ name: String) -> [UInt8] {
    guard let n = DNSName(name) else { preconditionFailure("bad test name \(name)") }
    return n.wire
}

/// Compression pointer to `offset`.
func ptr(_ offset: Int) -> [UInt8] { [0xC0 | UInt8(offset >> 8), UInt8(offset & 0xFF)] }

/// Pointer to the question name (offset 12).
let toQuestion: [UInt8] = [0xC0, 0x0C]

/// A resource record to encode.
struct RR {
    var owner: [UInt8] = toQuestion
    var type: UInt16
    var rrclass: UInt16 = 1
    var ttl: UInt32
    var rdata: [UInt8]

    static func a(_ ttl: UInt32, _ address: [UInt8] = [192, 0, 2, 1], owner: [UInt8] = toQuestion) -> RR {
        RR(owner: owner, type: DNSType.a, ttl: ttl, rdata: address)
    }

    static func ns(_ ttl: UInt32, owner: [UInt8] = toQuestion, target: String = "ns1.example.com") -> RR {
        RR(owner: owner, type: DNSType.ns, ttl: ttl, rdata: wire(target))
    }

    /// SOA with real MNAME and RNAME. `cut` drops that many bytes from the end of the
    /// RDATA (rdlength shrinks with it) to make a truncated SOA.
    static func soa(_ ttl: UInt32, minimum: UInt32, owner: [UInt8] = wire("example.com"),
                    mname: [UInt8] = wire("ns1.example.com"),
                    rname: [UInt8] = wire("hostmaster.example.com"),
                    serial: UInt32 = 2024_01_01_01, cut: Int = 0) -> RR {
        var rdata = mname + rname
        rdata += be32(serial) + be32(7200) + be32(900) + be32(1_209_600) + be32(minimum)
        rdata.removeLast(cut)
        return RR(owner: owner, type: DNSType.soa, ttl: ttl, rdata: rdata)
    }
}

/// A built answer and where its TTL fields are.
struct Answer {
    var bytes: [UInt8]
    /// Offsets of the TTL fields of every non-OPT record, in message order.
    var ttlOffsets: [Int]
    /// Offsets of the answer and authority TTL fields only.
    var countedTTLOffsets: [Int]
    /// Start of the OPT record, if any.
    var optStart: Int?
    var questionEnd: Int
}

/// Builds a response. The OPT record (via `DNSResponseBuilder.appendOPT`) goes last in
/// the additional section, or first with `optFirst`; `dnssecOK` sets its DO bit.
func makeAnswer(id: UInt16 = 0xABCD, flags: UInt16 = Flags.noError, name: String = "example.com",
                type: UInt16 = DNSType.a, qclass: UInt16 = 1,
                answers: [RR] = [], authority: [RR] = [], additional: [RR] = [],
                opt: Bool = false, optFirst: Bool = false, dnssecOK: Bool = false) -> Answer {
    var b: [UInt8] = []
    DNSHeader(id: id, flags: flags, qdcount: 1, ancount: UInt16(answers.count),
              nscount: UInt16(authority.count),
              arcount: UInt16(additional.count + (opt ? 1 : 0))).write(into: &b)
    guard let qname = DNSName(name) else { preconditionFailure("bad test name \(name)") }
    DNSQuestion(name: qname, type: type, qclass: qclass).write(into: &b)
    let questionEnd = b.count
    var offsets: [Int] = []
    var counted: [Int] = []
    var optStart: Int? = nil

    func append(_ rr: RR, counted isCounted: Bool) {
        b += rr.owner + be16(rr.type) + be16(rr.rrclass)
        offsets.append(b.count)
        if isCounted { counted.append(b.count) }
        b += be32(rr.ttl) + be16(UInt16(rr.rdata.count)) + rr.rdata
    }
    func appendOPT() {
        optStart = b.count
        DNSResponseBuilder.appendOPT(into: &b)
        if dnssecOK { b[b.count - 4] |= 0x80 }  // TTL byte 3: DO | Z
    }

    for rr in answers { append(rr, counted: true) }
    for rr in authority { append(rr, counted: true) }
    if opt && optFirst { appendOPT() }
    for rr in additional { append(rr, counted: false) }
    if opt && !optFirst { appendOPT() }
    return Answer(bytes: b, ttlOffsets: offsets, countedTTLOffsets: counted, optStart: optStart,
                  questionEnd: questionEnd)
}

/// A cache key for `name`/`type` in `view`.
func key(_ name: String = "example.com", type: UInt16 = DNSType.a, qclass: UInt16 = 1,
         view: String = "alice", edns: Bool = false, dnssecOK: Bool = false) -> Cache.Key {
    guard let n = DNSName(name) else { preconditionFailure("bad test name \(name)") }
    return Cache.Key(view: view, question: DNSQuestion(name: n, type: type, qclass: qclass),
                     edns: edns, dnssecOK: dnssecOK)
}

/// Runs `DNSRecordTTLs.read` on a whole message.
func readTTLs(_ bytes: [UInt8]) throws -> DNSRecordTTLs {
    let message = try DNSMessage.parse(bytes)
    return try bytes.withUnsafeBytes { raw in try DNSRecordTTLs.read(raw, message: message) }
}

/// The rdata of the first answer record (A records with owner pointer only).
func firstAddress(_ bytes: [UInt8], questionEnd: Int) -> [UInt8] {
    Array(bytes[(questionEnd + 12)..<(questionEnd + 16)])
}
