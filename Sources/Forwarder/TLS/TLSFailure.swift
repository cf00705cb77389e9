import NIOSSL

/// Why an encrypted upstream connection was refused or lost, in words for the log and a
/// cause for the metrics. None of them ever leads to plain DNS: the attempt fails over.
struct TLSFailure: Error, CustomStringConvertible {
    enum Cause: String, CaseIterable {
        case wrongName = "wrong_name", unknownCA = "unknown_ca", expired, notYetValid = "not_yet_valid"
        case pinMismatch = "pin_mismatch", handshake, noHTTP2 = "no_http2", badCA = "bad_ca"
        case connect, closed, http

        /// Certificate and handshake failures: the `reason="tls"` failures.
        var isTLS: Bool {
            switch self {
            case .connect, .closed, .http: return false
            default: return true
            }
        }
    }

    var cause: Cause
    var words: String

    var description: String { words }

    /// A handshake error (`verified`: what the verification callback saw, if it failed).
    static func handshake(_ error: any Error, verified: Cause?, upstream: String, name: String?) -> TLSFailure {
        if let e = error as? NIOSSLExtraError, e == .failedToValidateHostname {
            return TLSFailure(cause: .wrongName, words: "the certificate is not for \(name ?? "the address itself") (wrong name)")
        }
        if let verified {
            switch verified {
            case .expired: return TLSFailure(cause: .expired, words: "the certificate has expired")
            case .notYetValid: return TLSFailure(cause: .notYetValid, words: "the certificate is not valid yet")
            default: return TLSFailure(cause: .unknownCA, words: "the certificate is not signed by a trusted CA (unknown CA)")
            }
        }
        return TLSFailure(cause: .handshake, words: "TLS handshake failed: \(error)")
    }
}

/// What the verification callback learnt about a failing chain (set on the channel's loop,
/// read there when the handshake fails).
final class VerificationNote {
    var cause: TLSFailure.Cause?
}
