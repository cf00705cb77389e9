import MarkPolicy
import NIOSSL

/// TLS of the Captive Portal API (RFC 8908 wants HTTPS): the server context from the
/// certificate chain and key `[sessions] portal-tls-cert` / `portal-tls-key` name, whose PEM
/// texts the policy loader read (as root, before `serve --user`).
public enum PortalTLS {
    /// The parse the policy loader runs on both files (`markdns check` and `serve`), so a
    /// file NIOSSL cannot load is a config error naming its key.
    public static let check: PEMCheck = { kind, pem in
        do {
            switch kind {
            case .certificateChain:
                if try NIOSSLCertificate.fromPEMBytes(Array(pem.utf8)).isEmpty { return "holds no PEM certificate" }
            case .privateKey:
                _ = try NIOSSLPrivateKey(bytes: Array(pem.utf8), format: .pem)
            }
            return nil
        } catch {
            return "cannot be parsed: \(error)"
        }
    }

    /// The server context: the first certificate is the server's, the rest its chain.
    public static func context(_ files: PortalTLSFiles) throws -> NIOSSLContext {
        let chain = try NIOSSLCertificate.fromPEMBytes(Array(files.certPEM.utf8))
        let key = try NIOSSLPrivateKey(bytes: Array(files.keyPEM.utf8), format: .pem)
        let config = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) },
                                                              privateKey: .privateKey(key))
        return try NIOSSLContext(configuration: config)
    }
}
