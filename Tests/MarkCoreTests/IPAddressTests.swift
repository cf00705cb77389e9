import Testing
import MarkCore

@Suite("IPAddress")
struct IPAddressTests {
    @Test(arguments: [
        ("1.2.3.4", [UInt8(1), 2, 3, 4]),
        ("0.0.0.0", [0, 0, 0, 0]),
        ("255.255.255.255", [255, 255, 255, 255]),
        ("192.168.0.1", [192, 168, 0, 1]),
        ("10.0.0.255", [10, 0, 0, 255]),
    ])
    func validV4(_ c: (String, [UInt8])) throws {
        let a = try #require(IPAddress(c.0))
        #expect(!a.isIPv6)
        #expect(a.bytes == c.1)
        #expect(a == .v4(c.1[0], c.1[1], c.1[2], c.1[3]))
        #expect(a.description == c.0)
    }

    @Test(arguments: [
        ("::1", [UInt8](repeating: 0, count: 15) + [1]),
        ("::", [UInt8](repeating: 0, count: 16)),
        ("2001:db8::53", [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 10) + [0, 0x53]),
        ("fe80::1:2", [0xfe, 0x80] + [UInt8](repeating: 0, count: 10) + [0, 1, 0, 2]),
        ("::ffff:1.2.3.4", [UInt8](repeating: 0, count: 10) + [0xff, 0xff, 1, 2, 3, 4]),
        ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", [UInt8](repeating: 0xff, count: 16)),
    ])
    func validV6(_ c: (String, [UInt8])) throws {
        let a = try #require(IPAddress(c.0))
        #expect(a.isIPv6)
        #expect(a.bytes == c.1)
        #expect(a.bytes.count == 16)
        #expect(a.description == c.0)
    }

    @Test(arguments: [
        ("2001:DB8:0:0:0:0:0:53", "2001:db8::53"),
        ("0:0:0:0:0:0:0:1", "::1"),
        ("2001:0db8:0000:0000:0001:0000:0000:0001", "2001:db8::1:0:0:1"),
        ("::FFFF:10.0.0.1", "::ffff:10.0.0.1"),
    ])
    func v6DescriptionIsCanonical(_ c: (String, String)) throws {
        let a = try #require(IPAddress(c.0))
        #expect(a.description == c.1)
        #expect(IPAddress(c.1) == a)
        #expect(IPAddress(a.description) == a)
    }

    @Test(arguments: [
        "", "1.2.3", "1.2.3.4.5", "256.1.1.1", "1.2.3.-4", "a.b.c.d", " 1.2.3.4", "1.2.3.4 ",
        "1.2.3.4/32", "::1::", ":::", "1::2::3", "12345::", "g::1", "[::1]", "fe80::1%eth0",
        "::1:", "1.2.3.4:53", "localhost", "0x7f.0.0.1",
    ])
    func invalid(_ text: String) {
        #expect(IPAddress(text) == nil, "'\(text)'")
    }

    @Test func isUnspecified() throws {
        #expect(try #require(IPAddress("0.0.0.0")).isUnspecified)
        #expect(try #require(IPAddress("::")).isUnspecified)
        #expect(try #require(IPAddress("0:0:0:0:0:0:0:0")).isUnspecified)
        #expect(!(try #require(IPAddress("0.0.0.1")).isUnspecified))
        #expect(!(try #require(IPAddress("1.0.0.0")).isUnspecified))
        #expect(!(try #require(IPAddress("::1")).isUnspecified))
        #expect(!(try #require(IPAddress("8000::")).isUnspecified))
        // ::ffff:0.0.0.0 is not the unspecified address.
        #expect(!(try #require(IPAddress("::ffff:0.0.0.0")).isUnspecified))
    }

    @Test func fromBytes() throws {
        #expect(IPAddress(bytes: [10, 1, 2, 3]) == IPAddress("10.1.2.3"))
        let v6 = [UInt8](repeating: 0, count: 15) + [1]
        #expect(IPAddress(bytes: v6) == IPAddress("::1"))
        #expect(IPAddress(bytes: []) == nil)
        #expect(IPAddress(bytes: [1, 2, 3]) == nil)
        #expect(IPAddress(bytes: [1, 2, 3, 4, 5]) == nil)
        #expect(IPAddress(bytes: [UInt8](repeating: 1, count: 15)) == nil)
        #expect(IPAddress(bytes: [UInt8](repeating: 1, count: 17)) == nil)
    }

    @Test func v4AndV4MappedV6AreDifferent() throws {
        let v4 = try #require(IPAddress("1.2.3.4"))
        let mapped = try #require(IPAddress("::ffff:1.2.3.4"))
        #expect(v4 != mapped)
        #expect(Set([v4, mapped]).count == 2)
    }

    @Test func equalityAndHashingAcrossSpellings() throws {
        let a = try #require(IPAddress("2001:db8::1"))
        let b = try #require(IPAddress("2001:0DB8:0:0::0001"))
        #expect(a == b)
        #expect(a.hashValue == b.hashValue)
        var d: [IPAddress: Int] = [a: 1]
        d[b] = 2
        #expect(d.count == 1)
    }

    @Test func descriptionRoundTripForManyAddresses() throws {
        var state: UInt64 = 0x1234_5678
        func next() -> UInt8 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return UInt8(truncatingIfNeeded: state >> 33)
        }
        for i in 0..<2_000 {
            // Mix in zero runs so "::" compression is exercised.
            let bytes4 = (0..<4).map { _ in next() }
            let a4 = try #require(IPAddress(bytes: bytes4))
            #expect(IPAddress(a4.description) == a4)
            let bytes16 = (0..<16).map { j in (i + j) % 3 == 0 ? 0 : next() }
            let a6 = try #require(IPAddress(bytes: bytes16))
            #expect(IPAddress(a6.description) == a6, "\(bytes16) -> \(a6.description)")
        }
    }
}

@Suite("IPAddress.withUnsafeBytes")
struct IPAddressRawBytesTests {
    @Test(arguments: ["192.0.2.1", "0.0.0.0", "255.254.253.252", "2001:db8::1", "::", "fd00:1:2:3:4:5:6:7"])
    func sameBytesAsTheArray(_ text: String) {
        let a = IPAddress(text)!
        #expect(a.withUnsafeBytes { Array($0) } == a.bytes)
    }
}
