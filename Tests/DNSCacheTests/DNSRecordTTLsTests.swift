import DNSWire
import Testing

@Suite("DNSRecordTTLs.read")
struct DNSRecordTTLsTests {
    @Test func offsetsPointAtEveryTTLFieldInOrder() throws {
        let a = makeAnswer(answers: [.a(111), .a(222, [192, 0, 2, 2])],
                           authority: [.ns(333)],
                           additional: [.a(444, [192, 0, 2, 53], owner: wire("ns1.example.com"))],
                           opt: true)
        let t = try readTTLs(a.bytes)
        #expect(t.offsets == a.ttlOffsets)
        #expect(t.offsets.count == 4)
        #expect(t.offsets.map { readBE32(a.bytes, at: $0) } == [111, 222, 333, 444])
        // Each offset is preceded by TYPE and CLASS and followed by RDLENGTH.
        for o in t.offsets {
            #expect(Array(a.bytes[(o - 2)..<o]) == [0, 1], "class IN before the TTL at \(o)")
        }
        #expect(Array(a.bytes[(t.offsets[0] - 4)..<(t.offsets[0] - 2)]) == be16(DNSType.a))
        #expect(Array(a.bytes[(t.offsets[2] - 4)..<(t.offsets[2] - 2)]) == be16(DNSType.ns))
    }

    @Test func optRecordIsSkippedWhereverItSits() throws {
        for optFirst in [false, true] {
            let a = makeAnswer(answers: [.a(300)],
                               additional: [.a(77, [192, 0, 2, 9], owner: wire("glue.example.com"))],
                               opt: true, optFirst: optFirst, dnssecOK: true)
            let optStart = try #require(a.optStart)
            let optTTL = optStart + 5
            #expect(readBE32(a.bytes, at: optTTL) == 0x0000_8000, "DO bit in the OPT TTL")
            let t = try readTTLs(a.bytes)
            #expect(!t.offsets.contains(optTTL))
            #expect(t.offsets == a.ttlOffsets, "optFirst: \(optFirst)")
            #expect(t.offsets.map { readBE32(a.bytes, at: $0) } == [300, 77])
            #expect(t.minimum == 300)
        }
    }

    @Test func onlyOPTMeansNoOffsetsAndNoMinimum() throws {
        let a = makeAnswer(opt: true, dnssecOK: true)
        let t = try readTTLs(a.bytes)
        #expect(t.offsets.isEmpty && t.minimum == nil && t.negative == nil)
    }

    @Test func noRecordsAtAll() throws {
        let t = try readTTLs(makeAnswer().bytes)
        #expect(t.offsets.isEmpty)
        #expect(t.minimum == nil)
        #expect(t.negative == nil)
    }

    @Test func minimumIsOverAnswerAndAuthorityOnly() throws {
        let a = makeAnswer(answers: [.a(300), .a(200, [192, 0, 2, 2])],
                           authority: [.ns(100)],
                           additional: [.a(5, [192, 0, 2, 53], owner: wire("ns1.example.com"))])
        let t = try readTTLs(a.bytes)
        #expect(t.minimum == 100)
        #expect(t.negative == nil)
        #expect(t.offsets.count == 4, "the additional record's TTL is still located")

        let answerMin = try readTTLs(makeAnswer(answers: [.a(900), .a(42, [192, 0, 2, 2])],
                                                authority: [.ns(600)]).bytes)
        #expect(answerMin.minimum == 42)

        let onlyAdditional = try readTTLs(makeAnswer(additional: [.a(5, owner: wire("x.example"))]).bytes)
        #expect(onlyAdditional.minimum == nil)
        #expect(onlyAdditional.offsets.count == 1)
    }

    @Test func minimumCanBeZeroAndMaximal() throws {
        #expect(try readTTLs(makeAnswer(answers: [.a(0), .a(300)]).bytes).minimum == 0)
        #expect(try readTTLs(makeAnswer(answers: [.a(.max)]).bytes).minimum == .max)
    }

    @Test(arguments: [
        (soaTTL: UInt32(3600), soaMinimum: UInt32(300), expected: UInt32(300)),
        (soaTTL: 60, soaMinimum: 300, expected: 60),
        (soaTTL: 900, soaMinimum: 900, expected: 900),
        (soaTTL: 0, soaMinimum: 300, expected: 0),
    ])
    func negativeTTLIsMinOfSOATTLAndMinimum(soaTTL: UInt32, soaMinimum: UInt32, expected: UInt32) throws {
        for flags in [Flags.nxDomain, Flags.noError] {
            let a = makeAnswer(flags: flags, name: "nope.example.com",
                               authority: [.soa(soaTTL, minimum: soaMinimum)])
            let t = try readTTLs(a.bytes)
            #expect(t.negative == expected)
            #expect(t.minimum == soaTTL, "the SOA's own TTL counts toward the minimum")
            #expect(t.offsets == a.ttlOffsets)
            #expect(readBE32(a.bytes, at: t.offsets[0]) == soaTTL)
        }
    }

