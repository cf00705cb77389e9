/// Builds the small responses a forwarder makes itself (errors, refusals).
public enum DNSResponseBuilder {
    /// The UDP payload size markdns advertises (DNS flag day 2020).
    public static let advertisedPayloadSize: UInt16 = 1232

    /// A response with only header and question: QR set, opcode and RD copied from the
    /// query, RA set, the given rcode. When the query carried EDNS an OPT record is
    /// added (RFC 6891 section 7).
    public static func errorResponse(to query: DNSMessage, rcode: DNSRcode) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(query.questionEnd + 11)
        let flags: UInt16 = 0x8000 | (query.header.flags & 0x7900) | 0x0080 | UInt16(rcode.rawValue)
        let header = DNSHeader(id: query.header.id, flags: flags, qdcount: 1,
                               arcount: query.edns == nil ? 0 : 1)
        header.write(into: &out)
        query.question.write(into: &out)
        if query.edns != nil { appendOPT(into: &out) }
        return out
    }

    /// BADVERS (RFC 6891 6.1.3) to an EDNS query of a version we do not implement: rcode 16,
    /// whose upper bits go in the OPT record (extended rcode 1) and lower bits (0) in the
    /// header, and the OPT record says the version we do speak (0).
    public static func badVersion(to query: DNSMessage) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(query.questionEnd + 11)
        let flags: UInt16 = 0x8000 | (query.header.flags & 0x7900) | 0x0080
        DNSHeader(id: query.header.id, flags: flags, qdcount: 1, arcount: 1).write(into: &out)
        query.question.write(into: &out)
        appendOPT(into: &out, extendedRcode: 1)
        return out
    }

    /// FORMERR for a message whose header parsed but whose body did not: header only.
    public static func formErr(toHeader h: DNSHeader) -> [UInt8] {
        headerOnly(toHeader: h, rcode: .formErr)
    }

    /// A header-only response (no question) with the given rcode.
    public static func headerOnly(toHeader h: DNSHeader, rcode: DNSRcode) -> [UInt8] {
        var out: [UInt8] = []
        let flags: UInt16 = 0x8000 | (h.flags & 0x7900) | 0x0080 | UInt16(rcode.rawValue)
        DNSHeader(id: h.id, flags: flags).write(into: &out)
        return out
    }

    /// Appends an OPT record with our payload size, version 0, no flags, no options, and
    /// the upper 8 bits of a 12-bit rcode (`extendedRcode`).
    public static func appendOPT(into out: inout [UInt8], extendedRcode: UInt8 = 0) {
        out.append(0)                       // owner: the root
        out.appendBE(DNSType.opt)
        out.appendBE(advertisedPayloadSize)  // CLASS: UDP payload size
        out.appendBE(UInt32(extendedRcode) << 24)  // extended rcode, version 0, flags
        out.appendBE(UInt16(0))              // RDLENGTH: no options
    }
}

extension DNSResponseBuilder {
    /// A locally made answer (walled garden, block lists): header with QR, AA and RA set,
    /// the question echoed, one A or AAAA record per address (owner compressed to the
    /// question name at offset 12), and OPT when the query had EDNS. With no addresses and
    /// `.noError` it is a NODATA answer; with `.nxDomain` an NXDOMAIN.
    /// Addresses must be 4 bytes (A) or 16 bytes (AAAA); each is typed by its length.
    public static func localAnswer(to query: DNSMessage, rcode: DNSRcode = .noError,
                                   addresses: [[UInt8]] = [], ttl: UInt32) -> [UInt8] {
        let usable = { (a: [UInt8]) in a.count == 4 || a.count == 16 }
        var records = 0
        for address in addresses where usable(address) { records += 1 }
        var out = localAnswerStart(to: query, rcode: rcode, records: records, size: records * 28)
        for address in addresses where usable(address) {
            appendRecord(owner: nil, type: address.count == 4 ? DNSType.a : DNSType.aaaa, ttl: ttl, rdata: address, into: &out)
        }
        if query.edns != nil { appendOPT(into: &out) }
        return out
    }

    /// A record of a local answer: `owner` nil means the question's name (compressed to
    /// offset 12), else an uncompressed wire name.
    public struct LocalRR: Sendable {
        public var owner: [UInt8]?
        public var type: UInt16
        public var rdata: [UInt8]
        public init(owner: [UInt8]?, type: UInt16, rdata: [UInt8]) {
            self.owner = owner; self.type = type; self.rdata = rdata
        }
    }

    /// The general form: any records, in order. Records whose RDATA exceeds 65535 bytes
    /// are left out.
    public static func localAnswer(to query: DNSMessage, rcode: DNSRcode = .noError,
                                   records: [LocalRR], ttl: UInt32) -> [UInt8] {
        let records = records.filter { $0.rdata.count <= 0xFFFF }
        var out = localAnswerStart(to: query, rcode: rcode, records: records.count,
                                   size: records.reduce(0) { $0 + 12 + ($1.owner?.count ?? 0) + $1.rdata.count })
        for r in records { appendRecord(owner: r.owner, type: r.type, ttl: ttl, rdata: r.rdata, into: &out) }
        if query.edns != nil { appendOPT(into: &out) }
        return out
    }

    /// Header (QR, AA, RA, the rcode; `records` answers) and the question.
    private static func localAnswerStart(to query: DNSMessage, rcode: DNSRcode, records: Int, size: Int) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(query.questionEnd + size + 11)
        let flags: UInt16 = 0x8000 | (query.header.flags & 0x7900) | 0x0400 | 0x0080 | UInt16(rcode.rawValue)
        DNSHeader(id: query.header.id, flags: flags, qdcount: 1, ancount: UInt16(records),
                  arcount: query.edns == nil ? 0 : 1).write(into: &out)
        query.question.write(into: &out)
        return out
    }

    private static func appendRecord(owner: [UInt8]?, type: UInt16, ttl: UInt32, rdata: [UInt8], into out: inout [UInt8]) {
        if let owner { out.append(contentsOf: owner) } else { out.appendBE(UInt16(0xC00C)) }  // pointer to the question
        out.appendBE(type)
        out.appendBE(UInt16(1))  // class IN
        out.appendBE(ttl)
        out.appendBE(UInt16(rdata.count))
        out.append(contentsOf: rdata)
    }
}
