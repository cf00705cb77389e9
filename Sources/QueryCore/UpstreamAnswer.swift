import DNSWire

/// What an upstream's answer to one of our attempts is worth (RFC 5452: the address and
/// port are enforced by the connected socket; here the ID and the question).
public enum UpstreamAnswer: Equatable, Sendable {
    /// Relay it: `length` bytes (trailing junk cut), its rcode, whether it is truncated.
    case usable(length: Int, rcode: UInt8, truncated: Bool)
    /// SERVFAIL or REFUSED (with or without a question), FORMERR or NOTIMP without one:
    /// this server cannot help, try the next.
    case unusable
    /// TC with our ID but no question, as some servers send: the client gets our own TC
    /// answer so it retries over TCP.
    case truncatedWithoutQuestion
    /// Not an answer to what we sent (forged, late or broken): ignored.
    case mismatched

    /// `cut`: the datagram was longer than the receive buffer (only its start is in
    /// `bytes`); an answer of ours that big is relayed as truncated (the client retries
    /// over TCP), never parsed.
    public static func classify(_ bytes: UnsafeRawBufferPointer, expectedID: UInt16,
                                question: DNSQuestion, cut: Bool = false) -> UpstreamAnswer {
        if cut {
            guard let header = try? DNSMessage.header(bytes), header.isResponse, header.id == expectedID else {
                return .mismatched
            }
            return .truncatedWithoutQuestion
        }
        if let parsed = try? DNSMessage.answer(bytes, to: question), parsed.header.isResponse,
           parsed.header.id == expectedID {
            let rcode = parsed.header.rcode
            if rcode == DNSRcode.servFail.rawValue || rcode == DNSRcode.refused.rawValue { return .unusable }
            return .usable(length: parsed.length, rcode: rcode, truncated: parsed.header.isTruncated)
        }
        guard let header = try? DNSMessage.header(bytes), header.isResponse, header.id == expectedID,
              header.qdcount == 0
        else { return .mismatched }
        if header.isTruncated { return .truncatedWithoutQuestion }
        switch header.rcode {
        case DNSRcode.formErr.rawValue, DNSRcode.servFail.rawValue, DNSRcode.notImp.rawValue,
             DNSRcode.refused.rawValue:
            return .unusable
        default:
            return .mismatched
        }
    }
}

/// The per-client edits of a shared answer: its own ID, its own spelling of the name
/// (0x20 case) and its own RD bit (RFC 1035 4.1.1), in place.
public struct ClientRewrite: Equatable, Sendable {
    public var id: UInt16
    public var name: [UInt8]
    public var recursionDesired: Bool

    public init(id: UInt16, name: [UInt8], recursionDesired: Bool) {
        self.id = id; self.name = name; self.recursionDesired = recursionDesired
    }

    public init(for query: DNSMessage) {
        self.init(id: query.header.id, name: query.question.name.wire,
                  recursionDesired: query.header.recursionDesired)
    }

    /// Applies the edits to an answer whose question starts at offset 12.
    public func apply(to bytes: UnsafeMutableRawBufferPointer) {
        guard bytes.count >= DNSHeader.size else { return }
        DNSRewrite.setID(id, in: bytes)
        if recursionDesired { bytes[2] |= 0x01 } else { bytes[2] &= ~0x01 }
        guard name.count + DNSHeader.size <= bytes.count else { return }
        for (i, b) in name.enumerated() { bytes[DNSHeader.size + i] = b }
    }
}
