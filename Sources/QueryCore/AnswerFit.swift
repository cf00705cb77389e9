import DNSWire
import MarkCore

/// Answers that go to UDP clients must fit the client's size (RFC 1035 4.2.1, RFC 6891 7):
/// 512 bytes, or its EDNS payload size as clamped upstream. An answer over TCP, TLS or
/// HTTPS can be larger; then the client gets TC (its question, the answer's rcode, no
/// records) and retries over TCP.
public enum AnswerFit {
    /// The largest answer `query`'s client takes over `proto`.
    public static func limit(for query: DNSMessage, proto: TransportProtocol) -> Int {
        guard proto == .udp else { return 65535 }
        return Int(query.edns.map { DNSRewrite.upstreamPayloadSize(forClient: $0.payloadSize) } ?? 512)
    }

    /// The truncated answer to `query` standing in for one of `length` bytes with `rcode`,
    /// or nil when that answer fits.
    public static func truncated(for query: DNSMessage, proto: TransportProtocol, length: Int, rcode: UInt8) -> [UInt8]? {
        guard length > limit(for: query, proto: proto) else { return nil }
        var tc = DNSResponseBuilder.errorResponse(to: query, rcode: DNSRcode(rawValue: rcode) ?? .noError)
        tc[2] |= 0x02
        return tc
    }
}
