import MarkCore
import Testing

@Suite("Certificate names (RFC 6125 DNS-ID)")
struct CertificateNameTests {
    func names(_ n: String...) -> [[UInt8]] { n.map { Array($0.utf8) } }

    @Test func exactCaseAndTrailingDot() {
        #expect(CertificateName.matches("dns.test", dnsNames: names("other.test", "DNS.Test")))
        #expect(CertificateName.matches("dns.test.", dnsNames: names("dns.test")))
        #expect(!CertificateName.matches("wrong.test", dnsNames: names("dns.test")))
        #expect(!CertificateName.matches("dns.test", dnsNames: []))
        #expect(!CertificateName.matches("", dnsNames: names("")))
        #expect(!CertificateName.matches("dns.tes", dnsNames: names("dns.test")))
    }

    @Test func wildcardOnlyAsTheWholeLeftmostLabel() {
        #expect(CertificateName.matches("dns.example.net", dnsNames: names("*.example.net")))
        #expect(!CertificateName.matches("example.net", dnsNames: names("*.example.net")))
        #expect(!CertificateName.matches("a.dns.example.net", dnsNames: names("*.example.net")))
        #expect(!CertificateName.matches("dns.net", dnsNames: names("*.net")))
        #expect(!CertificateName.matches("dns.example.net", dnsNames: names("d*.example.net")))
        #expect(!CertificateName.matches(".example.net", dnsNames: names("*.example.net")))
    }
}
