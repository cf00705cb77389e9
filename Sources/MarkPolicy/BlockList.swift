import MarkCore

/// Block-list files: hosts format (`0.0.0.0 ads.example tracker.example`) or one domain per
/// line, `#` starts a comment. Each name blocks itself and its subdomains.
public enum BlockList {
    /// The prefix of a `block` entry that names a file instead of a domain.
    public static let filePrefix = "file:"

    /// Names that hosts files map to the loopback or broadcast address for the system's
    /// own sake; blocking them would block `local` and its subdomains, so they are skipped.
    static let hostsBoilerplate: Set<String> = [
        "localhost", "localhost.localdomain", "local", "broadcasthost", "ip6-localhost",
        "ip6-loopback", "ip6-localnet", "ip6-mcastprefix", "ip6-allnodes", "ip6-allrouters",
        "ip6-allhosts",
    ]

    public struct LineError: Error, Equatable, Sendable {
        public let line: Int
        public let reason: String
    }

    /// The normalised names of a block-list file, or the first bad line.
    public static func parse(_ text: String) -> Result<[String], LineError> {
        var names: [String] = []
        var lineNo = 0
        for raw in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }) {
            lineNo += 1
            let content = raw.prefix { $0 != "#" }
            let tokens = content.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" }).map(String.init)
            guard let first = tokens.first else { continue }
            let candidates: [String]
            if IPAddress(first) != nil {
                candidates = tokens.dropFirst().filter { !hostsBoilerplate.contains($0.lowercased()) && IPAddress($0) == nil }
            } else if tokens.count == 1 {
                candidates = tokens
            } else {
                return .failure(LineError(line: lineNo, reason: "expected 'ADDRESS NAME...' (hosts format) or one domain per line"))
            }
            for c in candidates {
                switch DomainName.normalize(c) {
                case .success(let n): names.append(n)
                case .failure(let e): return .failure(LineError(line: lineNo, reason: e.description))
                }
            }
        }
        return .success(names)
    }

    /// `path` resolved against the directory of `configFile` when relative.
    public static func resolve(_ path: String, relativeTo configFile: String) -> String {
        guard !path.hasPrefix("/"), let slash = configFile.lastIndex(of: "/") else { return path }
        return String(configFile[...slash]) + path
    }
}
