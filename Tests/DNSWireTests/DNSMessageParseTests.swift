import Testing
import DNSWire

/// Valid messages: what the parser reports about them.
@Suite("DNSMessage.parse (valid input)")
struct DNSMessageParseTests {
    @Test func plainQuery() throws {
        let bytes = makeQuery(id: 0xA1B2, flags: 0x0120, labels: ["WwW", "ExAmple", "COM"],
                              type: 28, qclass: 1)
        let m = try DNSMessage.parse(bytes)
        #expect(m.header == DNSHeader(id: 0xA1B2, flags: 0x0120, qdcount: 1))
        #expect(!m.header.isResponse)
        #expect(m.header.recursionDesired)
        #expect(m.header.opcode == 0)
        #expect(m.question.type == 28)
        #expect(m.question.qclass == 1)
        // Case is preserved on the wire and in the description...
        #expect(m.question.name.wire == wireName("WwW", "ExAmple", "COM"))
        #expect(m.question.name.description == "WwW.ExAmple.COM.")
        // ...but the name compares equal to any casing.
        #expect(m.question.name == DNSName("www.example.com"))
        #expect(m.questionEnd == 12 + 17 + 4)
        #expect(m.length == bytes.count)
        #expect(m.edns == nil)
    }

    @Test func rootQuestion() throws {
        let bytes = headerBytes() + questionBytes([0], type: 2)
        let m = try DNSMessage.parse(bytes)
        #expect(m.question.name == DNSName.root)
        #expect(m.question.name.description == ".")
        #expect(m.question.type == 2)
        #expect(m.questionEnd == 17)
        #expect(m.length == 17)
    }

    @Test func unsafeBufferOverloadAgrees() throws {
        let bytes = makeQuery(labels: ["a", "b"], opt: optBytes())
        let viaArray = try DNSMessage.parse(bytes)
        let viaBuffer = try bytes.withUnsafeBytes { p throws(DNSWireError) in
            try DNSMessage.parse(p)
        }
        #expect(viaArray.header == viaBuffer.header)
        #expect(viaArray.question == viaBuffer.question)
        #expect(viaArray.edns == viaBuffer.edns)
        #expect(viaArray.length == viaBuffer.length)
        #expect(viaArray.questionEnd == viaBuffer.questionEnd)
    }

    @Test func queryWithEDNS() throws {
        let bytes = makeQuery(labels: ["www", "example", "com"],
                              opt: optBytes(payload: 4096, version: 0, flags: 0x8000))
        let m = try DNSMessage.parse(bytes)
        let edns = try #require(m.edns)
        #expect(m.header.arcount == 1)
        #expect(edns.payloadSize == 4096)
        #expect(edns.version == 0)
        #expect(edns.dnssecOK)
        // header 12 + question 21 = 33: owner at 33, type 34-35, class 36-37.
        #expect(edns.payloadSizeOffset == 36)
        #expect(bytes[edns.payloadSizeOffset] == 0x10)
        #expect(bytes[edns.payloadSizeOffset + 1] == 0x00)
        #expect(m.length == bytes.count)
        #expect(m.questionEnd == 33)
    }

    @Test func ednsVersionAndDOBitAreDecodedFromTheRightTTLBits() throws {
        // Extended rcode 0xAB, version 1, every Z bit set except DO: DO must be false.
        let noDO = makeQuery(labels: ["x"], opt: optBytes(payload: 1400, extRcode: 0xAB,
                                                          version: 1, flags: 0x7FFF))
        let a = try #require(try DNSMessage.parse(noDO).edns)
        #expect(a.version == 1)
        #expect(!a.dnssecOK)
        #expect(a.payloadSize == 1400)

        // Only DO set, version 255, extended rcode 0xFF.
        let onlyDO = makeQuery(labels: ["x"], opt: optBytes(payload: 512, extRcode: 0xFF,
                                                            version: 255, flags: 0x8000))
        let b = try #require(try DNSMessage.parse(onlyDO).edns)
        #expect(b.version == 255)
        #expect(b.dnssecOK)
        #expect(b.payloadSize == 512)
    }

