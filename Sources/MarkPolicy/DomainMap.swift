/// Domain names mapped to values; a name is looked up by its most specific listed
/// ancestor (itself included): with `corp.example -> a` and `eu.corp.example -> b`,
/// `x.eu.corp.example` gives `b` and `corp.example` gives `a`. Keys are lower-case wire
/// names; a lookup costs one hash probe per label.
public struct DomainMap<Value: Sendable & Equatable>: Sendable, Equatable {
    private var entries: [ArraySlice<UInt8>: Value] = [:]

    public init() {}

    public var isEmpty: Bool { entries.isEmpty }
    public var count: Int { entries.count }

    /// Maps `name` (dotted text, any case, optional trailing dot) and its subdomains.
    /// Returns false when the name is not a name; the last value set for a name wins.
    @discardableResult
    public mutating func set(_ name: String, _ value: Value) -> Bool {
        guard let w = DomainSet.wire(fromText: name), w != [0] else { return false }
        entries[w[...]] = value
        return true
    }

    /// The value of the most specific listed ancestor of an uncompressed wire name (any
    /// case), or nil.
    public func lookup(wireName: some Collection<UInt8>) -> Value? {
        guard !entries.isEmpty, let w = DomainSet.lowercased(wireName: wireName) else { return nil }
        var i = 0
        while i < w.count, w[i] != 0 {
            if let v = entries[w[i...]] { return v }
            i += Int(w[i]) + 1
        }
        return nil
    }

    /// Same for dotted text.
    public func lookup(_ name: String) -> Value? {
        guard let w = DomainSet.wire(fromText: name) else { return nil }
        return lookup(wireName: w)
    }
}
