/// The query log's line format: one JSON object per query, newline-terminated.
/// Hand-written (no Foundation) and escaped per RFC 8259, so any byte in a query name
/// yields valid JSON.
extension QueryEvent {
    public var jsonLine: String {
        var s = "{\"time\":"
        s += Self.fixed(time, decimals: 3)
        s += ",\"client\":" + JSONText.quoted(client.description)
        s += ",\"proto\":" + JSONText.quoted(proto.description)
        s += ",\"connmark\":" + (connmark.map { "\($0)" } ?? "null")
        s += ",\"mark\":" + JSONText.quoted(markName)
        s += ",\"qname\":" + JSONText.quoted(qname)
        s += ",\"qtype\":\(qtype)"
        s += ",\"rcode\":" + JSONText.quoted(rcodeName)
        s += ",\"upstream\":" + (upstream.map { JSONText.quoted($0.description) } ?? "null")
        s += ",\"latency_ms\":" + Self.fixed(latency * 1000, decimals: 3)
        s += ",\"cache_hit\":" + (cacheHit ? "true" : "false")
        if let localReason { s += ",\"local\":" + JSONText.quoted(localReason) }
        s += "}\n"
        return s
    }

    /// `value` with a fixed number of decimals, without Foundation's formatting.
    static func fixed(_ value: Double, decimals: Int) -> String {
        guard value.isFinite else { return "0" }
        var scale = 1.0
        for _ in 0..<decimals { scale *= 10 }
        let negative = value < 0
        let scaled = (abs(value) * scale).rounded()
        guard scaled < 9.0e18 else { return negative ? "-0" : "0" }
        let n = UInt64(scaled)
        let whole = n / UInt64(scale)
        var frac = String(n % UInt64(scale))
        while frac.count < decimals { frac = "0" + frac }
        return (negative && n > 0 ? "-" : "") + "\(whole)" + (decimals > 0 ? "." + frac : "")
    }
}

public enum JSONText {
    /// `text` as a JSON string literal.
    public static func quoted(_ text: String) -> String {
        var out = "\""
        for u in text.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where u.value < 0x20 || u.value == 0x7f:
                let hex = String(u.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(u)
            }
        }
        return out + "\""
    }
}
