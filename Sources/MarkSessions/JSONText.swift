/// JSON output without Foundation: string escaping and the documents markdns serves.
public enum JSONText {
    /// A JSON string literal (RFC 8259: quote, backslash and control characters escaped).
    public static func string(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 {
                    let h = String(u.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - h.count) + h
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        return out + "\""
    }

    /// Byte and packet totals of one session's flows (both directions).
    public struct Traffic: Sendable, Equatable {
        public var bytes: UInt64
        public var packets: UInt64
        public init(bytes: UInt64 = 0, packets: UInt64 = 0) { self.bytes = bytes; self.packets = packets }
    }

    /// One session as an object: client, mark, value, user, start, end, seconds left, and
    /// the traffic of its mark value when given.
    public static func session(_ s: Session, now: Int64, traffic: Traffic? = nil) -> String {
        var f = ["\"client\":\(string(s.client.description))",
                 "\"mark\":\(string(s.markName))",
                 "\"value\":\(string(hex(s.mark)))",
                 "\"user\":" + (s.user.map(string) ?? "null"),
                 "\"started\":\(s.started)",
                 "\"expires\":\(s.expires)",
                 "\"seconds-remaining\":\(s.remaining(at: now))"]
        if let traffic { f += ["\"bytes\":\(traffic.bytes)", "\"packets\":\(traffic.packets)"] }
        return "{" + f.joined(separator: ",") + "}"
    }

    /// Per-user traffic: the flows of each session's own value, for sessions of range marks
    /// (a single-value mark's bytes belong to all its clients together, so none are shown).
    public static func perUser(_ list: [Session], rangeMarks: Set<String>, flows: some Sequence<(mark: UInt32, bytes: UInt64, packets: UInt64)>)
    -> [String: Traffic] {
        let values = Set(list.filter { rangeMarks.contains($0.markName) }.map(\.mark))
        var byValue: [UInt32: Traffic] = [:]
        for f in flows where values.contains(f.mark) {
            byValue[f.mark, default: Traffic()].bytes += f.bytes
            byValue[f.mark, default: Traffic()].packets += f.packets
        }
        var out: [String: Traffic] = [:]
        for s in list where rangeMarks.contains(s.markName) { out[s.client.description] = byValue[s.mark] ?? Traffic() }
        return out
    }

    public static func sessions(_ list: [Session], now: Int64, traffic: (Session) -> Traffic? = { _ in nil }) -> String {
        "{\"sessions\":[" + list.map { session($0, now: now, traffic: traffic($0)) }.joined(separator: ",") + "]}\n"
    }

    public static func error(_ message: String) -> String { "{\"error\":\(string(message))}\n" }
}

/// RFC 8908 (Captive Portal API) documents, `application/captive+json`.
public enum CaptiveAPI {
    public static let contentType = "application/captive+json"

    /// The document for a client: captive while its mark is a walled garden (its session's
    /// mark, else its static one), the portal URL of that mark, the seconds its session has
    /// left. `captiveMark`: the walled-garden mark it has (nil: not captive).
    public static func document(captive: Bool, portalURL: String?, session: Session?, now: Int64) -> String {
        var f = ["\"captive\":\(captive)"]
        if let portalURL { f.append("\"user-portal-url\":\(JSONText.string(portalURL))") }
        if !captive, let session, session.isLive(at: now) {
            f.append("\"seconds-remaining\":\(session.remaining(at: now))")
            f.append("\"can-extend-session\":false")
        }
        return "{" + f.joined(separator: ",") + "}\n"
    }
}
