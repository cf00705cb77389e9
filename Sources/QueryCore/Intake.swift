import DNSWire

/// What a client's datagram or TCP frame is, before any policy: a query to handle, an
/// answer markdns makes at once, or nothing at all. Pure: bytes in, a verdict out, with
/// the counter it belongs to already counted.
public enum Intake: Sendable {
    /// A well-formed standard query of EDNS version 0 (or without EDNS).
    case query(DNSMessage)
    /// Answer this at once (FORMERR, NOTIMP, BADVERS); never forwarded.
    case reply([UInt8])
    /// Not even a header, or a response sent as a query: never answered (no reflection).
    case drop

    /// Classifies `bytes` (one whole DNS message) and counts the verdict in `counters`.
    /// `cut`: the datagram was longer than the receive buffer, so only its start is here:
    /// never parsed further than the header (FORMERR when it is a query).
    public static func classify(_ bytes: UnsafeRawBufferPointer, cut: Bool = false,
                                counters: inout Counters) -> Intake {
        if cut { return malformed(bytes, counters: &counters) }
        let query: DNSMessage
        do {
            query = try DNSMessage.parse(bytes)
        } catch {
            return malformed(bytes, counters: &counters)
        }
        if query.header.isResponse {
            counters.droppedMalformed += 1
            return .drop
        }
        if query.header.opcode != DNSOpcode.query {
            counters.notimp += 1
            return .reply(DNSResponseBuilder.errorResponse(to: query, rcode: .notImp))
        }
        if let edns = query.edns, edns.version != 0 {
            // RFC 6891 6.1.3: we speak version 0 only. Answered here, so a version-1 query
            // is never cached, coalesced or forwarded.
            counters.badVersion += 1
            return .reply(DNSResponseBuilder.badVersion(to: query))
        }
        return .query(query)
    }

    /// A message whose body does not parse: FORMERR (NOTIMP for other opcodes) when the
    /// header is there and it is a query, else dropped.
    private static func malformed(_ bytes: UnsafeRawBufferPointer, counters: inout Counters) -> Intake {
        guard let header = try? DNSMessage.header(bytes), !header.isResponse else {
            counters.droppedMalformed += 1
            return .drop
        }
        if header.opcode != DNSOpcode.query {
            counters.notimp += 1
            return .reply(DNSResponseBuilder.headerOnly(toHeader: header, rcode: .notImp))
        }
        counters.formerr += 1
        return .reply(DNSResponseBuilder.formErr(toHeader: header))
    }
}
