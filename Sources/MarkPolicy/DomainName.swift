/// Checks and normalises domain names written in a policy or a block list.
public enum DomainName {
    /// Lower-cases `text`, strips one trailing dot, and checks it is a DNS name made of
    /// letters, digits, `-` and `_` (labels 1-63 bytes, 253 in all). Returns the
    /// normalised name, or the reason it is not one.
    public static func normalize(_ text: String) -> Result<String, NameError> {
        var t = text
        if t.hasSuffix(".") { t.removeLast() }
        guard !t.isEmpty else { return .failure(NameError("'\(text)' is empty or the root")) }
        guard t.unicodeScalars.allSatisfy(\.isASCII) else {
            return .failure(NameError("'\(text)' is not ASCII (write internationalised names in punycode, xn--...)"))
        }
        if t.hasPrefix("*.") {
            return .failure(NameError("'\(text)': no wildcards; '\(t.dropFirst(2))' already covers every subdomain"))
        }
        let lower = t.lowercased()
        guard lower.utf8.count <= 253 else { return .failure(NameError("'\(text)' is longer than 253 characters")) }
        for label in lower.split(separator: ".", omittingEmptySubsequences: false) {
            guard !label.isEmpty else { return .failure(NameError("'\(text)' has an empty label")) }
            guard label.utf8.count <= 63 else { return .failure(NameError("'\(text)' has a label longer than 63 characters")) }
            guard label.utf8.allSatisfy({ isNameByte($0) }) else {
                return .failure(NameError("'\(text)' is not a domain name (letters, digits, '-', '_' and dots only)"))
            }
        }
        return .success(lower)
    }

    public struct NameError: Error, Equatable, Sendable, CustomStringConvertible {
        public let description: String
        init(_ d: String) { description = d }
    }

    static func isNameByte(_ b: UInt8) -> Bool {
        (b >= 0x61 && b <= 0x7a) || (b >= 0x30 && b <= 0x39) || b == 0x2d || b == 0x5f
    }
}
