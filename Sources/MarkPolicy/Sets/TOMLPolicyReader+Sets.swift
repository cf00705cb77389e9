import TOMLKit

extension TOMLPolicyReader {
    static let setKeys = ["name", "domains", "marks", "timeout-min", "route-mark", "table"]

    /// `[[set]]` tables: shapes and values (names, mark references and mask rules are
    /// checked by `PolicyConfig.validate`).
    func sets(_ root: TOMLTable, marks: [MarkRule]) throws(PolicyError) -> [SetRule] {
        var out: [SetRule] = []
        for (i, t) in try tables(root, "set").enumerated() {
            let p = "set[\(i + 1)]"
            try checkKeys(t, p, Self.setKeys)
            let name = try required(string(t, "name", path: "\(p).name"), "\(p).name", in: p)
            let list = try required(strings(t, "domains", path: "\(p).domains"), "\(p).domains", in: p)
            var domains: [String] = []
            for (j, d) in list.enumerated() {
                switch DomainName.normalize(d) {
                case .success(let n): if !domains.contains(n) { domains.append(n) }
                case .failure(let e): throw error("\(p).domains[\(j + 1)]", e.description)
                }
            }
            var values: [UInt32] = []
            if let v = t["marks"] {
                guard let arr = v.array else { throw typeError("\(p).marks", "an array of mark names", v) }
                for (j, e) in arr.enumerated() {
                    let k = "\(p).marks[\(j + 1)]"
                    let value: UInt32
                    if let s = e.string {
                        guard let m = marks.first(where: { $0.name == s }) else {
                            throw error(k, "no [[mark]] is named '\(s)'")
                        }
                        value = m.value
                    } else {
                        value = try uint32(e, path: k)
                    }
                    if !values.contains(value) { values.append(value) }
                }
            }
            let timeoutMin = try uint32(t, "timeout-min", path: "\(p).timeout-min", max: SetRule.maxTimeoutMin) ?? 0
            out.append(SetRule(name: name, domains: domains, marks: values, timeoutMin: timeoutMin,
                               routeMark: try uint32(t, "route-mark", path: "\(p).route-mark"),
                               table: try uint32(t, "table", path: "\(p).table")))
        }
        return out
    }
}