    @Test func ednsWithOptionsAndOtherAdditionalRecords() throws {
        // OPT with an option (cookie), preceded by an A record in the additional section.
        let cookie: [UInt8] = be16(10) + be16(8) + [1, 2, 3, 4, 5, 6, 7, 8]
        var bytes = headerBytes(qd: 1, ar: 2) + questionBytes(wireName("a", "example"))
        bytes += rrBytes(owner: wireName("glue"), type: 1, rdata: [10, 0, 0, 1])
        let optStart = bytes.count
        bytes += optBytes(payload: 1232, flags: 0x8000, rdata: cookie)
        let m = try DNSMessage.parse(bytes)
        let edns = try #require(m.edns)
        #expect(edns.payloadSizeOffset == optStart + 3)
        #expect(edns.payloadSize == 1232)
        #expect(m.length == bytes.count)
    }

    @Test func payloadSizeZeroIsReportedAsIs() throws {
        let bytes = makeQuery(labels: ["x"], opt: optBytes(payload: 0))
        #expect(try DNSMessage.parse(bytes).edns?.payloadSize == 0)
    }

    @Test func responseWithAllSectionsAndCompression() throws {
        let r = CompressedResponse()
        let m = try DNSMessage.parse(r.bytes)
        #expect(m.header.id == 0xBEEF)
        #expect(m.header.isResponse)
        #expect(m.header.rcode == 0)
        #expect(m.header.ancount == 2 && m.header.nscount == 1 && m.header.arcount == 2)
        #expect(m.question.name.description == "www.Example.com.")
        #expect(m.questionEnd == r.questionEnd)
        #expect(m.length == r.bytes.count)
        let edns = try #require(m.edns)
        #expect(edns.payloadSizeOffset == r.optClassOffset)
        #expect(edns.payloadSize == 1232)
        #expect(edns.dnssecOK)
    }

    @Test func trailingBytesAreNotCountedInLength() throws {
        let q = makeQuery(labels: ["example", "net"], opt: optBytes())
        let m = try DNSMessage.parse(q + [0xDE, 0xAD, 0xBE, 0xEF, 0xC0])
        #expect(m.length == q.count)
        let r = CompressedResponse()
        #expect(try DNSMessage.parse(r.bytes + [0]).length == r.bytes.count)
    }

    @Test func compressedNamePointingIntoHeaderIsRejected() {
        // ID = 0x01 'a', flags high byte = 0: bytes 0..2 would read as the name "a.", a
        // name that changes with the ID a forwarder rewrites. The header holds no names.
        let bytes = headerBytes(id: 0x0161, flags: 0x0001) + pointer(0) + be16(1) + be16(1)
        #expect(throws: DNSWireError.badPointer) { try DNSMessage.parse(bytes) }
        for target in 1..<DNSHeader.size {
            let b = headerBytes(id: 0x0161, flags: 0x0001) + pointer(target) + be16(1) + be16(1)
            #expect(throws: DNSWireError.badPointer) { try DNSMessage.parse(b) }
        }
    }

    @Test func recordOwnerThatSuffixesALabelOntoACompressedName() throws {
        // Owner "sub" + pointer to the question name; followed by a second record, which
        // only parses if the reader resumed right after the pointer.
        var bytes = headerBytes(flags: 0x8180, qd: 1, an: 2)
        bytes += questionBytes(wireName("example", "org"))
        bytes += rrBytes(owner: [3] + Array("sub".utf8) + pointer(12), type: 1, rdata: [1, 2, 3, 4])
        bytes += rrBytes(owner: pointer(12), type: 16, rdata: [3, 0x61, 0x62, 0x63])
        let m = try DNSMessage.parse(bytes)
        #expect(m.length == bytes.count)
    }

    @Test func minimalRecordOfElevenBytesIsAccepted() throws {
        // ancount = 1 with exactly one 11-byte record (root owner, empty rdata).
        let bytes = headerBytes(an: 1) + questionBytes([0]) + rrBytes(owner: [0], type: 1, rdata: [])
        #expect(bytes.count == 12 + 5 + 11)
        #expect(try DNSMessage.parse(bytes).length == bytes.count)
        // One byte short.
        #expect(parseError(Array(bytes.dropLast())) == .truncated)
    }

    @Test func longestLegalNames() throws {
        let labels = [label(63), label(63), label(63), label(61)]
        let bytes = makeQuery(labels: labels)
        let m = try DNSMessage.parse(bytes)
        #expect(m.question.name.wire.count == 255)
        #expect(m.question.name == DNSName(labels.joined(separator: ".")))

        let many = Array(repeating: "z", count: 127)
        let m2 = try DNSMessage.parse(makeQuery(labels: many))
        #expect(m2.question.name.wire.count == 255)
    }

