/// A parsed view of a DNS message: header, the single question, and the OPT record.
/// Answer, authority and additional records are validated (bounds, names) but kept as
/// bytes: a forwarder passes them through untouched.
public struct DNSMessage: Sendable {
    public var header: DNSHeader
    public var question: DNSQuestion
    /// Offset just past the question section.
    public var questionEnd: Int
    public var edns: EDNSInfo?
    /// Total length of the records the counts describe; bytes after it are trailing junk.
    public var length: Int

    /// Parses and validates a whole message. Rejects anything whose counts, names or
    /// lengths do not fit the bytes.
    public static func parse(_ bytes: UnsafeRawBufferPointer) throws(DNSWireError) -> DNSMessage {
        var r = WireReader(bytes)
        let header = try r.header()
        guard header.qdcount == 1 else { throw .badQuestionCount }
        let question = try DNSQuestion.read(from: &r)
        let questionEnd = r.offset
        let (edns, length) = try records(&r, header)
        return DNSMessage(header: header, question: question, questionEnd: questionEnd,
                          edns: edns, length: length)
    }

    /// Parses and validates an answer to `question` as `parse` does, without building its
    /// question: its header and length, or nil when it asks something else (another name,
    /// ignoring ASCII case, type or class). One allocation fewer per upstream answer.
    public static func answer(_ bytes: UnsafeRawBufferPointer, to question: DNSQuestion)
        throws(DNSWireError) -> (header: DNSHeader, length: Int)? {
        var r = WireReader(bytes)
        let header = try r.header()
        guard header.qdcount == 1 else { throw .badQuestionCount }
        let wire = question.name.wire
        let start = r.offset
        let same = bytes.count - start >= wire.count && wire.withUnsafeBytes {
            DNSName.equalIgnoringCase($0, UnsafeRawBufferPointer(rebasing: bytes[start..<(start + wire.count)]))
        }
        if same {
            // The bytes are the expected (valid, uncompressed) name: no label walk needed.
            r.offset = start + wire.count
            guard try r.u16() == question.type, try r.u16() == question.qclass else { return nil }
        } else {
            guard try DNSQuestion.read(from: &r) == question else { return nil }
        }
        return (header, try records(&r, header).length)
    }

    /// Walks the answer, authority and additional records after the question: bounds,
    /// names, the one OPT record (in the additional section, owned by the root).
    private static func records(_ r: inout WireReader, _ header: DNSHeader)
        throws(DNSWireError) -> (edns: EDNSInfo?, length: Int) {
        let bytes = r.bytes
        var edns: EDNSInfo? = nil
        let rrCount = Int(header.ancount) + Int(header.nscount) + Int(header.arcount)
        let additionalStart = Int(header.ancount) + Int(header.nscount)
        // Each RR takes at least 11 bytes: reject impossible counts before walking.
        guard rrCount * 11 <= r.remaining else { throw .truncated }
        for i in 0..<rrCount {
            let ownerStart = r.offset
            try DNSName.skip(from: &r)
            let ownerIsRoot = r.offset == ownerStart + 1 && bytes[ownerStart] == 0
            let type = try r.u16()
            let classOffset = r.offset
            let rrclass = try r.u16()
            let ttl = try r.u32()
            let rdlength = try r.u16()
            try r.skip(Int(rdlength))
            if type == DNSType.opt {
                guard i >= additionalStart, edns == nil, ownerIsRoot else { throw .badOPT }
                edns = EDNSInfo(payloadSizeOffset: classOffset, payloadSize: rrclass,
                                version: UInt8((ttl >> 16) & 0xFF),
                                dnssecOK: ttl & 0x8000 != 0, optionsLength: Int(rdlength))
            }
        }
        return (edns, r.offset)
    }

    public static func parse(_ bytes: [UInt8]) throws(DNSWireError) -> DNSMessage {
        let result = bytes.withUnsafeBytes { p in
            Result { () throws(DNSWireError) -> DNSMessage in try parse(p) }
        }
        return try result.get()
    }

    /// Reads only the header, for messages too broken to parse but long enough to answer.
    public static func header(_ bytes: UnsafeRawBufferPointer) throws(DNSWireError) -> DNSHeader {
        var r = WireReader(bytes)
        return try r.header()
    }
}
