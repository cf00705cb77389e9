import MarkSessions

extension PolicyConfig {
    /// Names of pools, clients and marks: a letter, then letters, digits, `-` or `_`; at
    /// most 32 characters (they become nftables set names and metric labels).
    public static func isValidName(_ s: String) -> Bool {
        guard let f = s.unicodeScalars.first, s.unicodeScalars.count <= 32,
              f.isASCII, f.properties.isAlphabetic else { return false }
        return s.unicodeScalars.allSatisfy { $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "-" || $0 == "_") }
    }

    /// Routing tables the kernel reserves (`ip rule ... table` must not name them).
    static let reservedTables: Set<UInt32> = [0, 253, 254, 255]

    /// Checks the cross-references and mark arithmetic of a policy built in code (the TOML
    /// loader runs the same checks with line numbers). Key paths count from 1.
    public func validate(file: String = "<policy>") throws(PolicyError) {
        try validate(file: file, locator: nil)
    }

    func validate(file: String, locator: TOMLLocator?) throws(PolicyError) {
        func fail(_ key: String, _ reason: String) -> PolicyError {
            PolicyError(file: file, line: locator?.line(of: key), key: key, reason: reason)
        }
        let mask = conntrack.mask
        guard mask != 0 else { throw fail("conntrack.mask", "must not be 0 (no bits would be ours)") }
        if conntrack.base & mask != 0 {
            throw fail("conntrack.base", "base \(hex(conntrack.base)) has bits inside mask \(hex(mask)) (\(hex(conntrack.base & mask))); "
                       + "only the bits outside the mask come from the base")
        }

        guard !pools.isEmpty else { throw fail("pool", "no [[pool]]: at least one upstream pool is needed") }
        var poolNames = Set<String>()
        for (i, p) in pools.enumerated() {
            let k = "pool[\(i + 1)]"
            guard Self.isValidName(p.name) else { throw fail("\(k).name", nameRule(p.name)) }
            guard poolNames.insert(p.name).inserted else { throw fail("\(k).name", "pool '\(p.name)' is defined twice") }
            guard !p.servers.isEmpty else { throw fail("\(k).servers", "is empty: a pool needs at least one server") }
        }
        try validateSecure(fail: fail)
        var routed: [String: String] = [:]
        for (i, p) in pools.enumerated() {
            for (j, d) in p.domains.enumerated() {
                if let other = routed[d], other != p.name {
                    throw fail("pool[\(i + 1)].domains[\(j + 1)]", "'\(d)' is already routed to pool '\(other)'")
                }
                routed[d] = p.name
            }
        }
        guard poolNames.contains(defaultPool) else { throw fail("pool", "default pool '\(defaultPool)' is not defined") }

        var markValues: [UInt32: Int] = [:]
        var markNames = Set<String>()
        for (i, m) in marks.enumerated() {
            let k = "mark[\(i + 1)]"
            guard m.value != 0 else { throw fail("\(k).value", "mark 0 means unmarked; use a non-zero value") }
            guard m.value & ~mask == 0 else {
                throw fail("\(k).value", "mark \(hex(m.value)) has bits outside mask \(hex(mask))")
            }
            if let r = m.range {
                guard r.upper & ~mask == 0 else {
                    throw fail("\(k).range", "range \(r) has bits outside mask \(hex(mask))")
                }
                guard mask == .max else {
                    // The restore and save rules are one rule per value under a narrower mask.
                    throw fail("\(k).range", "ranges need the full mask (conntrack.mask = 0xffffffff)")
                }
                guard r.count <= 65_536 else { throw fail("\(k).range", "range \(r) has more than 65536 values") }
            }
            for v in m.values {
                if let j = markValues[v] {
                    let key = m.range == nil ? "\(k).value" : "\(k).range"
                    throw fail(key, "mark \(hex(v)) is already defined by mark[\(j + 1)] (\(marks[j].name))")
                }
                markValues[v] = i
            }
            guard Self.isValidName(m.name) else { throw fail("\(k).name", nameRule(m.name)) }
            guard m.name != PolicyDecision.otherName, m.name != PolicyDecision.noneName else {
                throw fail("\(k).name", "'\(m.name)' is reserved (it names unknown and missing marks in metrics)")
            }
            guard markNames.insert(m.name).inserted else { throw fail("\(k).name", "mark name '\(m.name)' is used twice") }
            if let pool = m.action.pool, !poolNames.contains(pool) {
                throw fail("\(k).pool", "pool '\(pool)' is not defined by any [[pool]]")
            }
            if case .walledGarden(let w) = m.action, w.portal.isEmpty {
                throw fail("\(k).portal", "a walled garden needs at least one portal address")
            }
            if let t = m.table, Self.reservedTables.contains(t) {
                throw fail("\(k).table", "table \(t) is reserved (0 unspec, 253 default, 254 main, 255 local)")
            }
        }

        var clientNames = Set<String>()
        for (i, c) in clients.enumerated() {
            let k = "client[\(i + 1)]"
            guard Self.isValidName(c.name) else { throw fail("\(k).name", nameRule(c.name)) }
            guard clientNames.insert(c.name).inserted else { throw fail("\(k).name", "client '\(c.name)' is defined twice") }
            guard !c.match.isEmpty else { throw fail("\(k).match", "is empty: a client rule needs at least one selector") }
            guard c.mark & ~mask == 0 else {
                throw fail("\(k).mark", "mark \(hex(c.mark)) has bits outside mask \(hex(mask))")
            }
            guard markValues[c.mark] != nil else {
                throw fail("\(k).mark", "mark \(hex(c.mark)) is not defined by any [[mark]]")
            }
        }
        try validateSets(file: file, locator: locator)
    }

    func nameRule(_ s: String) -> String {
        "'\(s)' is not a valid name (a letter, then letters, digits, '-' or '_'; at most 32)"
    }
}