    @Test func decompressedNameOfExactly255BytesIsAccepted() throws {
        // Question: 63.63.61 (191 bytes). Answer owner: one 63-byte label + pointer,
        // 64 + 191 = 255 once decompressed.
        var bytes = headerBytes(qd: 1, an: 1)
        bytes += questionBytes(wireName(label(63), label(63), label(61)))
        bytes += rrBytes(owner: [63] + Array(label(63, "b").utf8) + pointer(12), type: 1,
                         rdata: [1, 1, 1, 1])
        #expect(try DNSMessage.parse(bytes).length == bytes.count)
    }

    @Test func pointerChainOf127HopsIsAccepted() throws {
        #expect(try DNSMessage.parse(pointerChainMessage(hops: 127)).header.ancount == 2)
    }

    @Test func opcodeAndFlagsArePassedThrough() throws {
        // A NOTIFY-like opcode with AA, TC, CD set: parse does not judge header flags.
        let flags: UInt16 = 0x2000 | 0x0400 | 0x0200 | 0x0010
        let m = try DNSMessage.parse(makeQuery(flags: flags, labels: ["x"]))
        #expect(m.header.flags == flags)
        #expect(m.header.opcode == 4)
        #expect(m.header.isTruncated)
    }
}

/// A message whose second answer's owner reaches the root through `hops` pointers: the
/// first answer's rdata holds a root label followed by `hops - 1` pointers, each to the
/// previous one.
func pointerChainMessage(hops: Int) -> [UInt8] {
    precondition(hops >= 1)
    var bytes = headerBytes(flags: 0x8180, qd: 1, an: 2) + questionBytes([0])
    let rdataStart = bytes.count + 11  // owner (1) + type, class, ttl, rdlength (10)
    var rdata: [UInt8] = [0]
    var last = rdataStart
    for _ in 0..<(hops - 1) {
        let here = rdataStart + rdata.count
        rdata += pointer(last)
        last = here
    }
    bytes += rrBytes(owner: [0], type: 10, rdata: rdata)
    bytes += rrBytes(owner: pointer(last), type: 1, rdata: [0, 0, 0, 0])
    return bytes
}

/// Known bug: a compression pointer must point backwards, but the label found at its
/// target is not limited to the bytes before the pointer. It can run forwards over the
/// pointer and past the end of the records, into bytes `length` describes as trailing
/// junk. The forwarder relays exactly `bytes[0..<length]`, which then no longer parses.
@Suite("DNSMessage.parse (regressions)")
struct DNSMessageRegressionTests {
    /// Question name = pointer to offset 0, where the ID's first byte (0x12 = 18) starts
    /// an 18-byte label covering bytes 1...18: the rest of the header, the pointer itself,
    /// QTYPE/QCLASS and one byte after the question. Byte 19 is the root label.
    static let questionIntoJunk: [UInt8] =
        headerBytes(id: 0x1200, flags: 0x0100) + pointer(0) + be16(1) + be16(1) + [0x41, 0x00]

    /// Answer 2's owner points into answer 1's rdata, at a 0x3F byte: a 63-byte label
    /// that runs past the end of the last record into trailing bytes.
    static let ownerIntoJunk: [UInt8] = {
        var b = headerBytes(flags: 0x8180, qd: 1, an: 2) + questionBytes(wireName("x"))
        let rdataAt = b.count + 12  // after the owner pointer (2) and type..rdlength (10)
        b += rrBytes(owner: pointer(12), type: 10, rdata: [0x3F, 1, 2, 3])
        b += rrBytes(owner: pointer(rdataAt), type: 1, rdata: [1, 2, 3, 4])
        let recordsEnd = b.count
        b += Array(repeating: 0x62, count: rdataAt + 64 - recordsEnd) + [0]
        return b
    }()

    @Test(arguments: [("question", questionIntoJunk), ("answer owner", ownerIntoJunk)])
    func compressedNameReadsPastMessageLength(_ c: (String, [UInt8])) throws {
        // Regression: a label reached through a pointer ran forward over the pointer into
        // bytes past `length`. Such a name is now rejected as a bad pointer.
        #expect(throws: DNSWireError.badPointer) { try DNSMessage.parse(c.1) }
    }
}
