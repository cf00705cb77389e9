import CBoringSSLDigest

/// SHA-256 of a SubjectPublicKeyInfo (DER), for the pins, by the BoringSSL that NIOSSL links
/// (see `CBoringSSLDigest`).
enum SPKIDigest {
    static func sha256(_ bytes: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        bytes.withUnsafeBufferPointer { input in
            out.withUnsafeMutableBufferPointer { output in
                _ = CNIOBoringSSL_SHA256(input.baseAddress, input.count, output.baseAddress)
            }
        }
        return out
    }
}
