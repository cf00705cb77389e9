import Testing
import MarkCore

@Suite("Endpoint")
struct EndpointTests {
    func ep(_ a: String, _ p: UInt16) throws -> Endpoint {
        Endpoint(address: try #require(IPAddress(a)), port: p)
    }

    @Test func v4WithPort() throws {
        let e = try Endpoint.parse("1.2.3.4:53")
        #expect(e == (try ep("1.2.3.4", 53)))
        #expect(!e.address.isIPv6)
        #expect(e.description == "1.2.3.4:53")
    }

    @Test func explicitPortWinsOverDefault() throws {
        #expect(try Endpoint.parse("1.2.3.4:5300", defaultPort: 53).port == 5300)
        #expect(try Endpoint.parse("[::1]:5300", defaultPort: 53).port == 5300)
    }

    @Test func bracketedV6WithPort() throws {
        let e = try Endpoint.parse("[::1]:5353")
        #expect(e == (try ep("::1", 5353)))
        #expect(e.address.isIPv6)
        #expect(e.description == "[::1]:5353")
        let f = try Endpoint.parse("[2001:db8::53]:65535")
        #expect(f == (try ep("2001:db8::53", 65535)))
    }

    @Test func bareV6UsesDefaultPort() throws {
        #expect(try Endpoint.parse("::1", defaultPort: 53) == (try ep("::1", 53)))
        #expect(try Endpoint.parse("2001:db8::1", defaultPort: 853) == (try ep("2001:db8::1", 853)))
        #expect(try Endpoint.parse("[::1]", defaultPort: 53) == (try ep("::1", 53)))
    }

    @Test func bareV6WithoutDefaultPort() {
        #expect(throws: Endpoint.ParseError.badPort("")) { try Endpoint.parse("::1") }
        #expect(throws: Endpoint.ParseError.badPort("")) { try Endpoint.parse("[::1]") }
    }

    @Test func v4WithoutPort() throws {
        #expect(try Endpoint.parse("1.2.3.4", defaultPort: 53) == (try ep("1.2.3.4", 53)))
        #expect(throws: Endpoint.ParseError.badPort("")) { try Endpoint.parse("1.2.3.4") }
    }

    @Test(arguments: ["0", "70000", "65536", "x", "", "-1", "5 3", "53x", "0x35", "99999999999999999999"])
    func badPortV4(_ port: String) {
        #expect(throws: Endpoint.ParseError.badPort(port), "'\(port)'") {
            try Endpoint.parse("1.2.3.4:\(port)", defaultPort: 53)
        }
    }

    @Test(arguments: ["0", "70000", "x", ""])
    func badPortV6(_ port: String) {
        #expect(throws: Endpoint.ParseError.badPort(port), "'\(port)'") {
            try Endpoint.parse("[::1]:\(port)", defaultPort: 53)
        }
    }

    @Test func portBoundaries() throws {
        #expect(try Endpoint.parse("1.2.3.4:1").port == 1)
        #expect(try Endpoint.parse("1.2.3.4:65535").port == 65535)
    }

    @Test func garbageAfterBracket() {
        #expect(throws: Endpoint.ParseError.badPort("x53")) { try Endpoint.parse("[::1]x53") }
        #expect(throws: Endpoint.ParseError.badPort("]:53")) { try Endpoint.parse("[::1]]:53") }
    }

    @Test func missingBracket() {
        #expect(throws: Endpoint.ParseError.missingBracket("[::1:53")) { try Endpoint.parse("[::1:53") }
        #expect(throws: Endpoint.ParseError.missingBracket("[::1")) {
            try Endpoint.parse("[::1", defaultPort: 53)
        }
    }

    @Test func badAddress() {
        #expect(throws: Endpoint.ParseError.badAddress("1.2.3")) { try Endpoint.parse("1.2.3:53") }
        #expect(throws: Endpoint.ParseError.badAddress("host")) { try Endpoint.parse("host:53") }
        #expect(throws: Endpoint.ParseError.badAddress("")) { try Endpoint.parse(":53") }
        #expect(throws: Endpoint.ParseError.badAddress("")) { try Endpoint.parse("[]:53") }
        #expect(throws: Endpoint.ParseError.badAddress("::1]:53")) { try Endpoint.parse("::1]:53") }
        #expect(throws: Endpoint.ParseError.badAddress("")) { try Endpoint.parse("", defaultPort: 53) }
        #expect(throws: Endpoint.ParseError.badAddress("zz")) { try Endpoint.parse("[zz]:53") }
    }

    @Test func errorDescriptionsMentionTheInput() {
        #expect(Endpoint.ParseError.badAddress("q").description.contains("'q'"))
        #expect(Endpoint.ParseError.badPort("70000").description.contains("'70000'"))
        #expect(Endpoint.ParseError.missingBracket("[::1").description.contains("[ADDR]:PORT"))
    }

    @Test(arguments: ["1.2.3.4:53", "0.0.0.0:5353", "255.255.255.255:65535", "[::1]:53",
                      "[2001:db8::1]:853", "[::]:1", "[::ffff:1.2.3.4]:53"])
    func descriptionRoundTrip(_ text: String) throws {
        let e = try Endpoint.parse(text)
        #expect(e.description == text)
        #expect(try Endpoint.parse(e.description) == e)
    }

    @Test func descriptionIsCanonicalForNonCanonicalInput() throws {
        let e = try Endpoint.parse("[2001:DB8:0::1]:53")
        #expect(e.description == "[2001:db8::1]:53")
        #expect(try Endpoint.parse(e.description) == e)
    }

    @Test func hashable() throws {
        let a = try Endpoint.parse("[::1]:53")
        let b = try Endpoint.parse("::1", defaultPort: 53)
        let c = try Endpoint.parse("[::1]:54")
        #expect(a == b)
        #expect(Set([a, b, c]).count == 2)
    }
}
