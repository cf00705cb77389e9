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

    /// Appends an OPT record with our payload size, version 0, no flags, no options.
    public static func appendOPT(into out: inout [UInt8]) {
        let size = advertisedPayloadSize
        out.append(contentsOf: [0, 0, 41, UInt8(size >> 8), UInt8(size & 0xFF), 0, 0, 0, 0, 0, 0])
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
        let records = addresses.filter { $0.count == 4 || $0.count == 16 }
            .map { LocalRR(owner: nil, type: $0.count == 4 ? DNSType.a : DNSType.aaaa, rdata: $0) }
        return localAnswer(to: query, rcode: rcode, records: records, ttl: ttl)
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
        var out: [UInt8] = []
        out.reserveCapacity(query.questionEnd + records.reduce(0) { $0 + 12 + $1.rdata.count } + 11)
        let flags: UInt16 = 0x8000 | (query.header.flags & 0x7900) | 0x0400 | 0x0080 | UInt16(rcode.rawValue)
        DNSHeader(id: query.header.id, flags: flags, qdcount: 1, ancount: UInt16(records.count),
                  arcount: query.edns == nil ? 0 : 1).write(into: &out)
        query.question.write(into: &out)
        for r in records {
            if let owner = r.owner { out += owner } else { out += [0xC0, 0x0C] }
            out += [UInt8(r.type >> 8), UInt8(r.type & 0xFF), 0, 1]
            out += [UInt8(ttl >> 24), UInt8((ttl >> 16) & 0xFF), UInt8((ttl >> 8) & 0xFF), UInt8(ttl & 0xFF)]
            out += [UInt8(r.rdata.count >> 8), UInt8(r.rdata.count & 0xFF)]
            out += r.rdata
        }
        if query.edns != nil { appendOPT(into: &out) }
        return out
    }
}
