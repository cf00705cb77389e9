import Testing
import DNSWire

@Suite("DNSHeader")
struct DNSHeaderTests {
    @Test func writeIsNetworkByteOrder() {
        let h = DNSHeader(id: 0x0102, flags: 0x0304, qdcount: 0x0506, ancount: 0x0708,
                          nscount: 0x090A, arcount: 0x0B0C)
        var out: [UInt8] = []
        h.write(into: &out)
        #expect(out == Array(1...12))
        #expect(DNSHeader.size == 12)
    }

    @Test func defaultCountsAreZero() {
        let h = DNSHeader(id: 7, flags: 0)
        #expect(h.qdcount == 0 && h.ancount == 0 && h.nscount == 0 && h.arcount == 0)
    }

    @Test func flagAccessors() {
        let plain = DNSHeader(id: 0, flags: 0)
        #expect(!plain.isResponse && !plain.isTruncated && !plain.recursionDesired)
        #expect(plain.opcode == 0 && plain.rcode == 0)

        let all = DNSHeader(id: 0, flags: 0xFFFF)
        #expect(all.isResponse && all.isTruncated && all.recursionDesired)
        #expect(all.opcode == 15 && all.rcode == 15)

        #expect(DNSHeader(id: 0, flags: 0x8000).isResponse)
        #expect(!DNSHeader(id: 0, flags: 0x7FFF).isResponse)
        #expect(DNSHeader(id: 0, flags: 0x0200).isTruncated)
        #expect(!DNSHeader(id: 0, flags: 0xFDFF).isTruncated)
        #expect(DNSHeader(id: 0, flags: 0x0100).recursionDesired)
        #expect(!DNSHeader(id: 0, flags: 0xFEFF).recursionDesired)
        #expect(DNSHeader(id: 0, flags: 0x2800).opcode == 5)
        #expect(DNSHeader(id: 0, flags: 0x87FF).opcode == 0)
        #expect(DNSHeader(id: 0, flags: 0x8183).rcode == 3)
    }

    @Test func headerOnlyParse() throws {
        let bytes = headerBytes(id: 0xCAFE, flags: 0x8580, qd: 0, an: 3, ns: 4, ar: 5)
            + [0xFF, 0xFF]  // junk after the header is not looked at
        let h = try bytes.withUnsafeBytes { p throws(DNSWireError) in try DNSMessage.header(p) }
        #expect(h == DNSHeader(id: 0xCAFE, flags: 0x8580, qdcount: 0, ancount: 3,
                               nscount: 4, arcount: 5))
        var round: [UInt8] = []
        h.write(into: &round)
        #expect(round == Array(bytes.prefix(12)))
    }

    @Test func headerOnlyParseOfShortInput() {
        for n in 0..<12 {
            let bytes = Array(headerBytes().prefix(n))
            let result = bytes.withUnsafeBytes { p in
                Result { () throws(DNSWireError) in try DNSMessage.header(p) }
            }
            #expect(throws: DNSWireError.truncatedHeader) { try result.get() }
        }
    }

    @Test func rcodeRawValues() {
        #expect(DNSRcode.noError.rawValue == 0)
        #expect(DNSRcode.formErr.rawValue == 1)
        #expect(DNSRcode.servFail.rawValue == 2)
        #expect(DNSRcode.nxDomain.rawValue == 3)
        #expect(DNSRcode.notImp.rawValue == 4)
        #expect(DNSRcode.refused.rawValue == 5)
        #expect(DNSType.opt == 41 && DNSType.a == 1 && DNSType.aaaa == 28)
    }
}
