import Foundation
import Testing

/// The policy file end to end: `markdns rules` renders the kernel rules, nft loads them,
/// markdns reads the same file, and marks, pools, walled garden, block lists and reloads
/// behave as the file says.
extension KernelSuite {
@Suite("Policy (kernel)", .serialized)
struct PolicyTests {
    /// Two pools (127.0.0.2 answers 192.0.2.7, 127.0.0.3 answers 192.0.2.8), mask 0xff00.
    static func policy(extraBlock: String = "", onMissing: String = "unmarked") -> String {
        """
        [server]
        listen = ["127.0.0.1:53"]

        [conntrack]
        mask = 0xff00
        base = 0x0001
        on-missing = "\(onMissing)"

        [[pool]]
        name = "wan-a"
        servers = ["127.0.0.2:5353"]
        default = true

        [[pool]]
        name = "wan-b"
        servers = ["127.0.0.3:5353"]

        [[mark]]
        value = 0x0100
        name = "alice"
        action = "forward"
        pool = "wan-a"
        block = ["ads.example.test"\(extraBlock)]

        [[mark]]
        value = 0x0200
        name = "bob"
        action = "forward"
        pool = "wan-b"

        [[mark]]
        value = 0x0300
        name = "guest"
        action = "walled-garden"
        portal = ["192.0.2.99"]
        allow = ["allowed.example.test"]
        ttl = 30

        [[client]]
        name = "alice"
        match = ["127.0.0.10"]
        mark = "alice"

        [[client]]
        name = "bob"
        match = ["127.0.0.11"]
        mark = "bob"

        [[client]]
        name = "guests"
        match = ["127.0.0.12/32"]
        mark = "guest"
        """
    }

    func lab(_ label: String, policy: String, loadRules: Bool = true) throws -> Lab {
        let lab = try Lab(label)
        do {
            try policy.write(toFile: lab.path("policy.toml"), atomically: true, encoding: .utf8)
            if loadRules {
                let check = lab.run([Lab.markdnsBinary, "check", "--config", lab.path("policy.toml")])
                #expect(check.status == 0, "check: \(check.stderr)")
                try lab.exec([Lab.markdnsBinary, "rules", "--config", lab.path("policy.toml"), "--apply"])
            }
            try lab.startUpstream(address: "127.0.0.2")
            try lab.startUpstream(address: "127.0.0.3", answer: "192.0.2.8")
        } catch {
            lab.close()
            throw error
        }
        return lab
    }

