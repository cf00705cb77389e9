import Foundation
import Testing
import DNSWire

/// Inputs the libFuzzer target (Sources/MarkdnsFuzz) found, kept in Tests/Fuzz/regressions,
/// and the seed corpus of real dig queries and dnsmasq answers in Tests/Fuzz/corpus.
@Suite("Fuzzer findings and seed corpus")
struct DNSFuzzRegressionTests {
    static let fuzzDir = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fuzz")

    static func files(_ dir: String) -> [(String, [UInt8])] {
        let url = fuzzDir.appendingPathComponent(dir)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? []
        return names.sorted().compactMap { name in
            (try? Data(contentsOf: url.appendingPathComponent(name))).map { (name, Array($0)) }
        }
    }

    /// Found by the fuzzer (invariant "setID changed the parse"): an additional record
    /// whose owner is a compression pointer to offset 0, so its name was read from the ID.
    /// A forwarder rewrites the ID, after which the relayed message parsed differently or
    /// not at all. Pointers into the header are now rejected.
    @Test func ownerPointingIntoTheHeaderIsRejected() throws {
        let input = try #require(Self.files("regressions").first { $0.0 == "pointer-into-header" }?.1)
        #expect(input[125] == 0xC0 && input[126] == 0x00, "the record owner at 125 points at the ID")
        #expect(throws: DNSWireError.badPointer) { try DNSMessage.parse(input) }
    }

    /// Found by the fuzzer (invariant "cached answer does not parse"): a record owner that
    /// points into an earlier record's TTL field reads its name from the TTL, which the cache
    /// counts down, so the served answer had other names or did not parse at all. The TTL
    /// walk now refuses such a message, and the cache does not store what it refuses.
    @Test func ownerReadFromATTLFieldIsRefusedByTheTTLWalk() throws {
        let input = try #require(Self.files("regressions").first { $0.0 == "owner-pointer-into-ttl" }?.1)
        let m = try DNSMessage.parse(input)
        let walk = input.withUnsafeBytes { p in Result { () throws(DNSWireError) in try DNSRecordTTLs.read(p, message: m) } }
        #expect(throws: DNSWireError.badPointer) { try walk.get() }
        // The same shape, small: answer 1's TTL bytes spell the name "a." (01 61 00), and
        // answer 2's owner points at them. Pointing at the question instead is fine.
        let header = headerBytes(flags: 0x8180, qd: 1, an: 2) + questionBytes(wireName("x"))
        let first = rrBytes(owner: pointer(12), type: 1, ttl: 0x0161_0000, rdata: [1, 2, 3, 4])
        let ttlAt = header.count + 2 + 4
        for (target, refused) in [(ttlAt, true), (12, false)] {
            let b = header + first + rrBytes(owner: pointer(target), type: 1, rdata: [5, 6, 7, 8])
            let msg = try DNSMessage.parse(b)
            let r = b.withUnsafeBytes { p in Result { () throws(DNSWireError) in try DNSRecordTTLs.read(p, message: msg) } }
            if refused {
                #expect(throws: DNSWireError.badPointer) { try r.get() }
            } else {
                #expect(try r.get().offsets == [ttlAt, b.count - 4 - 2 - 4])
            }
        }
    }

    /// What the fuzzer checks for every accepted message, here for every kept input: the
    /// parse does not depend on the ID, which markdns rewrites on every relay.
    @Test func acceptedMessagesParseTheSameWhateverTheID() throws {
        let inputs = Self.files("corpus") + Self.files("regressions")
        #expect(Self.files("corpus").count >= 12, "seed corpus missing")
        var accepted = 0
        for (name, bytes) in inputs {
            guard let m = try? DNSMessage.parse(bytes) else { continue }
            accepted += 1
            for id: UInt16 in [0, 0x0101, 0xC00C, 0x3F3F, 0xFFFF] {
                var copy = bytes
                copy.withUnsafeMutableBytes { DNSRewrite.setID(id, in: $0) }
                let again = try? DNSMessage.parse(copy)
                #expect(again?.header.id == id, "\(name)")
                #expect(again?.question == m.question && again?.length == m.length && again?.edns == m.edns,
                        "\(name) parses differently with ID \(id)")
            }
        }
        #expect(accepted >= 12, "the real queries and answers of the corpus must parse")
    }
}
