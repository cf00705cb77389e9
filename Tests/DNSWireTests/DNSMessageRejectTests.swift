import Testing
import DNSWire

/// Invalid messages: each must be rejected with the right reason, never crash.
@Suite("DNSMessage.parse (invalid input)")
struct DNSMessageRejectTests {
    static let validMessages: [(String, [UInt8])] = [
        ("plain query", makeQuery(labels: ["www", "example", "com"])),
        ("root query", headerBytes() + questionBytes([0])),
        ("query with EDNS", makeQuery(labels: ["a", "b"], opt: optBytes(flags: 0x8000))),
        ("query with EDNS option",
         makeQuery(labels: ["c"], opt: optBytes(rdata: be16(10) + be16(2) + [7, 7]))),
        ("compressed response", CompressedResponse().bytes),
        ("pointer chain", pointerChainMessage(hops: 5)),
    ]

    // MARK: truncation

    @Test(arguments: validMessages)
    func everyStrictPrefixIsRejected(_ fixture: (String, [UInt8])) throws {
        let bytes = fixture.1
        // The fixture itself must parse and use every byte, or the prefixes prove nothing.
        #expect(try DNSMessage.parse(bytes).length == bytes.count, "\(fixture.0)")
        for n in 0..<bytes.count {
            let err = parseError(Array(bytes.prefix(n)))
            let expected: DNSWireError = n < DNSHeader.size ? .truncatedHeader : .truncated
            #expect(err == expected, "\(fixture.0): prefix of \(n) of \(bytes.count)")
        }
    }

    @Test func emptyInput() {
        #expect(parseError([]) == .truncatedHeader)
    }

    @Test func prefixesViaUnsafeBufferSlicesDoNotReadPastTheEnd() {
        // Rebased slices of a larger buffer: the parser must respect the slice's count
        // even though readable memory continues after it.
        let bytes = CompressedResponse().bytes
        bytes.withUnsafeBytes { whole in
            for n in 0..<bytes.count {
                let slice = UnsafeRawBufferPointer(rebasing: whole[0..<n])
                let r = Result { () throws(DNSWireError) in try DNSMessage.parse(slice) }
                #expect(throws: DNSWireError.self) { try r.get() }
            }
        }
    }

    // MARK: compression pointers

    @Test func selfPointerInQuestion() {
        let bytes = headerBytes() + pointer(12) + be16(1) + be16(1)
        #expect(parseError(bytes) == .badPointer)
    }

    @Test func forwardPointerInQuestion() {
        // Points at the root label right after it: forward, so rejected even though the
        // target is a valid name.
        let bytes = headerBytes() + pointer(14) + [0] + be16(1) + be16(1)
        #expect(parseError(bytes) == .badPointer)
    }

    @Test func pointerPastEndOfMessage() {
        let bytes = headerBytes() + pointer(0x3FFF) + be16(1) + be16(1)
        #expect(parseError(bytes) == .badPointer)
    }

    @Test func twoPointersPointingAtEachOther() {
        // Question name at 12 points back to offset 0; the ID there is a pointer to 12.
        let bytes = headerBytes(id: 0xC00C) + pointer(0) + be16(1) + be16(1)
        #expect(parseError(bytes) == .badPointer)
        // Same in a record: owner at X -> Y (backwards), Y holds a pointer -> X (forwards).
        var r = headerBytes(flags: 0x8180, qd: 1, an: 2) + questionBytes([0])
        let rdataStart = r.count + 11
        let ownerAt = rdataStart + 2
        r += rrBytes(owner: [0], type: 10, rdata: pointer(ownerAt))
        #expect(r.count == ownerAt)
        r += rrBytes(owner: pointer(rdataStart), type: 1, rdata: [0, 0, 0, 0])
        #expect(parseError(r) == .badPointer)
    }

