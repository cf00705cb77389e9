/// Finds the line of a key path in TOML text, for error messages. TOMLKit keeps no source
/// positions, so this scans the text once: table headers (`[server]`, the Nth
/// `[[client]]` as `client[N]`), keys (`client[2].mark`) and the elements of array values
/// (`client[2].match[3]`, also across lines). Indexes are 1-based. Best effort: a path it
/// cannot place falls back to its parent (the key, then the table header).
struct TOMLLocator {
    private(set) var lines: [String: Int] = [:]

    init(_ text: String) {
        var table = ""
        var arrayCounts: [String: Int] = [:]
        var value: ValueScanner? = nil
        var lineNo = 0
        // "\r\n" is one Character in Swift: split on both forms, as toml++ counts lines.
        for rawLine in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }) {
            lineNo += 1
            let line = Array(rawLine.utf8)
            if var v = value {
                v.scan(line, from: 0, lineNo: lineNo, into: &lines)
                value = v.isDone ? nil : v
                continue
            }
            var i = 0
            while i < line.count, line[i] == 0x20 || line[i] == 0x09 { i += 1 }
            guard i < line.count, line[i] != UInt8(ascii: "#"), line[i] != 0x0d else { continue }
            if line[i] == UInt8(ascii: "[") {
                let isArray = i + 1 < line.count && line[i + 1] == UInt8(ascii: "[")
                let start = i + (isArray ? 2 : 1)
                guard let close = line[start...].firstIndex(of: UInt8(ascii: "]")) else { continue }
                let name = TOMLLocator.unquote(String(decoding: line[start..<close], as: UTF8.self))
                if isArray {
                    let n = (arrayCounts[name] ?? 0) + 1
                    arrayCounts[name] = n
                    table = "\(name)[\(n)]"
                } else {
                    table = name
                }
                record(table, lineNo)
                continue
            }
            // key = value
            var j = i
            var quote: UInt8? = nil
            while j < line.count {
                let c = line[j]
                if let q = quote { if c == q { quote = nil } } else if c == 0x22 || c == 0x27 { quote = c } else if c == UInt8(ascii: "=") { break }
                j += 1
            }
            guard j < line.count else { continue }
            let key = TOMLLocator.unquote(String(decoding: line[i..<j], as: UTF8.self))
            let path = table.isEmpty ? key : table + "." + key
            record(path, lineNo)
            var v = ValueScanner(path: path)
            v.scan(line, from: j + 1, lineNo: lineNo, into: &lines)
            value = v.isDone ? nil : v
        }
    }

    private mutating func record(_ path: String, _ line: Int) {
        if lines[path] == nil { lines[path] = line }
    }

    /// The line of `path`, or of its nearest recorded ancestor.
    func line(of path: String) -> Int? {
        var p = Substring(path)
        while !p.isEmpty {
            if let l = lines[String(p)] { return l }
            if p.hasSuffix("]"), let open = p.lastIndex(of: "[") {
                p = p[..<open]
            } else if let dot = p.lastIndex(of: ".") {
                p = p[..<dot]
            } else {
                break
            }
        }
        return nil
    }

    static func unquote(_ s: String) -> String {
        s.split(separator: ".").map { part -> String in
            var t = part.trimmingSpaces
            if t.count >= 2, let f = t.first, f == "\"" || f == "'", t.last == f { t = String(t.dropFirst().dropLast()) }
            return t
        }.joined(separator: ".")
    }
}

/// Follows one value through (possibly several) lines: strings, comments, nested arrays and
/// inline tables, recording the line where each element of a top-level array starts.
private struct ValueScanner {
    let path: String
    var depth = 0           // array nesting
    var braces = 0          // inline-table nesting
    var element = 0
    var expectElement = false
    var multiline: [UInt8]? = nil   // closing delimiter of a multi-line string
    var started = false

    init(path: String) { self.path = path }

    var isDone: Bool { started && depth == 0 && braces == 0 && multiline == nil }

    mutating func scan(_ line: [UInt8], from start: Int, lineNo: Int, into lines: inout [String: Int]) {
        var i = start
        while i < line.count {
            let c = line[i]
            if let delim = multiline {
                if line[i...].starts(with: delim) { multiline = nil; i += delim.count } else { i += 1 }
                continue
            }
            if c == 0x20 || c == 0x09 || c == 0x0d { i += 1; continue }
            if c == UInt8(ascii: "#") { break }
            started = true
            if depth == 1, braces == 0, expectElement, c != UInt8(ascii: "]"), c != UInt8(ascii: ",") {
                element += 1
                expectElement = false
                let key = "\(path)[\(element)]"
                if lines[key] == nil { lines[key] = lineNo }
            }
            switch c {
            case UInt8(ascii: "["):
                depth += 1
                if depth == 1 && braces == 0 { expectElement = true }
                i += 1
            case UInt8(ascii: "]"): depth -= 1; i += 1
            case UInt8(ascii: "{"): braces += 1; i += 1
            case UInt8(ascii: "}"): braces -= 1; i += 1
            case UInt8(ascii: ","):
                if depth == 1 && braces == 0 { expectElement = true }
                i += 1
            case 0x22, 0x27:
                let triple = [c, c, c]
                if line[i...].starts(with: triple) {
                    i += 3
                    if let end = find(triple, in: line, from: i) { i = end + 3 } else { multiline = triple; i = line.count }
                } else {
                    i += 1
                    while i < line.count, line[i] != c {
                        if c == 0x22, line[i] == UInt8(ascii: "\\") { i += 1 }
                        i += 1
                    }
                    i += 1
                }
            default: i += 1
            }
            // A scalar, or a closed array or inline table: the rest is at most a comment.
            if isDone { return }
        }
    }

    private func find(_ needle: [UInt8], in line: [UInt8], from: Int) -> Int? {
        var i = from
        while i + needle.count <= line.count {
            if line[i..<(i + needle.count)].elementsEqual(needle) { return i }
            i += 1
        }
        return nil
    }
}

extension Substring {
    var trimmingSpaces: String {
        String(drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
    }
}
