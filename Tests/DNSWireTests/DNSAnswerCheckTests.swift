import Testing
import DNSWire

/// `DNSMessage.answer(_:to:)`: the upstream-answer check that does not build a question
/// agrees with `parse` plus question equality, for every kind of question section.
@Suite("DNSMessage.answer(to:)")
struct DNSAnswerCheckTests {
    let asked = DNSQuestion(name: DNSName("www.Example.com")!, type: 1)

    func check(_ bytes: [UInt8]) throws -> (header: DNSHeader, length: Int)? {
        try bytes.withUnsafeBytes { p in try DNSMessage.answer(p, to: asked) }
    }

    struct Verdict: Equatable {
        var header: DNSHeader
        var length: Int
    }

    /// nil: malformed (throws); .some(nil): well formed, another question.
    func fast(_ bytes: [UInt8]) -> Verdict?? {
        do {
            return .some(try check(bytes).map { Verdict(header: $0.header, length: $0.length) })
        } catch {
            return .none
        }
    }

    /// What the old path said: parse, then compare the questions.
    func viaParse(_ bytes: [UInt8]) -> Verdict?? {
        guard let m = try? DNSMessage.parse(bytes) else { return .none }
        return .some(m.question == asked ? Verdict(header: m.header, length: m.length) : nil)
    }

    /// The same usable answer, or neither usable (malformed and "another question" are one
    /// verdict for the caller: a question that differs may stop the walk before records
    /// that `parse` would have rejected).
    func agree(_ bytes: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) {
        let a = fast(bytes) ?? nil, b = viaParse(bytes) ?? nil
        #expect(a == b, "\(bytes)", sourceLocation: sourceLocation)
    }

    @Test func sameNameInAnyCaseMatches() throws {
        let answer = headerBytes(flags: 0x8180, an: 1) + questionBytes(wireName("WWW", "example", "COM"))
            + rrBytes(owner: pointer(12), type: 1, rdata: [192, 0, 2, 1])
        let r = try #require(try check(answer))
        #expect(r.length == answer.count)
        #expect(r.header.isResponse)
        agree(answer)
    }

    @Test func trailingJunkIsCutOff() throws {
        let answer = headerBytes(flags: 0x8180) + questionBytes(wireName("www", "example", "com")) + [0xDE, 0xAD]
        let r = try #require(try check(answer))
        #expect(r.length == answer.count - 2)
        agree(answer)
    }

    @Test func otherNameTypeOrClassIsNoMatch() throws {
        for answer in [headerBytes(flags: 0x8180) + questionBytes(wireName("www", "example", "org")),
                       headerBytes(flags: 0x8180) + questionBytes(wireName("www", "example", "com"), type: 28),
                       headerBytes(flags: 0x8180) + questionBytes(wireName("www", "example", "com"), qclass: 3),
                       headerBytes(flags: 0x8180) + questionBytes(wireName("ww", "example", "com"))] {
            #expect(try check(answer) == nil)
            agree(answer)
        }
    }

    @Test func malformedRecordsAfterAMatchingQuestionThrow() {
        let answer = headerBytes(flags: 0x8180, an: 2) + questionBytes(wireName("www", "example", "com"))
            + rrBytes(owner: pointer(12), type: 1, rdata: [192, 0, 2, 1])
        #expect(throws: DNSWireError.self) { try check(answer) }
        agree(answer)
        let cut = Array((headerBytes(flags: 0x8180) + questionBytes(wireName("www", "example", "com"))).dropLast(1))
        #expect(throws: DNSWireError.self) { try check(cut) }
        agree(cut)
    }

    @Test func compressedOrBrokenQuestionsGoTheLongWay() {
        // A question name that is not byte-identical (a pointer, a bad label): the full
        // walk decides, exactly as parse does.
        let pointed = headerBytes(flags: 0x8180) + questionBytes(pointer(12))
        agree(pointed)
        let badLabel = headerBytes(flags: 0x8180) + questionBytes([0x41] + Array(repeating: 0x61, count: 65) + [0])
        agree(badLabel)
        #expect(throws: DNSWireError.self) {
            try check(headerBytes(flags: 0x8180, qd: 2) + questionBytes(wireName("www", "example", "com")))
        }
    }

    @Test func agreesWithParseOnMutations() {
        // Every single-byte change of a real answer: the two paths say the same.
        let answer = headerBytes(flags: 0x8180, an: 1, ar: 1) + questionBytes(wireName("www", "example", "com"))
            + rrBytes(owner: pointer(12), type: 1, rdata: [192, 0, 2, 1]) + optBytes()
        for i in 12..<answer.count {
            for v: UInt8 in [0, 1, 0x3F, 0x40, 0x41, 0x5A, 0x61, 0xC0, 0xFF] {
                var m = answer
                m[i] = v
                agree(m)
            }
        }
    }
}
