import Testing
import DNSWire

@Suite("edns-tcp-keepalive asked for in queries")
struct EDNSKeepaliveRequestTests {
    static let cookie: [UInt8] = [0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8]

    /// `copyRequesting` into a buffer with room to spare; nil when it left the query as it
    /// was (then the copy must be the query, byte for byte, and `requestOffset` nil too).
    func requesting(_ query: [UInt8]) -> [UInt8]? {
        var out = [UInt8](repeating: 0xEE, count: query.count + EDNSKeepalive.requestSize + 3)
        let written = out.withUnsafeMutableBytes { o in
            query.withUnsafeBytes { EDNSKeepalive.copyRequesting($0, into: o) }
        }
        let offset = query.withUnsafeBytes { EDNSKeepalive.requestOffset(inQuery: $0) }
        #expect(out[written...].allSatisfy { $0 == 0xEE }, "nothing written past the count")
        if written == query.count {
            #expect(offset == nil)
            #expect(Array(out.prefix(written)) == query)
            return nil
        }
        #expect(written == query.count + EDNSKeepalive.requestSize)
        #expect(offset != nil)
        return Array(out.prefix(written))
    }

    /// How many keepalive options the parsed message's OPT record carries (its options
    /// walked by hand: they must tile the RDATA exactly).
    func keepaliveCount(_ message: [UInt8]) throws -> Int {
        let edns = try #require(try DNSMessage.parse(message).edns)
        var o = edns.payloadSizeOffset + 8
        let end = o + edns.optionsLength
        var count = 0
        while o + 4 <= end {
            if message[o] == 0, message[o + 1] == 11 { count += 1 }
            o += 4 + (Int(message[o + 2]) << 8 | Int(message[o + 3]))
        }
        #expect(o == end)
        return count
    }

    @Test func addedToAnEmptyOPT() throws {
        let query = makeQuery(labels: ["www", "example"], opt: optBytes(payload: 1232))
        let sent = try #require(requesting(query))
        var expected = query
        expected[expected.count - 2] = 0
        expected[expected.count - 1] = 4
        expected += [0, 11, 0, 0]
        #expect(sent == expected)
        #expect(try keepaliveCount(sent) == 1)
        #expect(try DNSMessage.parse(sent).edns?.payloadSize == 1232, "the rest of the OPT untouched")
        #expect(requesting(sent) == nil, "asked once only")
    }

    @Test func addedAfterOtherOptions() throws {
        let query = makeQuery(labels: ["example"], opt: optBytes(flags: 0x8000, rdata: Self.cookie))
        let sent = try #require(requesting(query))
        #expect(sent == Array(query.prefix(query.count - 14)) + [0, 16] + Self.cookie + [0, 11, 0, 0])
        #expect(try keepaliveCount(sent) == 1)
        #expect(try DNSMessage.parse(sent).edns?.dnssecOK == true)
    }

    @Test func afterAnswerAndAuthorityRecords() throws {
        // Counts other than the question's are walked too (names compressed here).
        var m = headerBytes(an: 1, ns: 1, ar: 1) + questionBytes(wireName("a", "example"))
        m += rrBytes(owner: pointer(12), type: 1, rdata: [192, 0, 2, 1])
        m += rrBytes(owner: pointer(14), type: 2, rdata: pointer(12))
        m += optBytes()
        #expect(try keepaliveCount(try #require(requesting(m))) == 1)
    }

    @Test func leftAlone() {
        let name = wireName("example")
        #expect(requesting(makeQuery(labels: ["example"])) == nil, "no OPT: none is added")
        #expect(requesting(makeQuery(labels: ["example"], opt: optBytes(rdata: [0, 11, 0, 0]))) == nil,
                "already asked")
        #expect(requesting(makeQuery(labels: ["example"], opt: optBytes(rdata: Self.cookie + [0, 11, 0, 2, 0, 9]))) == nil,
                "already there, after another option")
        let optFirst = headerBytes(ar: 2) + questionBytes(name) + optBytes() + rrBytes(owner: [0], type: 1, rdata: [192, 0, 2, 1])
        #expect(requesting(optFirst) == nil, "the OPT record is not the last one")
        #expect(requesting(makeQuery(labels: ["example"], opt: optBytes()) + [0]) == nil, "trailing byte")
        let optInAnswers = headerBytes(an: 1) + questionBytes(name) + optBytes()
        #expect(requesting(optInAnswers) == nil, "an OPT outside the additional section is no OPT")
    }

    @Test func malformedLeftAloneWithoutCrashing() {
        let valid = makeQuery(labels: ["www", "example"], opt: optBytes(rdata: Self.cookie))
        for n in 0..<valid.count {
            #expect(requesting(Array(valid.prefix(n))) == nil, "cut to \(n) bytes")
        }
        var long = valid
        long[long.count - 13] = 13  // RDLENGTH one past the end
        #expect(requesting(long) == nil)
        var short = valid
        short[short.count - 13] = 11  // one byte after the RDATA
        #expect(requesting(short) == nil)
        for length: UInt8 in [7, 9, 0xFF] {
            var overrun = valid
            overrun[overrun.count - 9] = length  // the cookie's length no longer tiles the RDATA
            #expect(requesting(overrun) == nil, "option length \(length)")
        }
        var huge = valid
        huge[huge.count - 14] = 0xFF
        huge[huge.count - 13] = 0xFF
        #expect(requesting(huge) == nil)
        var counts = valid
        counts[10] = 0xFF  // ARCOUNT 65281
        #expect(requesting(counts) == nil)
        let loop = headerBytes(ar: 1) + pointer(12) + [0, 1, 0, 1] + optBytes()
        #expect(requesting(loop) == nil, "a name pointing at itself")
    }

    @Test func noRoomLeft() {
        // A query of `32 + padding` bytes: header 12, root question 5, OPT 11, option 4.
        func query(padding: Int) -> [UInt8] {
            let option = [0, 12] + be16(UInt16(padding)) + [UInt8](repeating: 0, count: padding)
            return headerBytes(ar: 1) + questionBytes([0]) + optBytes(rdata: option)
        }
        #expect(query(padding: 65499).count == 65531)
        #expect(requesting(query(padding: 65499))?.count == 65535, "the largest message a TCP length prefix holds")
        #expect(requesting(query(padding: 65500)) == nil)
    }

    /// Mutated queries: each either comes back unchanged or parses with one keepalive.
    @Test func mutationsParseOrStayUnchanged() throws {
        let base = makeQuery(labels: ["www", "example"], opt: optBytes(rdata: Self.cookie))
        var seed: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next(_ n: Int) -> Int {
            seed = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int(seed >> 33) % n
        }
        var changed = 0
        for _ in 0..<5000 {
            var m = base
            for _ in 0...next(3) { m[next(m.count)] = UInt8(next(256)) }
            if next(4) == 0 { m.removeLast(next(m.count)) }
            let sent = requesting(m)  // never crashes, whatever the bytes
            // Queries reach a connection parsed: those that parse must still parse after.
            guard (try? DNSMessage.parse(m)) != nil, let sent else { continue }
            changed += 1
            #expect(try keepaliveCount(sent) == 1, "\(m)")
        }
        #expect(changed > 100)
    }
}
