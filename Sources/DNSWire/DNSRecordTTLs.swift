/// Where the TTLs of a message's records are, so a cache can count them down in place,
/// and what they allow: the smallest TTL of the answer and authority records, and the
/// negative-caching TTL of an SOA in the authority section (RFC 2308: min(SOA TTL,
/// SOA MINIMUM)). OPT pseudo-records are skipped.
///
/// A message whose owner or SOA names are read, through a compression pointer, from bytes
/// of a TTL field is refused (`badPointer`): counting TTLs down would change those names
/// (found by fuzzing the cache). Names inside other RDATA are not walked.
public struct DNSRecordTTLs: Equatable, Sendable {
    /// Byte offsets of every TTL field outside OPT records.
    public var offsets: [Int]
    /// Smallest TTL over answer and authority records; nil when there are none.
    public var minimum: UInt32?
    /// RFC 2308 negative TTL from the first SOA in the authority section.
    public var negative: UInt32?

    public static func read(_ bytes: UnsafeRawBufferPointer, message: DNSMessage) throws(DNSWireError) -> DNSRecordTTLs {
        var r = WireReader(bytes, offset: message.questionEnd)
        var out = DNSRecordTTLs(offsets: [], minimum: nil, negative: nil)
        let h = message.header
        let counted = Int(h.ancount) + Int(h.nscount)
        out.offsets.reserveCapacity(counted + Int(h.arcount))
        // Pointers only go backwards: only TTL fields already seen can be read again.
        var readThroughTTL = false
        let check: (Range<Int>) -> Void = { range in readThroughTTL = readThroughTTL || out.overlapsTTL(range) }
        for i in 0..<(counted + Int(h.arcount)) {
            try DNSName.skip(from: &r, visitingPointedTo: check)
            guard !readThroughTTL else { throw .badPointer }
            let type = try r.u16()
            _ = try r.u16()
            let ttlOffset = r.offset
            let ttl = try r.u32()
            let rdlength = Int(try r.u16())
            let rdataStart = r.offset
            try r.skip(rdlength)
            guard type != DNSType.opt else { continue }
            out.offsets.append(ttlOffset)
            guard i < counted else { continue }
            out.minimum = min(out.minimum ?? ttl, ttl)
            if type == DNSType.soa, i >= Int(h.ancount), out.negative == nil {
                // SOA RDATA: MNAME, RNAME, then SERIAL REFRESH RETRY EXPIRE MINIMUM.
                var s = WireReader(bytes, offset: rdataStart)
                try DNSName.skip(from: &s, visitingPointedTo: check)
                try DNSName.skip(from: &s, visitingPointedTo: check)
                guard !readThroughTTL else { throw .badPointer }
                try s.skip(16)
                let minimumField = try s.u32()
                guard s.offset <= rdataStart + rdlength else { throw .truncated }
                out.negative = min(ttl, minimumField)
            }
        }
        return out
    }

    /// True when `range` shares a byte with a TTL field found so far (offsets ascend).
    func overlapsTTL(_ range: Range<Int>) -> Bool {
        var lo = 0, hi = offsets.count
        while lo < hi {  // first TTL field ending after range.lowerBound
            let mid = (lo + hi) / 2
            if offsets[mid] + 4 <= range.lowerBound { lo = mid + 1 } else { hi = mid }
        }
        return lo < offsets.count && offsets[lo] < range.upperBound
    }
}
