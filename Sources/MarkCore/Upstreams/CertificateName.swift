/// Whether a server certificate is for the name an upstream was given (`tls://ADDR#NAME`),
/// from the certificate's subjectAltName DNS entries (RFC 6125 6.4): case-insensitive, a
/// trailing dot ignored, and a wildcard only as the whole leftmost label (`*.example.net`
/// matches `dns.example.net`, not `example.net` or `a.dns.example.net`). IP entries and the
/// subject's common name never stand in for a name: a certificate that NIOSSL accepts for
/// the connected address (an IP entry) is still refused when it does not carry the name.
public enum CertificateName {
    public static func matches(_ name: String, dnsNames: [[UInt8]]) -> Bool {
        let wanted = normalised(Array(name.utf8))
        guard !wanted.isEmpty else { return false }
        return dnsNames.contains { matches(wanted, pattern: normalised($0)) }
    }

    private static func normalised(_ bytes: [UInt8]) -> [UInt8] {
        var b = bytes.map { $0 >= 0x41 && $0 <= 0x5A ? $0 | 0x20 : $0 }
        if b.last == 0x2E { b.removeLast() }
        return b
    }

    private static func matches(_ name: [UInt8], pattern: [UInt8]) -> Bool {
        guard !pattern.isEmpty else { return false }
        guard pattern.count > 2, pattern[0] == 0x2A, pattern[1] == 0x2E else { return name == pattern }
        // "*.rest": the name's first label (not empty) followed by exactly ".rest"; rest must
        // have two labels at least (no "*.net").
        let rest = pattern[1...]
        guard rest.dropFirst().contains(0x2E), let dot = name.firstIndex(of: 0x2E), dot > 0 else { return false }
        return name[dot...].elementsEqual(rest)
    }
}
