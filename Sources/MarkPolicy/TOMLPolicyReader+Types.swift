import TOMLKit

/// Shape and type checks of TOML values, with errors at the offending key.
extension TOMLPolicyReader {
    func checkKeys(_ t: TOMLTable, _ path: String, _ allowed: [String]) throws(PolicyError) {
        for k in t.keys.sorted() where !allowed.contains(k) {
            let full = path.isEmpty ? k : "\(path).\(k)"
            var reason = path.isEmpty ? "unknown table or key" : "unknown key"
            if let s = Self.suggestion(for: k, among: allowed) {
                reason += " (did you mean '\(s)'?)"
            } else {
                reason += " (known: \(allowed.joined(separator: ", ")))"
            }
            throw error(full, reason)
        }
    }

    func missing(_ key: String, in table: String) -> PolicyError {
        // A missing key has no line of its own: point at its table's header.
        PolicyError(file: file, line: locator.line(of: table), key: key, reason: "is required")
    }

    func required<T>(_ v: T?, _ key: String, in table: String) throws(PolicyError) -> T {
        guard let v else { throw missing(key, in: table) }
        return v
    }

    func typeError(_ path: String, _ expected: String, _ v: any TOMLValueConvertible) -> PolicyError {
        error(path, "expected \(expected), found \(v.type == .array ? "an array" : "a \(v.type.description)")")
    }

    func table(_ t: TOMLTable, _ key: String) throws(PolicyError) -> TOMLTable? {
        guard let v = t[key] else { return nil }
        guard let sub = v.table else {
            throw typeError(key, "a table ([\(key)])", v)
        }
        return sub
    }

    func tables(_ t: TOMLTable, _ key: String) throws(PolicyError) -> [TOMLTable] {
        guard let v = t[key] else { return [] }
        guard let arr = v.array else {
            throw typeError(key, "an array of tables ([[\(key)]])", v)
        }
        var out: [TOMLTable] = []
        for (i, e) in arr.enumerated() {
            guard let sub = e.table else { throw typeError("\(key)[\(i + 1)]", "a table", e) }
            out.append(sub)
        }
        return out
    }

    func string(_ t: TOMLTable, _ key: String, path: String) throws(PolicyError) -> String? {
        guard let v = t[key] else { return nil }
        guard let s = v.string else { throw typeError(path, "a string", v) }
        return s
    }

    func bool(_ t: TOMLTable, _ key: String, path: String) throws(PolicyError) -> Bool? {
        guard let v = t[key] else { return nil }
        guard let b = v.bool else { throw typeError(path, "true or false", v) }
        return b
    }

    func strings(_ t: TOMLTable, _ key: String, path: String) throws(PolicyError) -> [String]? {
        guard let v = t[key] else { return nil }
        guard let arr = v.array else { throw typeError(path, "an array of strings", v) }
        var out: [String] = []
        for (i, e) in arr.enumerated() {
            guard let s = e.string else { throw typeError("\(path)[\(i + 1)]", "a string", e) }
            out.append(s)
        }
        return out
    }

    func uint32(_ t: TOMLTable, _ key: String, path: String, max: UInt32 = .max) throws(PolicyError) -> UInt32? {
        guard let v = t[key] else { return nil }
        return try uint32(v, path: path, max: max)
    }

    func uint32(_ v: any TOMLValueConvertible, path: String, max: UInt32 = .max) throws(PolicyError) -> UInt32 {
        guard let i = v.int else { throw typeError(path, "an integer", v) }
        guard i >= 0, i <= Int(max) else {
            throw error(path, "\(i) is out of range (0-\(max == .max ? "0xffffffff" : String(max)))")
        }
        return UInt32(i)
    }

    /// The allowed key closest to a misspelt one (edit distance at most 2).
    static func suggestion(for key: String, among allowed: [String]) -> String? {
        let scored = allowed.map { ($0, editDistance(Array(key.lowercased()), Array($0))) }
        guard let best = scored.min(by: { $0.1 < $1.1 }), best.1 <= 2 else { return nil }
        return best.0
    }

    static func editDistance(_ a: [Character], _ b: [Character]) -> Int {
        guard !a.isEmpty else { return b.count }
        guard !b.isEmpty else { return a.count }
        var prev = Array(0...b.count)
        for i in 1...a.count {
            var cur = [i] + Array(repeating: 0, count: b.count)
            for j in 1...b.count {
                cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            prev = cur
        }
        return prev[b.count]
    }
}
