import MarkCore
/// The query log's line format: one JSON object per query, newline-terminated.
/// Hand-written (no Foundation) and escaped per RFC 8259, so any byte in a query name
/// yields valid JSON.
extension QueryEvent {
    public var jsonLine: String {
        var s = ""
        s.reserveCapacity(160 + qname.utf8.count)
        s.append("{\"time\":"); s.append(Self.fixed(time, decimals: 3))
        s.append(",\"client\":"); JSONText.append(client.description, to: &s)
        s.append(",\"proto\":\""); s.append(proto.description); s.append("\"")
        s.append(",\"connmark\":"); s.append(connmark.map { String($0) } ?? "null")
        s.append(",\"mark\":"); JSONText.append(markName, to: &s)
        s.append(",\"qname\":"); JSONText.append(qname, to: &s)
        s.append(",\"qtype\":"); s.append(String(qtype))
        s.append(",\"rcode\":\""); s.append(rcodeName); s.append("\"")
        s.append(",\"upstream\":")
        if let name = upstreamName ?? upstream?.description { JSONText.append(name, to: &s) } else { s.append("null") }
        s.append(",\"latency_ms\":"); s.append(Self.fixed(latency * 1000, decimals: 3))
        s.append(",\"cache_hit\":"); s.append(cacheHit ? "true" : "false")
        if let localReason { s.append(",\"local\":"); JSONText.append(localReason, to: &s) }
        s.append("}\n")
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
        var out = ""
        append(text, to: &out)
        return out
    }

    /// Appends `text` as a JSON string literal.
    public static func append(_ text: String, to out: inout String) {
        out.append("\"")
        for u in text.unicodeScalars {
            switch u {
            case "\"": out.append("\\\"")
            case "\\": out.append("\\\\")
            case "\n": out.append("\\n")
            case "\r": out.append("\\r")
            case "\t": out.append("\\t")
            case _ where u.value < 0x20 || u.value == 0x7f:
                let hex = String(u.value, radix: 16)
                out.append("\\u" + String(repeating: "0", count: 4 - hex.count) + hex)
            default: out.unicodeScalars.append(u)
            }
        }
        out.append("\"")
    }
}