    @Test func pointerInRecordOwnerToItself() {
        var r = headerBytes(flags: 0x8180, qd: 1, an: 1) + questionBytes([0])
        r += rrBytes(owner: pointer(r.count), type: 1, rdata: [0, 0, 0, 0])
        #expect(parseError(r) == .badPointer)
    }

    @Test func pointerChainLongerThan127HopsIsRejected() {
        #expect(parseError(pointerChainMessage(hops: 127)) == nil)
        #expect(parseError(pointerChainMessage(hops: 128)) == .badPointer)
        #expect(parseError(pointerChainMessage(hops: 1000)) == .badPointer)
    }

    @Test func labelThenPointerBackToItselfTerminates() {
        // "a" followed by a pointer back to the "a": each pointer points strictly
        // backwards, yet the walk cycles. It must still end with an error (the name
        // grows past 255 bytes before the hop limit is reached).
        let bytes = headerBytes(id: 0, flags: 0) + [1, 0x61] + pointer(12) + be16(1) + be16(1)
        let err = parseError(bytes)
        #expect(err == .nameTooLong || err == .badPointer)
        // Same with a long label: the length limit is hit after a few rounds.
        let long = headerBytes() + [63] + Array(label(63).utf8) + pointer(12) + be16(1) + be16(1)
        let err2 = parseError(long)
        #expect(err2 == .nameTooLong || err2 == .badPointer)
    }

    @Test func truncatedPointer() {
        // A pointer's first byte as the last byte of the message.
        #expect(parseError(headerBytes() + [0xC0]) == .truncated)
    }

    // MARK: labels and names

    @Test func labelOf63IsAcceptedAnd64Rejected() {
        #expect(parseError(makeQuery(labels: [label(63), "com"])) == nil)
        // 64 = 0x40: reads as the reserved extended label type.
        #expect(parseError(makeQuery(labels: [label(64), "com"])) == .badLabel)
    }

    @Test(arguments: [UInt8(0x40), 0x41, 0x7F, 0x80, 0x81, 0xBF])
    func reservedLabelTypes(_ lengthByte: UInt8) {
        let bytes = headerBytes() + [lengthByte] + Array(repeating: 0x61, count: 70) + [0]
            + be16(1) + be16(1)
        #expect(parseError(bytes) == .badLabel, "0x\(String(lengthByte, radix: 16))")
    }

    @Test func reservedLabelTypeInsideARecordOwner() {
        var r = headerBytes(qd: 1, an: 1) + questionBytes([0])
        r += rrBytes(owner: [0x80, 0x61, 0], type: 1, rdata: [0, 0, 0, 0])
        #expect(parseError(r) == .badLabel)
    }

    @Test func nameOver255BytesIsRejected() {
        // 63.63.63.62 = 256 bytes on the wire.
        let over = makeQuery(labels: [label(63), label(63), label(63), label(62)])
        #expect(parseError(over) == .nameTooLong)
        // 128 one-byte labels = 257.
        #expect(parseError(makeQuery(labels: Array(repeating: "a", count: 128))) == .nameTooLong)
    }

    @Test func nameOver255BytesAfterDecompressionIsRejected() {
        // Answer owner: 63-byte label + "c" + pointer to a 191-byte question name
        // = 64 + 2 + 191 = 257 once decompressed, though only 68 bytes on the wire.
        var bytes = headerBytes(qd: 1, an: 1)
        bytes += questionBytes(wireName(label(63), label(63), label(61)))
        bytes += rrBytes(owner: [63] + Array(label(63, "b").utf8) + [1, 0x63] + pointer(12),
                         type: 1, rdata: [1, 1, 1, 1])
        #expect(parseError(bytes) == .nameTooLong)
    }

    // MARK: counts

    @Test func zeroQuestions() {
        #expect(parseError(headerBytes(qd: 0)) == .badQuestionCount)
        #expect(parseError(headerBytes(qd: 0) + questionBytes([0])) == .badQuestionCount)
    }

