import MarkCore

/// `/etc/hosts` format: an address, then names, `#` comments. Pure: the caller reads
/// the file.
public struct HostsFile: Sendable, Equatable {
    public struct Entry: Sendable, Equatable {
        public let address: IPAddress
        /// Normalised names (lower case, no trailing dot), canonical name first.
        public let names: [String]
    }

    public let entries: [Entry]
    /// Line numbers (from 1) that were not an address followed by valid names; skipped.
    public let badLines: [Int]

    public init(text: String) {
        var entries: [Entry] = []
        var bad: [Int] = []
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.prefix { $0 != "#" }
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" })
            guard !fields.isEmpty else { continue }
            // Link-local zones (fe80::1%eth0) cannot be answered: skip them as bad.
            guard fields.count >= 2, let address = IPAddress(String(fields[0])) else { bad.append(n + 1); continue }
            var names: [String] = []
            for f in fields.dropFirst() {
                if case .success(let name) = DomainName.normalize(String(f)) { names.append(name) }
            }
            if names.isEmpty { bad.append(n + 1); continue }
            entries.append(Entry(address: address, names: names))
        }
        self.entries = entries
        self.badLines = bad
    }
}
