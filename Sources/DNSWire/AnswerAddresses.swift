/// One address an answer gives for its question: 4 bytes (A) or 16 (AAAA), with the TTL
/// of its record.
public struct AnswerAddress: Sendable, Hashable {
    public var bytes: [UInt8]
    public var ttl: UInt32
    public init(bytes: [UInt8], ttl: UInt32) { self.bytes = bytes; self.ttl = ttl }
    public var isIPv6: Bool { bytes.count == 16 }
}

/// The addresses a response gives for its question: the A and AAAA records (class IN) of
/// the answer section whose owner is the question name or a name the CNAME chain from it
/// leads to, in the order they appear; records of other owners (on no chain from the
/// question) are ignored. A chain is followed for at most `maxChain` names and never in a
/// loop. A message that is not a well-formed NOERROR response with one question gives
/// nothing: untrusted bytes never crash and never half-fill.
public enum AnswerAddresses {
    public static let maxChain = 16
    static let cname: UInt16 = 5
    static let classIN: UInt16 = 1

    public static func extract(_ bytes: UnsafeRawBufferPointer) -> [AnswerAddress] {
        (try? read(bytes)) ?? []
    }

    public static func extract(_ bytes: [UInt8]) -> [AnswerAddress] {
        bytes.withUnsafeBytes { extract($0) }
    }

    private struct Record {
        var owner: [UInt8]
        var type: UInt16
        var ttl: UInt32
        var data: [UInt8]   // the address, or the CNAME target (lower case)
    }

    private static func read(_ bytes: UnsafeRawBufferPointer) throws(DNSWireError) -> [AnswerAddress] {
        var r = WireReader(bytes)
        let header = try r.header()
        guard header.isResponse, header.rcode == 0, header.qdcount == 1, header.ancount > 0 else { return [] }
        let qname = try DNSName.read(from: &r).wire.map(asciiLower)
        try r.skip(4)
        guard Int(header.ancount) * 11 <= r.remaining else { throw .truncated }
        var records: [Record] = []
        for _ in 0..<header.ancount {
            let owner = try DNSName.read(from: &r).wire
            let type = try r.u16()
            let rrclass = try r.u16()
            let ttl = try r.u32()
            let rdlength = Int(try r.u16())
            let start = r.offset
            guard r.remaining >= rdlength else { throw .truncated }
            defer { r.offset = start + rdlength }
            guard rrclass == classIN else { continue }
            switch type {
            case DNSType.a where rdlength == 4, DNSType.aaaa where rdlength == 16:
                records.append(Record(owner: owner.map(asciiLower), type: type, ttl: ttl,
                                      data: Array(bytes[start..<(start + rdlength)])))
            case cname:
                var sub = WireReader(UnsafeRawBufferPointer(rebasing: bytes[0..<(start + rdlength)]), offset: start)
                let target = try DNSName.read(from: &sub).wire
                guard sub.offset == start + rdlength else { throw .truncated }
                records.append(Record(owner: owner.map(asciiLower), type: type, ttl: ttl, data: target.map(asciiLower)))
            default:
                continue
            }
        }
        var chain = [qname]
        while chain.count < maxChain,
              let next = records.first(where: { $0.type == cname && $0.owner == chain.last! })?.data,
              !chain.contains(next) {
            chain.append(next)
        }
        var out: [AnswerAddress] = []
        for rec in records where rec.type != cname && chain.contains(rec.owner) {
            if let i = out.firstIndex(where: { $0.bytes == rec.data }) {
                out[i].ttl = max(out[i].ttl, rec.ttl)
            } else {
                out.append(AnswerAddress(bytes: rec.data, ttl: rec.ttl))
            }
        }
        return out
    }
}
