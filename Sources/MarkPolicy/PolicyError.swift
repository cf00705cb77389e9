/// An error in a policy file, reported as `file:line: key: reason` (the form compilers use,
/// so editors can jump to it).
///
/// `key` names the offending setting as a path: `conntrack.mask`, `client[2].mark`,
/// `mark[1].block[3]`. Indexes are 1-based and count tables and elements in the order they
/// appear in the file: `client[2]` is the second `[[client]]` table.
public struct PolicyError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The file the error is in (the policy file, or a block list it names).
    public var file: String
    /// 1-based line, when known.
    public var line: Int?
    /// Key path of the offending setting, when there is one (syntax errors have none).
    public var key: String?
    public var reason: String

    public init(file: String, line: Int?, key: String?, reason: String) {
        self.file = file; self.line = line; self.key = key; self.reason = reason
    }

    public var description: String {
        var s = file
        if let line { s += ":\(line)" }
        if let key { s += ": \(key)" }
        return s + ": " + reason
    }
}
