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
        out.append(0)                       // owner: the root
        out.appendBE(DNSType.opt)
        out.appendBE(advertisedPayloadSize)  // CLASS: UDP payload size
        out.appendBE(UInt32(0))              // extended rcode, version, flags
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
        var out: [UInt8] = []
        out.reserveCapacity(query.questionEnd + records * 28 + 11)
        let flags: UInt16 = 0x8000 | (query.header.flags & 0x7900) | 0x0400 | 0x0080 | UInt16(rcode.rawValue)
        DNSHeader(id: query.header.id, flags: flags, qdcount: 1, ancount: UInt16(records),
                  arcount: query.edns == nil ? 0 : 1).write(into: &out)
        query.question.write(into: &out)
        for address in addresses where usable(address) {
            out.appendBE(UInt16(0xC00C))  // owner: pointer to the question name
            out.appendBE(address.count == 4 ? DNSType.a : DNSType.aaaa)
            out.appendBE(UInt16(1))       // class IN
            out.appendBE(ttl)
            out.appendBE(UInt16(address.count))
            out.append(contentsOf: address)
        }
        if query.edns != nil { appendOPT(into: &out) }
        return out
    }
}