    func answer(_ lab: Lab, _ name: String, from client: String, tcp: Bool = false) -> String {
        lab.dig(name, from: client, options: ["+short", tcp ? "+tcp" : "+notcp"]).stdout
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test("Rules from `markdns rules` mark clients; each mark's queries reach its own pool with the mark")
    func marksSelectPools() throws {
        let lab = try lab("pools", policy: Self.policy())
        defer { lab.close() }
        try lab.startMarkdns(["--config", lab.path("policy.toml"), "--upstream-timeout", "400"], probe: nil)
        try lab.waitForDNS(server: "127.0.0.1", port: 53)
        lab.forgetUpstreamFlows()
        // Referee: the packet marks markdns sets (SO_MARK) as they leave, per pool.
        try lab.exec(["nft", "-f", "-"], input: """
            table inet referee {
              counter a_ok {}
              counter b_ok {}
              counter bad {}
              chain out {
                type filter hook output priority 0; policy accept;
                ip daddr 127.0.0.2 th dport 5353 meta mark 0x101 counter name a_ok accept
                ip daddr 127.0.0.3 th dport 5353 meta mark 0x201 counter name b_ok accept
                ip daddr { 127.0.0.2, 127.0.0.3 } th dport 5353 ip saddr 127.0.0.1 meta l4proto udp counter name bad
              }
            }
            """)
        for tcp in [false, true] {
            #expect(answer(lab, "a.example.test", from: "127.0.0.10", tcp: tcp) == "192.0.2.7")
            #expect(answer(lab, "b.example.test", from: "127.0.0.11", tcp: tcp) == "192.0.2.8")
        }
        // The client flows carry the marks the rendered rules gave them.
        let clientFlows = lab.flows().filter { $0.dport == 53 && $0.dst == "127.0.0.1" }
        #expect(clientFlows.contains { $0.src == "127.0.0.10" && $0.mark == 0x100 }, "\(clientFlows)")
        #expect(clientFlows.contains { $0.src == "127.0.0.11" && $0.mark == 0x200 }, "\(clientFlows)")
        // Upstream flows: pool a only with alice's mark, pool b only with bob's. The rendered
        // rules save only the masked bits on the connection ...
        let a = lab.upstreamFlows(to: "127.0.0.2"), b = lab.upstreamFlows(to: "127.0.0.3")
        #expect(!a.isEmpty && a.allSatisfy { $0.mark == 0x100 }, "pool a: \(a)")
        #expect(!b.isEmpty && b.allSatisfy { $0.mark == 0x200 }, "pool b: \(b)")
        // ... while the packets carry base | mark (0x1 from `base` outside the mask).
        let counters = lab.run(["nft", "list", "counters", "table", "inet", "referee"]).stdout
        let packets = { (name: String) in lab.nftCounter(table: "referee", name) }
        #expect(packets("a_ok") >= 2 && packets("b_ok") >= 2, "\(counters)")
        #expect(packets("bad") == 0, "upstream UDP packets without base|mark: \(counters)")
    }

    @Test("Walled garden answers the portal except for allowed names; block list answers NXDOMAIN")
    func walledGardenAndBlock() throws {
        let lab = try lab("garden", policy: Self.policy())
        defer { lab.close() }
        try lab.startMarkdns(["--config", lab.path("policy.toml")], probe: nil)
        try lab.waitForDNS(server: "127.0.0.1", port: 53)
        lab.forgetUpstreamFlows()
        let guest = lab.dig("anything.example.test", from: "127.0.0.12")
        #expect(guest.stdout.contains("192.0.2.99") && guest.stdout.contains("\t30\tIN\tA"), "\(guest.stdout)")
        #expect(lab.upstreamFlows(to: "127.0.0.2").isEmpty, "walled-garden answer must not go upstream")
        let aaaa = lab.dig("anything.example.test", from: "127.0.0.12", type: "AAAA")
        #expect(aaaa.stdout.contains("status: NOERROR") && aaaa.stdout.contains("ANSWER: 0"), "NODATA: \(aaaa.stdout)")
        #expect(answer(lab, "www.allowed.example.test", from: "127.0.0.12") == "192.0.2.7")
        // The same name for an authenticated client is the real answer: no answer crosses views.
        #expect(answer(lab, "anything.example.test", from: "127.0.0.10") == "192.0.2.7")
        let blocked = lab.dig("x.ads.example.test", from: "127.0.0.10")
        #expect(blocked.stdout.contains("status: NXDOMAIN"), "\(blocked.stdout)")
        // Bob has no block list.
        #expect(answer(lab, "x.ads.example.test", from: "127.0.0.11") == "192.0.2.8")
    }

    @Test("No kernel mark: on-missing = policy marks the client by selector and sets SO_MARK itself")
    func selectorMarksUnmarkedClient() throws {
        // No prerouting rules: clients arrive unmarked. Only the output save-mark rule.
        let lab = try lab("selector", policy: Self.policy(onMissing: "policy"), loadRules: false)
        defer { lab.close() }
        try lab.exec(["nft", "-f", "-"], input: """
            table inet save {
              chain out {
                type route hook output priority mangle;
                meta mark != 0 ct mark set meta mark
              }
            }
            """)
        let md = try lab.startMarkdns(["--config", lab.path("policy.toml")], probe: nil)
        try lab.waitForDNS(server: "127.0.0.1", port: 53)
        lab.forgetUpstreamFlows()
        #expect(answer(lab, "s.example.test", from: "127.0.0.11") == "192.0.2.8")
        let b = lab.upstreamFlows(to: "127.0.0.3")
        #expect(!b.isEmpty && b.allSatisfy { $0.mark == 0x201 }, "\(b)")  // no mask in this ruleset
        lab.stop(md)
        #expect(lab.readLog("markdns.log").contains("selector_marked="), "stats line missing")
        #expect(!lab.readLog("markdns.log").contains("selector_marked=0 "))
    }

    @Test("SIGHUP reloads a good file; a bad file is reported and the old policy stays")
    func reload() throws {
        let lab = try lab("reload", policy: Self.policy())
        defer { lab.close() }
        let md = try lab.startMarkdns(["--config", lab.path("policy.toml")], probe: nil)
        try lab.waitForDNS(server: "127.0.0.1", port: 53)
        #expect(answer(lab, "late.example.test", from: "127.0.0.10") == "192.0.2.7")

        try Self.policy(extraBlock: ", \"late.example.test\"")
            .write(toFile: lab.path("policy.toml"), atomically: true, encoding: .utf8)
        md.signal(SIGHUP)
        try lab.waitForLog("markdns.log", contains: "reloaded policy")
        #expect(lab.dig("late.example.test", from: "127.0.0.10").stdout.contains("NXDOMAIN"))

        try (Self.policy() + "\n[[mark]]\nvalue = 0x0400\nname = \"x\"\naction = \"forward\"\npool = \"nope\"\n")
            .write(toFile: lab.path("policy.toml"), atomically: true, encoding: .utf8)
        md.signal(SIGHUP)
        try lab.waitForLog("markdns.log", contains: "reload failed")
        let log = lab.readLog("markdns.log")
        #expect(log.contains("policy.toml:"), "error must name the file and line: \(log)")
        #expect(log.contains("pool"), "error must name the key: \(log)")
        // The previous (good) policy is still in force.
        #expect(lab.dig("late.example.test", from: "127.0.0.10").stdout.contains("NXDOMAIN"))
        #expect(md.isRunning)
    }

    @Test("`markdns check` reports file:line: key: reason and exits 1")
    func checkReportsErrors() throws {
        let lab = try Lab("check")
        defer { lab.close() }
        let bad = Self.policy().replacingOccurrences(of: "value = 0x0200", with: "value = 0x0210")
        try bad.write(toFile: lab.path("bad.toml"), atomically: true, encoding: .utf8)
        let r = lab.run([Lab.markdnsBinary, "check", "--config", lab.path("bad.toml")])
        #expect(r.status == 1)
        let line = bad.components(separatedBy: "\n").firstIndex { $0.contains("0x0210") }.map { $0 + 1 } ?? -1
        #expect(r.stderr.contains("bad.toml:\(line): mark[2].value:"), "\(r.stderr)")
        for example in ["accounting", "captive-portal", "multiwan"] {
            let path = Lab.packageRoot.appendingPathComponent("conf/\(example).toml").path
            let ok = lab.run([Lab.markdnsBinary, "check", "--config", path])
            #expect(ok.status == 0, "\(example): \(ok.stderr)")
            // Each example's rendered rules load in the kernel.
            let rules = lab.run([Lab.markdnsBinary, "rules", "--config", path])
            #expect(rules.status == 0)
            let load = lab.run(["nft", "-f", "-"], input: rules.stdout)
            #expect(load.status == 0, "\(example) rules do not load: \(load.stderr)")
        }
        // --remove deletes our table.
        try lab.exec([Lab.markdnsBinary, "rules", "--remove"])
        #expect(lab.run(["nft", "list", "table", "inet", "markdns"]).status != 0)
    }
}
}
