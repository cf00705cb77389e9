import Testing
import DNSWire

@Suite("DNSRewrite")
struct DNSRewriteTests {
    @Test func setIDChangesOnlyTheFirstTwoBytes() throws {
        let original = makeQuery(id: 0x1111, labels: ["example", "com"], opt: optBytes())
        var bytes = original
        bytes.withUnsafeMutableBytes { DNSRewrite.setID(0xABCD, in: $0) }
        #expect(Array(bytes[0..<2]) == [0xAB, 0xCD])
        #expect(bytes[2...] == original[2...])
        let m = try DNSMessage.parse(bytes)
        #expect(m.header.id == 0xABCD)
        #expect(m.question == (try DNSMessage.parse(original)).question)
    }

    @Test func setIDOnTwoByteBuffer() {
        var bytes: [UInt8] = [0, 0]
        bytes.withUnsafeMutableBytes { DNSRewrite.setID(0x00FF, in: $0) }
        #expect(bytes == [0x00, 0xFF])
        bytes.withUnsafeMutableBytes { DNSRewrite.setID(0xFF00, in: $0) }
        #expect(bytes == [0xFF, 0x00])
    }

    @Test func setPayloadSizeRewritesTheOPTClassInPlace() throws {
        let original = CompressedResponse().bytes
        let offset = try #require(try DNSMessage.parse(original).edns).payloadSizeOffset
        var bytes = original
        bytes.withUnsafeMutableBytes { DNSRewrite.setPayloadSize(0x0200, at: offset, in: $0) }
        let edns = try #require(try DNSMessage.parse(bytes).edns)
        #expect(edns.payloadSize == 512)
        #expect(edns.payloadSizeOffset == offset)
        #expect(edns.dnssecOK)
        for i in bytes.indices where i != offset && i != offset + 1 {
            #expect(bytes[i] == original[i], "byte \(i) changed")
        }
    }

    @Test func setPayloadSizeAtTheVeryEnd() {
        var bytes: [UInt8] = [9, 9, 9, 9]
        bytes.withUnsafeMutableBytes { DNSRewrite.setPayloadSize(0xBEEF, at: 2, in: $0) }
        #expect(bytes == [9, 9, 0xBE, 0xEF])
    }

    @Test(arguments: [
        (UInt16(0), UInt16(512)),
        (1, 512),
        (511, 512),
        (512, 512),
        (513, 513),
        (1000, 1000),
        (1231, 1231),
        (1232, 1232),
        (1233, 1232),
        (4096, 1232),
        (65535, 1232),
    ])
    func upstreamPayloadSize(_ pair: (UInt16, UInt16)) {
        #expect(DNSRewrite.upstreamPayloadSize(forClient: pair.0) == pair.1, "client \(pair.0)")
    }

    @Test func upstreamPayloadSizeForEveryClientValue() {
        for client in UInt16.min...UInt16.max {
            let s = DNSRewrite.upstreamPayloadSize(forClient: client)
            // Within 512...1232.
            if s < 512 || s > 1232 { Issue.record("client \(client) -> \(s) out of range"); return }
            // Never above what the client takes (sizes below 512 mean 512, RFC 6891 6.2.5).
            if s > max(client, 512) { Issue.record("client \(client) -> \(s) above client"); return }
            // Unchanged when the client's own value is already in range.
            if (512...1232).contains(client), s != client {
                Issue.record("client \(client) -> \(s) changed an in-range value"); return
            }
        }
    }
}
