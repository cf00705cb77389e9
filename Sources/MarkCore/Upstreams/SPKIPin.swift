import ExtrasBase64

/// `sha256/BASE64` pins (as curl and HPKP write them, RFC 7469): SHA-256 digests of a
/// certificate's SubjectPublicKeyInfo. The digest itself is the TLS shell's (BoringSSL).
public enum SPKIPin {
    /// The digest of a pin, nil when it is not `sha256/` + padded base64 of 32 bytes.
    public static func parse(_ text: String) -> [UInt8]? {
        guard text.hasPrefix("sha256/"),
              let d = try? Base64.decode(string: String(text.dropFirst(7))), d.count == 32
        else { return nil }
        return d
    }

    /// The pin of `digest`, as it is written in a config (and logged on a mismatch).
    public static func text(_ digest: [UInt8]) -> String {
        "sha256/" + Base64.encodeToString(bytes: digest)
    }

    /// Whether the SPKI digest `digest` is one of `pins`.
    public static func matches(digest: [UInt8], pins: [[UInt8]]) -> Bool {
        pins.contains(digest)
    }
}

/// Base64url without padding (RFC 4648 5), as DoH GET's `?dns=` carries a query (RFC 8484 6).
public enum Base64URL {
    public static func encode(_ bytes: some Collection<UInt8>) -> String {
        Base64.encodeToString(bytes: bytes, options: [.base64UrlAlphabet, .omitPaddingCharacter])
    }
}
