import Testing
import DNSWire

@Suite("DNSResponseBuilder")
struct DNSResponseBuilderTests {
    static let expectedOPT: [UInt8] = [0, 0, 41, 0x04, 0xD0, 0, 0, 0, 0, 0, 0]

    static let allRcodes: [DNSRcode] = [.noError, .formErr, .servFail, .nxDomain, .notImp, .refused]

    @Test(arguments: allRcodes)
    func errorResponseWithoutEDNS(_ rcode: DNSRcode) throws {
        let qbytes = makeQuery(id: 0x4242, flags: 0x0100, labels: ["Mixed", "Case", "ORG"], type: 28)
        let query = try DNSMessage.parse(qbytes)
        let out = DNSResponseBuilder.errorResponse(to: query, rcode: rcode)

        #expect(out.count == query.questionEnd)
        // Header: same ID, QR | RD | RA | rcode, one question and nothing else.
        #expect(Array(out[0..<12]) == be16(0x4242) + be16(0x8000 | 0x0100 | 0x0080 | UInt16(rcode.rawValue))
                + be16(1) + be16(0) + be16(0) + be16(0))
        // Question echoed byte for byte (case preserved).
        #expect(Array(out[12...]) == Array(qbytes[12..<query.questionEnd]))

        let back = try DNSMessage.parse(out)
        #expect(back.header.id == 0x4242)
        #expect(back.header.isResponse)
        #expect(back.header.recursionDesired)
        #expect(back.header.rcode == rcode.rawValue)
        #expect(back.header.flags & 0x0080 != 0)  // RA
        #expect(back.question == query.question)
        #expect(back.question.name.wire == query.question.name.wire)
        #expect(back.edns == nil)
        #expect(back.length == out.count)
    }

    @Test(arguments: allRcodes)
    func errorResponseWithEDNSAppendsOurOPT(_ rcode: DNSRcode) throws {
        let qbytes = makeQuery(id: 7, labels: ["example", "com"],
                               opt: optBytes(payload: 4096, version: 0, flags: 0x8000))
        let query = try DNSMessage.parse(qbytes)
        let out = DNSResponseBuilder.errorResponse(to: query, rcode: rcode)

        #expect(out.count == query.questionEnd + 11)
        #expect(Array(out[10..<12]) == be16(1))  // arcount
        #expect(Array(out.suffix(11)) == Self.expectedOPT)

        let back = try DNSMessage.parse(out)
        #expect(back.header.arcount == 1)
        #expect(back.header.ancount == 0 && back.header.nscount == 0)
        #expect(back.header.rcode == rcode.rawValue)
        let edns = try #require(back.edns)
        #expect(edns.payloadSize == DNSResponseBuilder.advertisedPayloadSize)
        #expect(edns.payloadSize == 1232)
        #expect(edns.version == 0)
        #expect(!edns.dnssecOK)
        #expect(edns.payloadSizeOffset == query.questionEnd + 3)
        #expect(back.length == out.count)
    }

    @Test func opcodeAndRDAreCopiedOtherFlagsAreNot() throws {
        // Opcode 2 (STATUS), RD clear, and AA/TC/Z/AD/CD and an rcode set in the query.
        let qflags: UInt16 = 0x1000 | 0x0400 | 0x0200 | 0x0040 | 0x0020 | 0x0010 | 0x0005
        let query = try DNSMessage.parse(makeQuery(flags: qflags, labels: ["x"]))
        let out = DNSResponseBuilder.errorResponse(to: query, rcode: .notImp)
        let flags = UInt16(out[2]) << 8 | UInt16(out[3])
        #expect(flags == 0x8000 | 0x1000 | 0x0080 | 4)
        let h = try DNSMessage.parse(out).header
        #expect(h.opcode == 2)
        #expect(!h.recursionDesired)
        #expect(!h.isTruncated)

        // Every opcode survives, with and without RD.
        for opcode in UInt16(0)...15 {
            for rd in [UInt16(0), 0x0100] {
                let q = try DNSMessage.parse(makeQuery(flags: opcode << 11 | rd, labels: ["y"]))
                let r = try DNSMessage.parse(DNSResponseBuilder.errorResponse(to: q, rcode: .servFail))
                #expect(r.header.opcode == UInt8(opcode))
                #expect(r.header.recursionDesired == (rd != 0))
                #expect(r.header.isResponse)
                #expect(r.header.rcode == 2)
            }
        }
    }

    @Test func queryAnswerSectionsAreNotEchoed() throws {
        // A "query" that carries an answer and an authority record: only the question comes back.
        var qbytes = headerBytes(id: 9, flags: 0x0100, qd: 1, an: 1, ns: 1, ar: 1)
        qbytes += questionBytes(wireName("q"))
        qbytes += rrBytes(owner: pointer(12), type: 1, rdata: [1, 2, 3, 4])
        qbytes += rrBytes(owner: pointer(12), type: 1, rdata: [5, 6, 7, 8])
        qbytes += optBytes(payload: 1400)
        let query = try DNSMessage.parse(qbytes)
        let out = DNSResponseBuilder.errorResponse(to: query, rcode: .refused)
        #expect(out.count == query.questionEnd + 11)
        let back = try DNSMessage.parse(out)
        #expect(back.header.ancount == 0 && back.header.nscount == 0 && back.header.arcount == 1)
        #expect(back.header.rcode == 5)
    }

    @Test func questionIsEchoedAsReceived() throws {
        // A compressed question cannot exist: only the header precedes it, and pointers into
        // the header are rejected. The question is echoed byte for byte, case included.
        #expect(throws: DNSWireError.badPointer) {
            try DNSMessage.parse(headerBytes(id: 0x0161, flags: 0x0001) + pointer(0) + be16(16) + be16(3))
        }
        let qbytes = headerBytes(id: 0x0161, flags: 0x0001) + [1, 0x41, 0] + be16(16) + be16(3)
        let query = try DNSMessage.parse(qbytes)
        let out = DNSResponseBuilder.errorResponse(to: query, rcode: .refused)
        #expect(Array(out[12...]) == [1, 0x41, 0] + be16(16) + be16(3))
        let back = try DNSMessage.parse(out)
        #expect(back.question == query.question)
        #expect(back.question.type == 16 && back.question.qclass == 3)
    }

    @Test func errorResponseForLongestName() throws {
        let query = try DNSMessage.parse(makeQuery(labels: [label(63), label(63), label(63), label(61)],
                                                   opt: optBytes()))
        let out = DNSResponseBuilder.errorResponse(to: query, rcode: .servFail)
        #expect(out.count == 12 + 255 + 4 + 11)
        #expect(try DNSMessage.parse(out).question == query.question)
    }

    @Test func formErrToHeader() throws {
        let h = DNSHeader(id: 0xFACE, flags: 0x0100 | 0x2800 | 0x0400 | 0x0010 | 0x0003,
                          qdcount: 3, ancount: 4, nscount: 5, arcount: 6)
        let out = DNSResponseBuilder.formErr(toHeader: h)
        #expect(out.count == 12)
        #expect(out == be16(0xFACE) + be16(0x8000 | 0x2800 | 0x0100 | 0x0080 | 1)
                + be16(0) + be16(0) + be16(0) + be16(0))
        let back = try out.withUnsafeBytes { p throws(DNSWireError) in try DNSMessage.header(p) }
        #expect(back.id == 0xFACE)
        #expect(back.isResponse)
        #expect(back.opcode == 5)
        #expect(back.recursionDesired)
        #expect(back.rcode == DNSRcode.formErr.rawValue)
        #expect(!back.isTruncated)
        // No question: a full parse rejects it, as it should for a header-only reply.
        #expect(parseError(out) == .badQuestionCount)
    }

    @Test func formErrWithoutRD() {
        let out = DNSResponseBuilder.formErr(toHeader: DNSHeader(id: 1, flags: 0))
        #expect(out == be16(1) + be16(0x8081) + Array(repeating: 0, count: 8))
    }

    @Test func appendOPTAppends() {
        var out: [UInt8] = [1, 2, 3]
        DNSResponseBuilder.appendOPT(into: &out)
        #expect(out == [1, 2, 3] + Self.expectedOPT)
    }
}

@Suite("Local answers with any records")
struct LocalRecordAnswerTests {
    @Test func recordsWithOwnNamesReparse() throws {
        let query = try DNSMessage.parse(headerBytes() + questionBytes(wireName("www", "lan")))
        let target: [UInt8] = [4] + Array("host".utf8) + [3] + Array("lan".utf8) + [0]
        let out = DNSResponseBuilder.localAnswer(to: query, records: [
            .init(owner: nil, type: 5, rdata: target),
            .init(owner: target, type: DNSType.a, rdata: [10, 0, 0, 5]),
        ], ttl: 60)
        let m = try DNSMessage.parse(out)
        #expect(m.header.id == 0x1234 && m.header.isResponse && m.header.ancount == 2)
        #expect(m.header.flags & 0x0400 != 0, "authoritative")
        #expect(m.length == out.count)
        #expect(Array(out.suffix(4)) == [10, 0, 0, 5])
        let ttls = try out.withUnsafeBytes { raw in try DNSRecordTTLs.read(raw, message: m) }
        #expect(ttls.offsets.count == 2 && ttls.minimum == 60)
    }
}
