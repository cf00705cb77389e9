/// A set of domain names, each standing for itself and all its subdomains: `example.com`
/// contains `example.com` and `a.b.example.com`, not `badexample.com`.
///
/// Names are kept as lower-case uncompressed wire names; a lookup lower-cases the query
/// name once and probes the set with each of its suffixes at a label boundary, so it costs
/// one hash lookup per label whatever the size of the set.
public struct DomainSet: Sendable, Equatable {
    private var names: Set<ArraySlice<UInt8>>

    public init() { names = [] }

    /// `names` as written in a policy: dotted, any case, optional trailing dot. Names
    /// that are not valid DNS names are ignored (the policy loader rejects them first).
    public init(_ names: some Sequence<String>) {
        self.names = []
        for n in names { insert(n) }
    }

    public mutating func insert(_ name: String) {
        if let w = DomainSet.wire(fromText: name), w != [0] { names.insert(w[...]) }
    }

    public var count: Int { names.count }
    public var isEmpty: Bool { names.isEmpty }

    /// True when `name` (dotted text, any case, optional trailing dot) or one of its parent
    /// domains is in the set.
    public func contains(_ name: String) -> Bool {
        guard !names.isEmpty, let w = DomainSet.wire(fromText: name) else { return false }
        return containsLowercasedWire(w)
    }

    /// Same for an uncompressed wire name (length-prefixed labels ending with the root
    /// label, any case), as the forwarder's parser hands it over. Malformed names match nothing.
    public func contains(wireName: some Collection<UInt8>) -> Bool {
        guard !names.isEmpty, let w = DomainSet.lowercased(wireName: wireName) else { return false }
        return containsLowercasedWire(w)
    }

    /// A wire name with its label bytes (not its length bytes) lower-cased, or nil when it
    /// is not a well-formed uncompressed name.
    static func lowercased(wireName: some Collection<UInt8>) -> [UInt8]? {
        var w = Array(wireName)
        var i = 0
        while i < w.count {
            let len = Int(w[i])
            if len == 0 { break }
            guard len <= 63, i + len < w.count else { return nil }
            for j in (i + 1)...(i + len) where w[j] >= 0x41 && w[j] <= 0x5a { w[j] |= 0x20 }
            i += len + 1
        }
        guard i == w.count - 1 else { return nil }
        return w
    }

    private func containsLowercasedWire(_ w: [UInt8]) -> Bool {
        var i = 0
        while i < w.count, w[i] != 0 {
            if names.contains(w[i...]) { return true }
            i += Int(w[i]) + 1
        }
        return false
    }

    /// Lower-case wire form of dotted text, or nil when it is not a name.
    static func wire(fromText text: String) -> [UInt8]? {
        var t = Substring(text)
        if t.hasSuffix(".") { t = t.dropLast() }
        var out: [UInt8] = []
        out.reserveCapacity(t.utf8.count + 2)
        if !t.isEmpty {
            for label in t.utf8.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false) {
                guard !label.isEmpty, label.count <= 63 else { return nil }
                out.append(UInt8(label.count))
                for b in label { out.append(b >= 0x41 && b <= 0x5a ? b | 0x20 : b) }
            }
        }
        out.append(0)
        return out.count <= 255 ? out : nil
    }
}
