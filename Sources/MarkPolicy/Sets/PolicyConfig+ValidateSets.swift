extension PolicyConfig {
    /// Checks of `[[set]]`: names usable as nft set names and unique, marks defined, the
    /// route mark outside the policy's mask (the mask's bits carry the client's mark; other
    /// bits belong to routing, as `base` does), a table only with a route mark.
    func validateSets(file: String, locator: TOMLLocator?) throws(PolicyError) {
        func fail(_ key: String, _ reason: String) -> PolicyError {
            PolicyError(file: file, line: locator?.line(of: key), key: key, reason: reason)
        }
        let mask = conntrack.mask
        var names = Set<String>()
        for (i, s) in sets.enumerated() {
            let k = "set[\(i + 1)]"
            guard Self.isValidName(s.name), s.name.utf8.count <= 29 else {
                throw fail("\(k).name", "'\(s.name)' is not a valid set name (a letter, then letters, digits, '-' or '_'; "
                           + "at most 29, so that NAME_v4 and NAME_v6 fit nft's 32)")
            }
            guard !s.name.hasPrefix("client_") else {
                throw fail("\(k).name", "'\(s.name)' starts with 'client_', which names the client selector sets")
            }
            guard names.insert(s.name).inserted else { throw fail("\(k).name", "set '\(s.name)' is defined twice") }
            guard !s.domains.isEmpty else { throw fail("\(k).domains", "is empty: a set needs at least one domain") }
            for (j, v) in s.marks.enumerated() {
                guard v != 0, v & ~mask == 0, mark(value: v) != nil else {
                    throw fail("\(k).marks[\(j + 1)]", "mark \(hex(v)) is not defined by any [[mark]]")
                }
            }
            if let r = s.routeMark {
                guard r != 0 else { throw fail("\(k).route-mark", "must not be 0 (leave it out for no route mark)") }
                guard r & mask == 0 else {
                    throw fail("\(k).route-mark", "route mark \(hex(r)) has bits inside mask \(hex(mask)) (\(hex(r & mask))); "
                               + "the mask's bits carry the client's mark: a route mark uses bits outside it"
                               + (mask == .max ? " (narrow conntrack.mask first)" : ""))
                }
            }
            if let t = s.table {
                guard s.routeMark != nil else {
                    throw fail("\(k).table", "needs route-mark (the ip rule hint matches the route mark)")
                }
                guard !Self.reservedTables.contains(t) else {
                    throw fail("\(k).table", "table \(t) is reserved (0 unspec, 253 default, 254 main, 255 local)")
                }
            }
        }
    }
}
