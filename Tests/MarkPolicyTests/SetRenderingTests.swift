import Foundation
import Testing
import MarkCore
import MarkSessions
@testable import MarkPolicy

@Suite("[[set]] rendering: nft sets, route-mark rules, ip rule hints, a re-apply keeps members")
struct SetRenderingTests {
    typealias F = Fixtures

    @Test func rendersTimeoutSetsPerFamilyAndRouteRules() throws {
        let c = try F.loadExample("route-by-name.toml")
        let text = NftablesRenderer.render(c)
        let lines = text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        for name in ["via_vpn_v4", "via_vpn_v6", "bank_v4", "bank_v6"] {
            #expect(lines.contains("set \(name) {"), "\(name)")
        }
        #expect(text.contains("set via_vpn_v4 {\n        typeof ip daddr\n        flags timeout\n    }"))
        #expect(text.contains("set via_vpn_v6 {\n        typeof ip6 daddr\n        flags timeout\n    }"))
        let route4 = "ip daddr @via_vpn_v4 meta mark set meta mark or 0x1000000 ct mark set ct mark or 0x1000000 counter name \"route_via_vpn\" comment \"route via_vpn\""
        #expect(lines.filter { $0 == route4 }.count == 2, "in prerouting and output")
        #expect(lines.contains { $0.hasPrefix("ip6 daddr @via_vpn_v6 meta mark set meta mark or 0x1000000") })
        #expect(!lines.contains { $0.contains("@bank_v4") && $0.contains("meta mark set") }, "no route mark, no rule")
        #expect(!lines.contains("delete table inet markdns"), "deleting the table would empty the sets")
        #expect(lines.contains("flush chain inet markdns prerouting") && lines.contains("flush chain inet markdns output"))
        #expect(lines.contains("flush set inet markdns client_kids_v4"))
        #expect(RoutingHints.commands(c) == ["ip rule add fwmark 0x1000000/0x1000000 table 200",
                                             "ip -6 rule add fwmark 0x1000000/0x1000000 table 200"])
    }

    @Test func withoutSetsTheRulesetIsUnchanged() throws {
        let c = try F.loadExample("multiwan.toml")
        #expect(c.sets.isEmpty)
        #expect(NftablesRenderer.render(c).contains("delete table inet markdns"))
    }

    /// Loads the ruleset, adds members to the sets (as markdns would), loads it again and
    /// finds the members still there, the rules once, and the route-mark rule counting.
    @Test(.enabled(if: Namespace.available, "needs root, nft, iptables-restore, ip6tables-restore and ip netns"))
    func reapplyKeepsSetMembers() throws {
        let c = try F.loadExample("route-by-name.toml")
        try Namespace.with { ns in
            let file = try Namespace.temp(NftablesRenderer.render(c), "nft")
            defer { try? FileManager.default.removeItem(atPath: file) }
            try ns.run(["nft", "-c", "-f", file])
            try ns.run(["nft", "-f", file])
            try ns.run(["nft", "add", "element", "inet", "markdns", "via_vpn_v4", "{ 192.0.2.9 timeout 300s }"])
            try ns.run(["nft", "add", "element", "inet", "markdns", "via_vpn_v6", "{ 2001:db8::9 timeout 300s }"])
            try ns.run(["nft", "-f", file])
            #expect(try ns.run(["nft", "list", "set", "inet", "markdns", "via_vpn_v4"]).contains("192.0.2.9"))
            #expect(try ns.run(["nft", "list", "set", "inet", "markdns", "via_vpn_v6"]).contains("2001:db8::9"))
            let rules = try ns.run(["nft", "list", "chain", "inet", "markdns", "prerouting"])
            #expect(rules.components(separatedBy: "@via_vpn_v4").count == 2, "one route rule after a re-apply: \(rules)")
            #expect(rules.components(separatedBy: "comment \"client kids\"").count == 2)
            try ns.run(["nft", "delete", "table", "inet", "markdns"])
        }
    }

    /// Sets beside sessions in one table: a re-apply keeps the set's members and refills the
    /// session set and map from the live sessions only (a stale element goes).
    @Test(.enabled(if: Namespace.available, "needs root, nft, iptables-restore, ip6tables-restore and ip netns"))
    func reapplyWithSessionsKeepsMembersAndRefillsSessions() throws {
        let c = try F.load(SessionPolicyTests.policy + "\n[[set]]\nname = \"vpn\"\ndomains = [\"video.test\"]\n")
        let live = [KernelElement(set: "session_guest_v4", client: .address(F.ip("192.0.2.7")), value: nil, timeout: 600),
                    KernelElement(set: "session_users_v4", client: .address(F.ip("192.0.2.8")), value: 0x1001, timeout: 600)]
        let text = NftablesRenderer.render(c, sessions: live)
        #expect(text.contains("flush set inet markdns session_guest_v4") && text.contains("flush map inet markdns session_users_v4"))
        try Namespace.with { ns in
            let file = try Namespace.temp(text, "nft")
            defer { try? FileManager.default.removeItem(atPath: file) }
            try ns.run(["nft", "-c", "-f", file])
            try ns.run(["nft", "-f", file])
            try ns.run(["nft", "add", "element", "inet", "markdns", "vpn_v4", "{ 192.0.2.9 timeout 300s }"])
            try ns.run(["nft", "add", "element", "inet", "markdns", "session_guest_v4", "{ 192.0.2.66 timeout 300s }"])
            try ns.run(["nft", "add", "element", "inet", "markdns", "session_users_v4", "{ 192.0.2.67 timeout 300s : 0x1002 }"])
            try ns.run(["nft", "-c", "-f", file])
            try ns.run(["nft", "-f", file])
            #expect(try ns.run(["nft", "list", "set", "inet", "markdns", "vpn_v4"]).contains("192.0.2.9"))
            let guest = try ns.run(["nft", "list", "set", "inet", "markdns", "session_guest_v4"])
            #expect(guest.contains("192.0.2.7 timeout 10m") && !guest.contains("192.0.2.66"), "\(guest)")
            let users = try ns.run(["nft", "list", "map", "inet", "markdns", "session_users_v4"])
            #expect(users.contains("192.0.2.8 timeout 10m") && !users.contains("192.0.2.67"), "\(users)")
            let rules = try ns.run(["nft", "list", "chain", "inet", "markdns", "prerouting"])
            #expect(rules.components(separatedBy: "@session_guest_v4").count == 2, "one session rule: \(rules)")
            try ns.run(["nft", "delete", "table", "inet", "markdns"])
        }
    }
}