    @Test func twoQuestions() {
        let bytes = headerBytes(qd: 2) + questionBytes(wireName("a")) + questionBytes(wireName("b"))
        #expect(parseError(bytes) == .badQuestionCount)
        #expect(parseError(headerBytes(qd: 0xFFFF) + questionBytes([0])) == .badQuestionCount)
    }

    @Test func answerCountLargerThanTheRecords() {
        let q = questionBytes(wireName("example"))
        let rr = rrBytes(owner: pointer(12), type: 1, rdata: [1, 2, 3, 4])
        #expect(parseError(headerBytes(an: 1) + q + rr) == nil)
        #expect(parseError(headerBytes(an: 2) + q + rr) == .truncated)
        #expect(parseError(headerBytes(an: 1) + q) == .truncated)
        #expect(parseError(headerBytes(an: 0xFFFF) + q + rr) == .truncated)
        #expect(parseError(headerBytes(ns: 1) + q) == .truncated)
        #expect(parseError(headerBytes(ar: 1) + q) == .truncated)
        #expect(parseError(headerBytes(an: 0xFFFF, ns: 0xFFFF, ar: 0xFFFF) + q) == .truncated)
    }

    @Test func rdlengthPastTheEnd() {
        var bytes = headerBytes(an: 1) + questionBytes([0])
        bytes += rrBytes(owner: [0], type: 1, rdata: [1, 2, 3, 4])
        bytes[bytes.count - 5] = 5  // rdlength 4 -> 5
        #expect(parseError(bytes) == .truncated)
        bytes[bytes.count - 6] = 0xFF  // rdlength 0xFF05
        #expect(parseError(bytes) == .truncated)
    }

    // MARK: OPT

    @Test func optWithNonRootOwner() {
        let bytes = makeQuery(labels: ["x"], opt: optBytes(owner: wireName("x")))
        #expect(parseError(bytes) == .badOPT)
        // A pointer to the root label is not the one-byte root owner either.
        let viaPointer = makeQuery(labels: [], opt: optBytes(owner: pointer(12)))
        #expect(parseError(viaPointer) == .badOPT)
    }

    @Test func twoOPTRecords() {
        let bytes = headerBytes(ar: 2) + questionBytes(wireName("x")) + optBytes() + optBytes()
        #expect(parseError(bytes) == .badOPT)
        let separated = headerBytes(ar: 3) + questionBytes(wireName("x")) + optBytes()
            + rrBytes(owner: [0], type: 1, rdata: [1, 2, 3, 4]) + optBytes(payload: 512)
        #expect(parseError(separated) == .badOPT)
    }

    @Test func optInAnswerSection() {
        let bytes = headerBytes(an: 1) + questionBytes(wireName("x")) + optBytes()
        #expect(parseError(bytes) == .badOPT)
    }

    @Test func optInAuthoritySection() {
        let bytes = headerBytes(ns: 1) + questionBytes(wireName("x")) + optBytes()
        #expect(parseError(bytes) == .badOPT)
        // Same OPT bytes, counted as additional: fine.
        let ok = headerBytes(ar: 1) + questionBytes(wireName("x")) + optBytes()
        #expect(parseError(ok) == nil)
    }

    @Test func optAfterAnswerAndAuthorityIsAccepted() throws {
        var bytes = headerBytes(flags: 0x8180, qd: 1, an: 1, ns: 1, ar: 1)
        bytes += questionBytes(wireName("x"))
        bytes += rrBytes(owner: pointer(12), type: 1, rdata: [1, 2, 3, 4])
        bytes += rrBytes(owner: pointer(12), type: 2, rdata: pointer(12))
        let optAt = bytes.count
        bytes += optBytes(payload: 777)
        let m = try DNSMessage.parse(bytes)
        #expect(m.edns?.payloadSizeOffset == optAt + 3)
        #expect(m.edns?.payloadSize == 777)
    }
}