    @Test func negativeWithCompressedSOANamesAndOPT() throws {
        // Question "nope.example.com" at 12: "example.com" starts at 12 + 5 = 17.
        let a = makeAnswer(flags: Flags.nxDomain, name: "nope.example.com",
                           authority: [.soa(3600, minimum: 120, owner: ptr(17),
                                            mname: [3] + Array("ns1".utf8) + ptr(17),
                                            rname: [10] + Array("hostmaster".utf8) + ptr(17))],
                           opt: true, dnssecOK: true)
        let t = try readTTLs(a.bytes)
        #expect(t.negative == 120)
        #expect(t.offsets == a.ttlOffsets)
    }

    @Test func soaWithLongerRdataStillReadsMinimum() throws {
        var soa = RR.soa(500, minimum: 250)
        soa.rdata += [0xDE, 0xAD]  // slack after MINIMUM inside rdlength
        let t = try readTTLs(makeAnswer(flags: Flags.nxDomain, authority: [soa]).bytes)
        #expect(t.negative == 250)
    }

    @Test func firstSOAInAuthorityWins() throws {
        let a = makeAnswer(flags: Flags.nxDomain, name: "nope.example.com",
                           authority: [.soa(3600, minimum: 30), .soa(3600, minimum: 10, owner: wire("com"))])
        let t = try readTTLs(a.bytes)
        #expect(t.negative == 30)
    }

    @Test func soaOutsideAuthorityIsNotNegative() throws {
        // A query for the SOA itself: the SOA is an answer record.
        let inAnswer = makeAnswer(name: "example.com", type: DNSType.soa,
                                  answers: [.soa(3600, minimum: 60, owner: toQuestion)])
        let t1 = try readTTLs(inAnswer.bytes)
        #expect(t1.negative == nil)
        #expect(t1.minimum == 3600)

        let inAdditional = makeAnswer(flags: Flags.nxDomain, additional: [.soa(3600, minimum: 60)])
        let t2 = try readTTLs(inAdditional.bytes)
        #expect(t2.negative == nil)
        #expect(t2.minimum == nil)
        #expect(t2.offsets == inAdditional.ttlOffsets)

        let nsOnly = makeAnswer(flags: Flags.nxDomain, authority: [.ns(3600)])
        #expect(try readTTLs(nsOnly.bytes).negative == nil)
    }

    @Test func soaAfterAnswersInAuthority() throws {
        // NXDOMAIN at the end of a CNAME chain: CNAME in the answer, SOA in authority.
        let cname = RR(type: 5, ttl: 50, rdata: wire("gone.example.com"))
        let a = makeAnswer(flags: Flags.nxDomain, name: "alias.example.com", answers: [cname],
                           authority: [.soa(3600, minimum: 90)])
        let t = try readTTLs(a.bytes)
        #expect(t.negative == 90)
        #expect(t.minimum == 50)
        #expect(t.offsets == a.ttlOffsets)
    }

    @Test func truncatedSOARdataAtEndOfMessageThrows() throws {
        // The message is well formed (rdlength matches), but the SOA rdata lacks MINIMUM.
        let a = makeAnswer(flags: Flags.nxDomain, authority: [.soa(3600, minimum: 300, cut: 4)])
        _ = try DNSMessage.parse(a.bytes)
        #expect(throws: DNSWireError.truncated) { try readTTLs(a.bytes) }
    }

    @Test func truncatedSOARdataFollowedByRecordsThrows() throws {
        // Reading MINIMUM would run into the next record's bytes: still truncated.
        for cut in [1, 4, 10, 20] {
            let a = makeAnswer(flags: Flags.nxDomain,
                               authority: [.soa(3600, minimum: 300, cut: cut), .ns(3600, owner: wire("example.com"))],
                               opt: true)
            _ = try DNSMessage.parse(a.bytes)
            #expect(throws: DNSWireError.truncated, "cut \(cut)") { try readTTLs(a.bytes) }
        }
    }

    @Test func soaRdataWithOnlyNamesThrows() throws {
        var soa = RR.soa(3600, minimum: 300)
        soa.rdata = wire("ns1.example.com") + wire("hostmaster.example.com")
        let a = makeAnswer(flags: Flags.nxDomain, authority: [soa], additional: [.a(1, owner: wire("x.example"))])
        _ = try DNSMessage.parse(a.bytes)
        #expect(throws: DNSWireError.truncated) { try readTTLs(a.bytes) }
    }
}
