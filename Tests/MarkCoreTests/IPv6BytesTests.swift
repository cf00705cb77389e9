import Glibc
import MarkCore
import Testing

/// IPv6 addresses held inline: the same bytes, order, equality, hashing and text as the
/// array they replace, from text, from bytes and from a kernel `in6_addr`.
@Suite("IPv6Bytes")
struct IPv6BytesTests {
    let sample: [UInt8] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef]

    @Test func bytesKeepTheirOrder() throws {
        let b = try #require(IPv6Bytes(sample))
        #expect(Array(b) == sample)
        #expect(b.count == 16 && b[0] == 0x20 && b[15] == 0xef)
        b.withUnsafeBytes { #expect(Array($0) == sample) }
        #expect(IPAddress(bytes: sample)?.bytes == sample)
        #expect(IPAddress(bytes: sample)?.description == "2001:db8::dead:beef")
    }

    @Test func onlySixteenBytes() {
        #expect(IPv6Bytes([UInt8](repeating: 1, count: 15)) == nil)
        #expect(IPv6Bytes([UInt8](repeating: 1, count: 17)) == nil)
        #expect(IPv6Bytes.zero == IPv6Bytes([UInt8](repeating: 0, count: 16)))
    }

    @Test func fromTextAndFromTheKernelAgree() throws {
        var a = in6_addr()
        #expect(inet_pton(AF_INET6, "2001:db8::dead:beef", &a) == 1)
        let fromKernel = IPAddress.v6(IPv6Bytes(raw: a))
        let fromText = try #require(IPAddress("2001:db8::dead:beef"))
        #expect(fromKernel == fromText)
        #expect(fromKernel.hashValue == fromText.hashValue)
        #expect(fromText.bytes == sample)
    }

    @Test func differentAddressesDiffer() throws {
        var other = sample
        other[15] ^= 1
        let a = try #require(IPv6Bytes(sample)), b = try #require(IPv6Bytes(other))
        #expect(a != b)
        other[15] ^= 1
        other[0] ^= 0x80
        #expect(a != IPv6Bytes(other))
        #expect(Set([IPAddress.v6(a), .v6(b), .v6(a)]).count == 2)
        // An IPv4 address never equals an IPv6 one, even ::a.b.c.d.
        #expect(IPAddress("::192.0.2.1") != IPAddress("192.0.2.1"))
    }
}
