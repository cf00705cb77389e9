/// The sets a name and a client's mark fill: every `[[set]]` listing the name or one of its
/// parent domains (on label boundaries, any case) whose marks admit the client. All of
/// them, not only the most specific: two sets naming one domain both fill. Keys are
/// lower-case wire names; a lookup costs one hash probe per label.
public struct SetMatcher: Sendable {
    private var byDomain: [ArraySlice<UInt8>: [Int]] = [:]
    private let rules: [SetRule]
    private let targets: [SetTarget]

    public init(_ rules: [SetRule]) {
        self.rules = rules
        self.targets = rules.map(SetTarget.init)
        for (i, r) in rules.enumerated() {
            for d in r.domains {
                guard let w = DomainSet.wire(fromText: d), w != [0] else { continue }
                if !byDomain[w[...], default: []].contains(i) { byDomain[w[...], default: []].append(i) }
            }
        }
    }

    public var isEmpty: Bool { byDomain.isEmpty }

    /// The sets an answer to `wireName` (uncompressed wire name, any case) for a client of
    /// masked mark `mark` (0: none) fills, in file order. Malformed names fill nothing.
    public func targets(wireName: some Collection<UInt8>, mark: UInt32) -> [SetTarget] {
        guard !byDomain.isEmpty, let w = DomainSet.lowercased(wireName: wireName) else { return [] }
        var hits: [Int] = []
        var i = 0
        while i < w.count, w[i] != 0 {
            if let list = byDomain[w[i...]] {
                for s in list where !hits.contains(s) && rules[s].admits(mark: mark) { hits.append(s) }
            }
            i += Int(w[i]) + 1
        }
        return hits.sorted().map { targets[$0] }
    }

    /// Same for dotted text.
    public func targets(_ name: String, mark: UInt32) -> [SetTarget] {
        guard let w = DomainSet.wire(fromText: name) else { return [] }
        return targets(wireName: w, mark: mark)
    }
}
