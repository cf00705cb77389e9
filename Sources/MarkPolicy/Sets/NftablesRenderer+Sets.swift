import MarkSessions

/// The `[[set]]` parts of the nftables ruleset: the sets markdns fills (`NAME_v4`,
/// `NAME_v6`, `flags timeout`), the route-mark rules with their counters, and the preamble
/// that refills the table without deleting it (deleting would empty the sets).
extension NftablesRenderer {
    /// Declares the table, every set and both chains (an `add` keeps what exists, members
    /// included), then empties the chains, the client selector sets and the session sets and
    /// maps for the full definitions that follow (which refill them with the live sessions).
    /// Objects the policy no longer names stay, unreferenced.
    /// `elements = { ... }`. Not `String.contains(_:)`: that one lives in _StringProcessing,
    /// and linking it brings the whole Regex engine (~200 KB) into the static binary.
    private static func isElementsLine(_ line: String) -> Bool {
        line.drop { $0 == " " }.hasPrefix("elements")
    }

    static func keepPreamble(_ config: PolicyConfig) -> [String] {
        var out = ["# The [[set]] sets must keep their members across a re-apply: the table is not deleted.",
                   "table \(table) {"]
        for s in config.sets { out += dynamicSet(s, comment: false) }
        for c in clientSets(config) { out += set(c.name, type: c.type, interval: c.interval, []).filter { !Self.isElementsLine($0) } }
        for s in sessionSets(config) {
            out += ["    \(s.isMap ? "map" : "set") \(s.name) {", "        type \(s.type)", "        flags timeout", "    }"]
        }
        out += ["    chain prerouting {",
                "        type filter hook prerouting priority mangle; policy accept;",
                "    }",
                "    chain output {",
                "        type route hook output priority mangle; policy accept;",
                "    }",
                "}",
                "flush chain \(table) prerouting",
                "flush chain \(table) output"]
        for c in clientSets(config) { out.append("flush set \(table) \(c.name)") }
        for s in sessionSets(config) { out.append("flush \(s.isMap ? "map" : "set") \(table) \(s.name)") }
        return out
    }

    /// Session sets and maps (as `render` declares them): name, map or set, nft type.
    static func sessionSets(_ config: PolicyConfig) -> [(name: String, isMap: Bool, type: String)] {
        config.marks.filter(\.sessions).flatMap { m in
            SessionClient.Family.allCases.map { f in
                (SessionMaps.name(mark: m.name, family: f), m.range != nil,
                 SessionMaps.nftType(f) + (m.range == nil ? "" : " : mark"))
            }
        }
    }

    /// The sets markdns fills, and a named counter per route-marking set.
    static func dynamicSets(_ config: PolicyConfig) -> [String] {
        var out: [String] = []
        for s in config.sets {
            out.append("    # Set \(s.name): addresses answered for \(s.domains.joined(separator: ", "))"
                       + (s.marks.isEmpty ? "" : " to clients of mark \(s.marks.map { config.mark(value: $0)?.name ?? hex($0) }.joined(separator: ", "))")
                       + "; filled by markdns, timeout max(TTL, \(s.timeoutMin) s).")
            out += dynamicSet(s, comment: true)
            if s.routeMark != nil { out += ["    counter route_\(s.name) {", "    }"] }
        }
        return out
    }

    private static func dynamicSet(_ s: SetRule, comment: Bool) -> [String] {
        [("_v4", "ip daddr"), ("_v6", "ip6 daddr")].flatMap { suffix, type in
            ["    set \(s.name)\(suffix) {", "        typeof \(type)", "        flags timeout", "    }"]
        }
    }

    /// Packets to the members of a route-marking set get its bits on the packet and the
    /// connection (ORed: other bits are kept), counted.
    static func routeRules(_ config: PolicyConfig, step: Int) -> [String] {
        let routed = config.sets.filter { $0.routeMark != nil }
        guard !routed.isEmpty else { return [] }
        var out = ["# \(step)) Route by name: packets to addresses of a [[set]] with route-mark get its bits,",
                   "#    saved to the connection."]
        for s in routed {
            let m = hex(s.routeMark!)
            for (suffix, match) in [("_v4", "ip daddr"), ("_v6", "ip6 daddr")] {
                out.append("\(match) @\(s.name)\(suffix) meta mark set meta mark or \(m) ct mark set ct mark or \(m) "
                           + "counter name \"route_\(s.name)\" comment \"route \(s.name)\"")
            }
        }
        return out
    }

    /// Client selector sets: name, type, interval flag (as `render` declares them).
    static func clientSets(_ config: PolicyConfig) -> [(name: String, type: String, interval: Bool)] {
        config.clients.flatMap { c -> [(name: String, type: String, interval: Bool)] in
            var out: [(name: String, type: String, interval: Bool)] = []
            if c.match.contains(where: { if case .network(let n) = $0, !n.isIPv6 { true } else { false } }) {
                out.append(("client_\(c.name)_v4", "ipv4_addr", true))
            }
            if c.match.contains(where: { if case .network(let n) = $0, n.isIPv6 { true } else { false } }) {
                out.append(("client_\(c.name)_v6", "ipv6_addr", true))
            }
            if c.match.contains(where: { if case .mac = $0 { true } else { false } }) {
                out.append(("client_\(c.name)_mac", "ether_addr", false))
            }
            return out
        }
    }
}
