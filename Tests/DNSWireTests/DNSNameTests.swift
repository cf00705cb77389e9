import Testing
import DNSWire

@Suite("DNSName")
struct DNSNameTests {
    @Test func textBuildsUncompressedWire() throws {
        let n = try #require(DNSName("www.example.com"))
        #expect(n.wire == [3] + Array("www".utf8) + [7] + Array("example".utf8)
                + [3] + Array("com".utf8) + [0])
        #expect(n.description == "www.example.com.")
    }

    @Test func trailingDotIsOptional() throws {
        let a = try #require(DNSName("www.example.com"))
        let b = try #require(DNSName("www.example.com."))
        #expect(a.wire == b.wire)
    }

    @Test(arguments: ["", "."])
    func rootFromText(_ text: String) throws {
        let n = try #require(DNSName(text))
        #expect(n.wire == [0])
        #expect(n == DNSName.root)
        #expect(n.description == ".")
    }

    @Test func rootConstant() {
        #expect(DNSName.root.wire == [0])
        #expect(DNSName.root.description == ".")
    }

    @Test(arguments: ["..", "a..b", ".a", "a.b..", "...", "a. .b.."])
    func emptyLabelsAreRejected(_ text: String) {
        // "a. .b.." has a non-empty " " label but ends in an empty one.
        #expect(DNSName(text) == nil, "\(text)")
    }

    @Test func singleSpaceLabelIsAllowedAndEscaped() throws {
        let n = try #require(DNSName("a. .b"))
        #expect(n.wire == [1, 0x61, 1, 0x20, 1, 0x62, 0])
        #expect(n.description == "a.\\032.b.")
    }

    @Test func labelLengthLimit() throws {
        let ok = try #require(DNSName(label(63) + ".com"))
        #expect(ok.wire.count == 1 + 63 + 1 + 3 + 1)
        #expect(ok.wire[0] == 63)
        #expect(DNSName(label(64) + ".com") == nil)
        #expect(DNSName("com." + label(64)) == nil)
        #expect(DNSName(label(64)) == nil)
    }

    @Test func nameLengthLimit() throws {
        // 3 * (1 + 63) + (1 + 61) + 1 = 255: the longest legal name.
        let max = [label(63), label(63), label(63), label(61)].joined(separator: ".")
        let n = try #require(DNSName(max))
        #expect(n.wire.count == 255)
        #expect(try #require(DNSName(max + ".")).wire.count == 255)
        // One byte more.
        let over = [label(63), label(63), label(63), label(62)].joined(separator: ".")
        #expect(DNSName(over) == nil)
        // Many short labels: 127 one-byte labels = 255, 128 = 257.
        let short127 = Array(repeating: "a", count: 127).joined(separator: ".")
        #expect(try #require(DNSName(short127)).wire.count == 255)
        let short128 = Array(repeating: "a", count: 128).joined(separator: ".")
        #expect(DNSName(short128) == nil)
    }

    @Test func nonASCIILabelLengthCountsUTF8Bytes() throws {
        // "é" is two UTF-8 bytes; 31 of them make a 62-byte label, 32 make 64.
        let ok = try #require(DNSName(String(repeating: "é", count: 31)))
        #expect(ok.wire.first == 62)
        #expect(DNSName(String(repeating: "é", count: 32)) == nil)
    }

    @Test func equalityIgnoresASCIICase() throws {
        let a = try #require(DNSName("Example.COM"))
        let b = try #require(DNSName("example.com"))
        let c = try #require(DNSName("EXAMPLE.com."))
        #expect(a == b)
        #expect(b == c)
        #expect(a.hashValue == b.hashValue)
        #expect(a.hashValue == c.hashValue)
        #expect(Set([a, b, c]).count == 1)
        // Case is preserved in the stored bytes and in the description.
        #expect(a.wire != b.wire)
        #expect(a.description == "Example.COM.")
    }

    @Test(arguments: [
        ("example.com", "example.co"),
        ("example.com", "exampla.com"),
        ("example.com", "www.example.com"),
        ("a.bc", "ab.c"),       // same letters, different label boundaries
        ("a@", "a`"),           // 0x40 vs 0x60: differ by 0x20, but not letters
        ("a[", "a{"),           // 0x5B vs 0x7B
        ("a]", "a}"),           // 0x5D vs 0x7D
        ("a^", "a~"),           // 0x5E vs 0x7E
        ("É", "é"),             // UTF-8 C3 89 vs C3 A9: only ASCII is case-folded
    ])
    func differentNamesAreNotEqual(_ pair: (String, String)) throws {
        let a = try #require(DNSName(pair.0))
        let b = try #require(DNSName(pair.1))
        #expect(a != b, "\(pair.0) vs \(pair.1)")
        #expect(Set([a, b]).count == 2)
    }

    @Test func usableAsDictionaryKeyCaseInsensitively() throws {
        var d: [DNSName: Int] = [:]
        d[try #require(DNSName("WWW.Example.Com"))] = 1
        d[try #require(DNSName("www.example.com"))] = 2
        #expect(d.count == 1)
        #expect(d[try #require(DNSName("wWw.eXaMpLe.CoM."))] == 2)
    }

    @Test func descriptionEscapesUnprintableAndSpecialBytes() throws {
        #expect(try #require(DNSName("a\\b")).description == "a\\092b.")
        #expect(try #require(DNSName("é")).description == "\\195\\169.")
        #expect(try #require(DNSName("a\u{7F}")).description == "a\\127.")
        #expect(try #require(DNSName("a\u{01}")).description == "a\\001.")
        #expect(try #require(DNSName("!~")).description == "!~.")
    }

    @Test func descriptionEscapesDotsInsideLabels() throws {
        // A label containing a dot can only arrive on the wire.
        let q = headerBytes() + questionBytes([3, 0x61, 0x2E, 0x62, 3] + Array("com".utf8) + [0])
        let m = try DNSMessage.parse(q)
        #expect(m.question.name.description == "a\\046b.com.")
        #expect(m.question.name != DNSName("a.b.com"))
    }

    @Test func questionDescription() throws {
        let q = DNSQuestion(name: try #require(DNSName("Example.org")), type: 28)
        #expect(q.qclass == 1)
        #expect(q.description == "Example.org. type28 class1")
    }

    @Test func questionWrite() throws {
        let q = DNSQuestion(name: try #require(DNSName("a.b")), type: 0x1234, qclass: 0xABCD)
        var out: [UInt8] = [0xFF]
        q.write(into: &out)
        #expect(out == [0xFF, 1, 0x61, 1, 0x62, 0, 0x12, 0x34, 0xAB, 0xCD])
    }

    @Test func questionEqualityUsesNameCaseInsensitively() throws {
        let a = DNSQuestion(name: try #require(DNSName("A.example")), type: 1)
        let b = DNSQuestion(name: try #require(DNSName("a.EXAMPLE")), type: 1)
        let c = DNSQuestion(name: try #require(DNSName("a.example")), type: 28)
        let d = DNSQuestion(name: try #require(DNSName("a.example")), type: 1, qclass: 3)
        #expect(a == b)
        #expect(a.hashValue == b.hashValue)
        #expect(a != c)
        #expect(a != d)
    }
}
