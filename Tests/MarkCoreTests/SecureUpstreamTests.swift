import Testing
import MarkCore

@Suite("Encrypted upstream forms, pins, digests")
struct SecureUpstreamTests {
    func secure(_ text: String) throws -> StreamUpstream {
        guard case .secure(let s) = try UpstreamAddress.parse(text) else {
            Issue.record("\(text) parsed as plain")
            throw UpstreamAddress.ParseError.badScheme(text)
        }
        return s
    }

    @Test func plainKeepsPort53() throws {
        #expect(try UpstreamAddress.parse("192.0.2.1") == .plain(Endpoint.parse("192.0.2.1:53")))
        #expect(try UpstreamAddress.parse("[2001:db8::1]:5353") == .plain(Endpoint.parse("[2001:db8::1]:5353")))
    }

    @Test func tlsDefaultsAndName() throws {
        let s = try secure("tls://192.0.2.1#dns.example")
        #expect(s.kind == .tls)
        #expect(s.endpoint == (try Endpoint.parse("192.0.2.1:853")))
        #expect(s.serverName == "dns.example")
        #expect(s.description == "tls://192.0.2.1:853#dns.example")
        let v6 = try secure("tls://[2001:db8::53]:8853")
        #expect(v6.endpoint == (try Endpoint.parse("[2001:db8::53]:8853")))
        #expect(v6.serverName == nil)
        #expect(try secure("TLS://192.0.2.1").kind == .tls, "the scheme is case-insensitive")
    }

    @Test func httpsPathPortName() throws {
        let d = try secure("https://192.0.2.1")
        #expect(d.kind == .https(path: "/dns-query"))
        #expect(d.endpoint.port == 443)
        #expect(d.authority == "192.0.2.1")
        let s = try secure("https://[2001:db8::1]:8443/resolve#doh.example")
        #expect(s.kind == .https(path: "/resolve"))
        #expect(s.endpoint == (try Endpoint.parse("[2001:db8::1]:8443")))
        #expect(s.serverName == "doh.example")
        #expect(s.authority == "doh.example:8443")
        #expect(s.description == "https://[2001:db8::1]:8443/resolve#doh.example")
    }

    @Test func badFormsAreErrors() {
        let bad: [(String, UpstreamAddress.ParseError)] = [
            ("quic://192.0.2.1", .badScheme("quic")),
            ("192.0.2.1#dns.example", .nameWithoutTLS("192.0.2.1#dns.example")),
            ("tls://192.0.2.1#bad_name", .badName("bad_name")),
            ("tls://192.0.2.1#", .badName("")),
            ("tls://192.0.2.1#192.0.2.9", .badName("192.0.2.9")),
            ("https://192.0.2.1/a b", .badPath("/a b")),
            ("https://192.0.2.1/q?x", .badPath("/q?x")),
            ("tls://dns.example", .endpoint(.badAddress("dns.example"))),
            ("tls://192.0.2.1:0", .endpoint(.badPort("0"))),
        ]
        for (text, error) in bad {
            #expect(throws: error, "\(text)") { try UpstreamAddress.parse(text) }
        }
    }

    @Test func base64URLForDoHGet() {
        #expect(Base64URL.encode([0xFB, 0xFF]) == "-_8", "URL-safe alphabet, no padding (RFC 8484 6)")
        #expect(Base64URL.encode(Array("fo".utf8)) == "Zm8")
        #expect(Base64URL.encode([UInt8]()) == "")
    }

    @Test func pins() {
        let digest = (0..<32).map { UInt8($0 &* 7 &+ 3) }
        let text = SPKIPin.text(digest)
        #expect(text.hasPrefix("sha256/") && text.hasSuffix("="), "standard alphabet, padded: \(text)")
        #expect(SPKIPin.parse(text) == digest)
        #expect(SPKIPin.matches(digest: digest, pins: [[UInt8](repeating: 0, count: 32), digest]))
        #expect(!SPKIPin.matches(digest: digest, pins: [[UInt8](repeating: 0, count: 32)]))
        #expect(!SPKIPin.matches(digest: digest, pins: []))
        #expect(SPKIPin.parse("sha1/" + text.dropFirst(7)) == nil)
        #expect(SPKIPin.parse(SPKIPin.text([1, 2, 3])) == nil, "32 bytes")
        #expect(SPKIPin.parse(String(text.dropLast())) == nil, "padding required")
        #expect(SPKIPin.parse("sha256/" + "!" + text.dropFirst(8)) == nil, "not base64")
    }
}
