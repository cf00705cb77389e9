import DNSWire
import Testing

@Suite("DNSResponseBuilder.localAnswer")
struct DNSLocalAnswerTests {
    /// A query for `name`/`type` with ID 0xBEEF and RD, optionally with EDNS.
    func query(_ name: String, type: UInt16, edns: Bool = false) throws -> DNSMessage {
        var b: [UInt8] = []
        DNSHeader(id: 0xBEEF, flags: 0x0100, qdcount: 1, arcount: edns ? 1 : 0).write(into: &b)
        DNSQuestion(name: try #require(DNSName(name)), type: type).write(into: &b)
        if edns { DNSResponseBuilder.appendOPT(into: &b) }
        return try DNSMessage.parse(b)
    }

    @Test func aRecordsParseBackWithTTLAndAddresses() throws {
        let q = try query("Portal.Example", type: DNSType.a)
        let bytes = DNSResponseBuilder.localAnswer(to: q, addresses: [[192, 0, 2, 1], [192, 0, 2, 2]], ttl: 30)
        let m = try DNSMessage.parse(bytes)
        #expect(m.header.id == 0xBEEF)
        #expect(m.header.isResponse && m.header.recursionDesired)
        #expect(m.header.flags & 0x0400 != 0, "AA")
        #expect(m.header.rcode == 0 && m.header.ancount == 2)
        #expect(m.question == q.question)
        #expect(m.length == bytes.count)
        // First record: pointer to the question, type A, class IN, TTL 30, rdata 192.0.2.1.
        let rr = Array(bytes[q.questionEnd..<(q.questionEnd + 16)])
        #expect(rr == [0xC0, 0x0C, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4, 192, 0, 2, 1])
    }

    @Test func aaaaRecordAndEDNS() throws {
        let q = try query("x.test", type: DNSType.aaaa, edns: true)
        let v6: [UInt8] = [0xfd, 0] + Array(repeating: 0, count: 13) + [1]
        let bytes = DNSResponseBuilder.localAnswer(to: q, addresses: [v6], ttl: 5)
        let m = try DNSMessage.parse(bytes)
        #expect(m.header.ancount == 1 && m.header.arcount == 1)
        #expect(m.edns?.payloadSize == DNSResponseBuilder.advertisedPayloadSize)
        #expect(Array(bytes[(q.questionEnd + 12)..<(q.questionEnd + 28)]) == v6)
    }

    @Test func nodataAndNxdomain() throws {
        let q = try query("blocked.test", type: DNSType.a)
        let nodata = try DNSMessage.parse(DNSResponseBuilder.localAnswer(to: q, ttl: 30))
        #expect(nodata.header.rcode == 0 && nodata.header.ancount == 0)
        let nx = try DNSMessage.parse(DNSResponseBuilder.localAnswer(to: q, rcode: .nxDomain, ttl: 30))
        #expect(nx.header.rcode == 3 && nx.header.ancount == 0)
    }

    @Test func addressesOfOtherLengthsAreIgnored() throws {
        let q = try query("x.test", type: DNSType.a)
        let m = try DNSMessage.parse(DNSResponseBuilder.localAnswer(to: q, addresses: [[1, 2, 3]], ttl: 1))
        #expect(m.header.ancount == 0)
    }
}
