import Testing
import MarkCore
@testable import MarkPolicy

/// `[sessions] portal-tls-cert` / `portal-tls-key`: both or neither, with `portal-api`, each
/// file read (relative to the policy file) and checked; errors name file:line and key.
@Suite("Captive Portal API TLS keys of the policy")
struct PortalTLSPolicyTests {
    typealias F = Fixtures

    static let head = "[[pool]]\nname = \"main\"\nservers = [\"192.0.2.1\"]\n\n[sessions]\nportal-api = \"127.0.0.1:8908\"\n"
    static let cert = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    static let key = "-----BEGIN PRIVATE KEY-----\nMIGH\n-----END PRIVATE KEY-----\n"
    static let files = ["/etc/markdns/portal.pem": cert, "/etc/markdns/portal.key": key]

    @Test func bothFilesAreReadRelativeToThePolicy() throws {
        let c = try F.load(Self.head + "portal-tls-cert = \"portal.pem\"\nportal-tls-key = \"/etc/markdns/portal.key\"\n",
                           files: Self.files)
        #expect(c.sessions.portalTLS == PortalTLSFiles(certFile: "/etc/markdns/portal.pem", keyFile: "/etc/markdns/portal.key",
                                                       certPEM: Self.cert, keyPEM: Self.key))
    }

    @Test func neitherIsPlainHTTP() throws {
        #expect(try F.load(Self.head).sessions.portalTLS == nil)
    }

    @Test(arguments: [
        ("portal-tls-cert = \"portal.pem\"\n", 7, "sessions.portal-tls-cert", "needs portal-tls-key too (the certificate's private key)"),
        ("portal-tls-key = \"portal.key\"\n", 7, "sessions.portal-tls-key", "needs portal-tls-cert too (the certificate it is the key of)"),
        ("portal-tls-cert = \"gone.pem\"\nportal-tls-key = \"portal.key\"\n", 7, "sessions.portal-tls-cert",
         "cannot read '/etc/markdns/gone.pem': no such file"),
        ("portal-tls-cert = \"portal.pem\"\nportal-tls-key = \"gone.key\"\n", 8, "sessions.portal-tls-key",
         "cannot read '/etc/markdns/gone.key': no such file"),
        ("portal-tls-cert = \"portal.key\"\nportal-tls-key = \"portal.key\"\n", 7, "sessions.portal-tls-cert",
         "'/etc/markdns/portal.key' holds no PEM certificate"),
        ("portal-tls-cert = \"portal.pem\"\nportal-tls-key = \"portal.pem\"\n", 8, "sessions.portal-tls-key",
         "'/etc/markdns/portal.pem' holds no PEM private key"),
        ("portal-tls-cert = 1\nportal-tls-key = \"portal.key\"\n", 7, "sessions.portal-tls-cert", nil),
    ] as [(String, Int, String, String?)])
    func errorsNameFileLineAndKey(_ text: String, _ line: Int, _ key: String, _ reason: String?) throws {
        let e = try #require(F.loadError(Self.head + text, files: Self.files))
        #expect(e.file == "/etc/markdns/policy.toml")
        #expect(e.line == line)
        #expect(e.key == key)
        if let reason { #expect(e.reason == reason) }
    }

    @Test func withoutPortalAPIIsAnError() throws {
        let text = "[[pool]]\nname = \"main\"\nservers = [\"192.0.2.1\"]\n\n[sessions]\n"
            + "portal-tls-cert = \"portal.pem\"\nportal-tls-key = \"portal.key\"\n"
        let e = try #require(F.loadError(text, files: Self.files))
        #expect(e.line == 6 && e.key == "sessions.portal-tls-cert")
        #expect(e.reason == "there is no portal-api for it to serve")
    }

    @Test func theInjectedParserRejects() throws {
        let text = Self.head + "portal-tls-cert = \"portal.pem\"\nportal-tls-key = \"portal.key\"\n"
        do {
            _ = try PolicyConfig.load(text: text, file: "/etc/markdns/policy.toml", readFile: { Self.files[$0]! },
                                      checkPEM: { kind, _ in kind == .privateKey ? "cannot be parsed: bad key" : nil })
            Issue.record("loaded")
        } catch {
            #expect(error.line == 8 && error.key == "sessions.portal-tls-key")
            #expect(error.reason == "'/etc/markdns/portal.key' cannot be parsed: bad key")
        }
    }
}
