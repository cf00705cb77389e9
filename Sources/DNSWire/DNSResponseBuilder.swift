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
        var out: [UInt8] = []
        let flags: UInt16 = 0x8000 | (h.flags & 0x7900) | 0x0080 | UInt16(DNSRcode.formErr.rawValue)
        DNSHeader(id: h.id, flags: flags).write(into: &out)
        return out
    }

    /// Appends an OPT record with our payload size, version 0, no flags, no options.
    public static func appendOPT(into out: inout [UInt8]) {
        let size = advertisedPayloadSize
        out.append(contentsOf: [0, 0, 41, UInt8(size >> 8), UInt8(size & 0xFF), 0, 0, 0, 0, 0, 0])
    }
}
