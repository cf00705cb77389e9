import Testing
import DNSWire

/// Randomized robustness: mutated valid messages must never crash the parser, and
/// whatever it accepts must satisfy the parser's own guarantees.
@Suite("DNSMessage.parse (randomized)")
struct DNSFuzzTests {
    static let seeds: [[UInt8]] = [
        makeQuery(labels: ["www", "example", "com"]),
        makeQuery(flags: 0x0100, labels: ["a"], type: 28, opt: optBytes(flags: 0x8000)),
        makeQuery(labels: ["x"], opt: optBytes(rdata: be16(10) + be16(8) + [1, 2, 3, 4, 5, 6, 7, 8])),
        makeQuery(labels: [label(63), label(63), label(63), label(61)]),
        CompressedResponse().bytes,
        pointerChainMessage(hops: 20),
        headerBytes(id: 0x0161, flags: 0x0001) + pointer(0) + be16(1) + be16(1),
        headerBytes() + questionBytes([0]),
    ]

    static func mutate(_ input: [UInt8], using rng: inout SplitMix64) -> [UInt8] {
        var b = input
        let rounds = Int.random(in: 1...4, using: &rng)
        for _ in 0..<rounds {
            switch Int.random(in: 0..<9, using: &rng) {
            case 0 where !b.isEmpty:  // replace a byte
                b[Int.random(in: 0..<b.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
            case 1 where !b.isEmpty:  // flip one bit
                let i = Int.random(in: 0..<b.count, using: &rng)
                b[i] ^= 1 << UInt8.random(in: 0...7, using: &rng)
            case 2:  // truncate
                b = Array(b.prefix(Int.random(in: 0...b.count, using: &rng)))
            case 3:  // insert random bytes
                let at = Int.random(in: 0...b.count, using: &rng)
                let n = Int.random(in: 1...8, using: &rng)
                b.insert(contentsOf: (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) }, at: at)
            case 4 where !b.isEmpty:  // delete a range
                let at = Int.random(in: 0..<b.count, using: &rng)
                let n = Int.random(in: 1...min(8, b.count - at), using: &rng)
                b.removeSubrange(at..<(at + n))
            case 5 where !b.isEmpty:  // plant a compression pointer
                let i = Int.random(in: 0..<b.count, using: &rng)
                b[i] = 0xC0 | UInt8.random(in: 0...0x3F, using: &rng) & 0x01
                if i + 1 < b.count { b[i + 1] = UInt8.random(in: 0...UInt8(min(255, b.count)), using: &rng) }
            case 6 where b.count >= 12:  // tweak a header count
                let field = 4 + 2 * Int.random(in: 0..<4, using: &rng)
                b[field] = 0
                b[field + 1] = UInt8.random(in: 0...3, using: &rng)
            case 7 where !b.isEmpty:  // plant a length-ish byte
                b[Int.random(in: 0..<b.count, using: &rng)] = [0, 1, 63, 64, 0x80, 0xFF].randomElement(using: &rng)!
            case 8 where !b.isEmpty:  // duplicate a region
                let at = Int.random(in: 0..<b.count, using: &rng)
                let n = Int.random(in: 1...min(16, b.count - at), using: &rng)
                b.insert(contentsOf: b[at..<(at + n)], at: Int.random(in: 0...b.count, using: &rng))
            default:
                b.append(UInt8.random(in: 0...255, using: &rng))
            }
        }
        return b
    }

    /// Checks every guarantee the parser makes about a message it accepted.
    static func checkAccepted(_ m: DNSMessage, _ b: [UInt8]) {
        #expect(b.count >= DNSHeader.size)
        #expect(m.length <= b.count)
        #expect(m.questionEnd >= DNSHeader.size + 5)
        #expect(m.questionEnd <= m.length)
        #expect(m.header.qdcount == 1)
        #expect(m.question.name.wire.count <= 255)
        #expect(labelsOf(m.question.name.wire) != nil, "malformed name wire \(m.question.name.wire)")
        let h = b.withUnsafeBytes { p in Result { () throws(DNSWireError) in try DNSMessage.header(p) } }
        #expect((try? h.get()) == m.header)
        if let e = m.edns {
            #expect(e.payloadSizeOffset > m.questionEnd)
            #expect(e.payloadSizeOffset + 2 <= m.length)
            #expect(e.payloadSize == UInt16(b[e.payloadSizeOffset]) << 8 | UInt16(b[e.payloadSizeOffset + 1]))
            #expect(b[e.payloadSizeOffset - 2] == 0 && b[e.payloadSizeOffset - 1] == 41)
            #expect(b[e.payloadSizeOffset - 3] == 0)
            #expect(m.header.arcount >= 1)
        }
        // The first `length` bytes are the whole message (the forwarder relays exactly
        // them), so they must parse the same on their own.
        if let again = try? DNSMessage.parse(Array(b.prefix(m.length))) {
            #expect(again.length == m.length)
            #expect(again.question.name.wire == m.question.name.wire)
            #expect(again.edns == m.edns)
        } else {
            // Regression (found by this test): a label reached through a backward pointer
            // must not run past the pointer, so `length` bytes always parse on their own.
            Issue.record("prefix of length \(m.length) no longer parses: \(b)")
        }
        // An error response to anything we accepted must itself parse.
        let resp = DNSResponseBuilder.errorResponse(to: m, rcode: .servFail)
        if let r = try? DNSMessage.parse(resp) {
            #expect(r.question.name.wire == m.question.name.wire)
            #expect((r.edns == nil) == (m.edns == nil))
            #expect(r.length == resp.count)
        } else {
            Issue.record("errorResponse does not parse for input \(b)")
        }
    }

    @Test func mutatedMessagesNeverCrashAndAcceptedOnesAreConsistent() {
        var rng = SplitMix64(seed: 0x6D61_726B_646E_7331)
        var accepted = 0
        var rejected: [String: Int] = [:]
        for _ in 0..<20_000 {
            let seed = Self.seeds.randomElement(using: &rng)!
            let b = Self.mutate(seed, using: &rng)
            do {
                let m = try DNSMessage.parse(b)
                accepted += 1
                Self.checkAccepted(m, b)
            } catch {
                rejected["\(error)", default: 0] += 1
                if b.count < DNSHeader.size {
                    #expect(error == .truncatedHeader)
                } else {
                    #expect(error != .truncatedHeader)
                }
            }
        }
        // The mutations must exercise both outcomes and several rejection reasons,
        // or this test proves little.
        #expect(accepted > 1_000)
        #expect(rejected.values.reduce(0, +) > 1_000)
        for reason in ["truncated", "truncatedHeader", "badLabel", "badPointer", "badQuestionCount"] {
            #expect(rejected[reason, default: 0] > 0, "no input rejected as \(reason): \(rejected)")
        }
    }

    @Test func randomBytesNeverCrash() {
        var rng = SplitMix64(seed: 42)
        for _ in 0..<20_000 {
            let n = Int.random(in: 0...300, using: &rng)
            var b = (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) }
            if b.count >= 6, Bool.random(using: &rng) { b[4] = 0; b[5] = 1 }  // qdcount 1
            if let m = try? DNSMessage.parse(b) { Self.checkAccepted(m, b) }
        }
    }

    @Test func sameSeedSameSequence() {
        var a = SplitMix64(seed: 7), b = SplitMix64(seed: 7)
        for _ in 0..<100 { #expect(a.next() == b.next()) }
    }
}
