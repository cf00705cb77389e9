import Testing
import MarkPolicy
@testable import Sessions

/// The Captive Portal API's TLS files as NIOSSL loads them (the check `markdns check` and
/// `serve` run, and the server context).
@Suite("Captive Portal API TLS context")
struct PortalTLSTests {
    /// A throwaway self-signed P-256 certificate for portal.test and its key (test data only).
    static let cert = """
-----BEGIN CERTIFICATE-----
MIIBhDCCASmgAwIBAgIUFAsGMDvu9x/IlcFvGrcJtcf4jfwwCgYIKoZIzj0EAwIw
FjEUMBIGA1UEAwwLcG9ydGFsLnRlc3QwIBcNMjYxMjAzMTczMDUxWhgPMjEyNjEx
MDkxNzMwNTFaMBYxFDASBgNVBAMMC3BvcnRhbC50ZXN0MFkwEwYHKoZIzj0CAQYI
KoZIzj0DAQcDQgAEDS9ZirzmxN5OBSHpeFeQQeQeNDjuQSd82DCEFwHwBHxOvYi9
tnhJzbATTLpMqyvZrDi5Xpvl6wrJk37cNHItnKNTMFEwHQYDVR0OBBYEFGfzompU
ZHSggbZaKcxdpNNR/y3nMB8GA1UdIwQYMBaAFGfzompUZHSggbZaKcxdpNNR/y3n
MA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDSQAwRgIhAIm42Bk3599EuK3B
vua/qVRQKOjBvoLmKzefZbauOz+uAiEAoHo3FuKGGMt35i+BERg8NveF3jFssZ/m
5ogRjgVX4F8=
-----END CERTIFICATE-----
"""
    static let key = """
-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgK3FNBL5364pNL5sq
L7KuGGwH0AIdPtZi6YaczrGhc6KhRANCAAQNL1mKvObE3k4FIel4V5BB5B40OO5B
J3zYMIQXAfAEfE69iL22eEnNsBNMukyrK9msOLlem+XrCsmTftw0ci2c
-----END PRIVATE KEY-----
"""

    @Test func aRealPairParsesAndMakesAContext() throws {
        #expect(PortalTLS.check(.certificateChain, Self.cert) == nil)
        #expect(PortalTLS.check(.privateKey, Self.key) == nil)
        _ = try PortalTLS.context(PortalTLSFiles(certFile: "c", keyFile: "k", certPEM: Self.cert, keyPEM: Self.key))
    }

    @Test func garbledPEMIsRejectedWithAReason() throws {
        let badCert = "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n"
        let badKey = "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n"
        #expect(PortalTLS.check(.certificateChain, badCert)?.hasPrefix("cannot be parsed: ") == true)
        #expect(PortalTLS.check(.privateKey, badKey)?.hasPrefix("cannot be parsed: ") == true)
        #expect(PortalTLS.check(.privateKey, Self.cert) != nil, "a certificate is not a key")
    }
}
