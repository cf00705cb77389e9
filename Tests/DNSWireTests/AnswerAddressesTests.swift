import Testing
@testable import DNSWire

@Suite("Addresses of an answer along its CNAME chain")
struct AnswerAddressesTests {
    static let q = wireName("www", "netflix", "com")

    /// A NOERROR response to `q` type A with these answer records.
    static func response(_ records: [[UInt8]], flags: UInt16 = 0x8180, question: [UInt8] = q) -> [UInt8] {
        headerBytes(flags: flags, an: UInt16(records.count)) + questionBytes(question) + records.joined()
    }

    @Test func followsTheChainFromTheQuestionAndOnlyIt() {
        let cdn = wireName("edge", "cdn", "example")
        let last = wireName("e1", "cdn", "example")
        let bytes = Self.response([
            rrBytes(owner: Self.q, type: 5, ttl: 60, rdata: cdn),
            rrBytes(owner: cdn, type: 5, ttl: 60, rdata: last),
            rrBytes(owner: last, type: 1, ttl: 20, rdata: [198, 51, 100, 1]),
            rrBytes(owner: last, type: 28, ttl: 30, rdata: [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [7]),
            rrBytes(owner: wireName("unrelated", "example"), type: 1, rdata: [203, 0, 113, 9]),
            rrBytes(owner: last, type: 16, rdata: [3, 0x61, 0x62, 0x63]),
        ])
        let found = AnswerAddresses.extract(bytes)
        #expect(found.map(\.bytes) == [[198, 51, 100, 1], [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [7]])
        #expect(found.map(\.ttl) == [20, 30])
        #expect(found.map(\.isIPv6) == [false, true])
    }

    @Test func ownersMatchInAnyCaseAndThroughCompression() {
        // The owner is a pointer to the question name (offset 12), written in other case.
        let upper = wireName("WWW", "Netflix", "COM")
        var bytes = headerBytes(flags: 0x8180, an: 2) + questionBytes(upper)
        bytes += rrBytes(owner: pointer(12), type: 1, ttl: 5, rdata: [192, 0, 2, 1])
        bytes += rrBytes(owner: Self.q, type: 1, ttl: 9, rdata: [192, 0, 2, 1])
        let found = AnswerAddresses.extract(bytes)
        #expect(found == [AnswerAddress(bytes: [192, 0, 2, 1], ttl: 9)], "one address, the longer TTL")
    }

    @Test func loopsAndOverlongChainsStop() {
        let a = wireName("a", "example")
        let loop = Self.response([
            rrBytes(owner: Self.q, type: 5, rdata: a),
            rrBytes(owner: a, type: 5, rdata: Self.q),
            rrBytes(owner: a, type: 1, rdata: [192, 0, 2, 5]),
        ])
        #expect(AnswerAddresses.extract(loop).map(\.bytes) == [[192, 0, 2, 5]])
        var records: [[UInt8]] = []
        var owner = Self.q
        for i in 0..<20 {
            let next = wireName("n\(i)", "example")
            records.append(rrBytes(owner: owner, type: 5, rdata: next))
            owner = next
        }
        records.append(rrBytes(owner: owner, type: 1, rdata: [192, 0, 2, 6]))
        #expect(AnswerAddresses.extract(Self.response(records)).isEmpty, "past \(AnswerAddresses.maxChain) names: nothing")
    }

    @Test func nothingFromBrokenOrNonAnswers() {
        let good = Self.response([rrBytes(owner: Self.q, type: 1, rdata: [192, 0, 2, 1])])
        #expect(AnswerAddresses.extract(good).count == 1)
        #expect(AnswerAddresses.extract(Self.response([rrBytes(owner: Self.q, type: 1, rdata: [192, 0, 2, 1])],
                                                      flags: 0x8183)).isEmpty, "NXDOMAIN")
        #expect(AnswerAddresses.extract(Self.response([rrBytes(owner: Self.q, type: 1, rdata: [192, 0, 2, 1])],
                                                      flags: 0x0100)).isEmpty, "a query")
        #expect(AnswerAddresses.extract(Self.response([rrBytes(owner: Self.q, type: 1, rdata: [192, 0, 2])])).isEmpty,
                "an A record of 3 bytes is skipped")
        #expect(AnswerAddresses.extract(Self.response([rrBytes(owner: Self.q, type: 1, rrclass: 3, rdata: [192, 0, 2, 1])])).isEmpty,
                "class CH")
        for cut in 0..<good.count {
            #expect(AnswerAddresses.extract(Array(good.prefix(cut))).isEmpty, "cut at \(cut)")
        }
        // A CNAME whose target runs past its RDLENGTH.
        let bad = Self.response([rrBytes(owner: Self.q, type: 5, rdata: [3, 0x61, 0x62])])
        #expect(AnswerAddresses.extract(bad).isEmpty)
    }

    @Test func randomBytesNeverCrash() {
        var rng = SplitMix64(seed: 15)
        let good = Self.response([rrBytes(owner: Self.q, type: 5, rdata: wireName("x", "example")),
                                  rrBytes(owner: wireName("x", "example"), type: 1, rdata: [192, 0, 2, 1])])
        for _ in 0..<5000 {
            var b = good
            for _ in 0..<(1 + Int(rng.next() % 4)) { b[Int(rng.next() % UInt64(b.count))] = UInt8(truncatingIfNeeded: rng.next()) }
            let found = AnswerAddresses.extract(b)
            #expect(found.allSatisfy { $0.bytes.count == 4 || $0.bytes.count == 16 })
        }
    }
}
