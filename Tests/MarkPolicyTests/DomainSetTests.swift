import Testing
@testable import MarkPolicy

@Suite("Domain sets and names")
struct DomainSetTests {
    static func wire(_ labels: [String]) -> [UInt8] {
        labels.flatMap { [UInt8($0.utf8.count)] + Array($0.utf8) } + [0]
    }

    @Test func suffixSemantics() {
        let s = DomainSet(["example.com", "Ads.Example.NET."])
        #expect(s.contains("example.com"))
        #expect(s.contains("example.com."))
        #expect(s.contains("a.example.com"))
        #expect(s.contains("A.B.EXAMPLE.COM."))
        #expect(!s.contains("badexample.com"), "a suffix only counts at a label boundary")
        #expect(!s.contains("com"))
        #expect(!s.contains("example.co"))
        #expect(!s.contains("example.com.evil"))
        #expect(s.contains("ads.example.net"))
        #expect(s.contains("x.ads.example.net"))
        #expect(!s.contains("example.net"), "a parent of a listed name is not listed")
        #expect(!s.contains("."))
        #expect(!s.contains(""))
        #expect(!s.contains("a..example.com"), "malformed names match nothing")
    }

    @Test func wireNames() {
        let s = DomainSet(["example.com"])
        #expect(s.contains(wireName: Self.wire(["www", "EXAMPLE", "com"])))
        #expect(s.contains(wireName: Self.wire(["example", "com"])))
        #expect(!s.contains(wireName: Self.wire(["badexample", "com"])))
        #expect(!s.contains(wireName: Self.wire(["com"])))
        #expect(!s.contains(wireName: [0]))
        #expect(!s.contains(wireName: [3, 0x77, 0x77]), "truncated")
        #expect(!s.contains(wireName: [7] + Array("example".utf8) + [3] + Array("com".utf8)), "no root label")
        #expect(!s.contains(wireName: Self.wire(["example", "com"]) + [0]), "bytes after the root label")
    }

    @Test func emptySetAndDuplicates() {
        #expect(!DomainSet().contains("example.com"))
        #expect(DomainSet(["a.example", "A.EXAMPLE.", "a.example"]).count == 1)
    }

    @Test func normalization() throws {
        #expect(try DomainName.normalize("WWW.Example.COM.").get() == "www.example.com")
        #expect(try DomainName.normalize("_dmarc.example").get() == "_dmarc.example")
        #expect(try DomainName.normalize("lan").get() == "lan")
        for bad in ["", ".", "a..b", "*.example.com", "exa mple.com", "||ads.example^", "bücher.example",
                    String(repeating: "a", count: 64) + ".com"] {
            #expect(throws: DomainName.NameError.self, "\(bad)") { try DomainName.normalize(bad).get() }
        }
        #expect(throws: DomainName.NameError.self) {
            try DomainName.normalize(Array(repeating: "abcdefghi", count: 26).joined(separator: ".")).get()
        }
    }
}
