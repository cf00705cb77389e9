import Foundation
import Testing

/// Packet marks (SO_RCVMARK) instead of a ctnetlink lookup per query: used only once they
/// have been seen to equal the connmarks, and never when the ruleset does not restore the
/// connmark onto packets or changes the packet mark afterwards.
extension KernelSuite {
@Suite("Packet marks (kernel)", .serialized)
struct PacketMarkTests {
    /// `n` queries from `client` with dnsperf (new names, so each goes upstream).
    func queries(_ lab: Lab, from client: String, n: Int, prefix: String) throws {
        let lines = (0..<n).map { "\(prefix)\($0).example.test A" }.joined(separator: "\n") + "\n"
        try lines.write(toFile: lab.path("\(prefix).queries"), atomically: true, encoding: .utf8)
        let perf = try lab.spawn(["dnsperf", "-s", "127.0.0.1", "-a", client, "-d", lab.path("\(prefix).queries"),
                                  "-c", "1", "-q", "10", "-n", "1"], log: "\(prefix).log")
        let r = lab.dnsperfResult(perf, log: "\(prefix).log")
        #expect(r.completed == n && r.rcodes["NOERROR"] == n, "\(r)")
    }

    /// 150 queries from 127.0.0.10; every upstream flow must carry 0x10 (its connmark).
    /// Stops markdns and returns its counters.
    func queriesMarked0x10(_ lab: Lab, _ md: ChildProcess, prefix: String) throws -> [String: Int] {
        try queries(lab, from: "127.0.0.10", n: 150, prefix: prefix)
        let flows = lab.upstreamFlows(to: "127.0.0.2")
        #expect(!flows.isEmpty && flows.allSatisfy { $0.mark == 0x10 }, "the connmark only: \(flows)")
        #expect(lab.stop(md) == 0)
        let s = lab.stats()
        #expect((s["marked"] ?? 0) >= 150, "\(s)")
        return s
    }

    func start(_ lab: Lab, extraRules: String? = nil, clients: [String: UInt32] = ["127.0.0.10": 0x10],
               args: [String] = []) throws -> ChildProcess {
        try lab.loadNftRules(clients: clients)
        if let extraRules { try lab.exec(["nft", "-f", "-"], input: extraRules) }
        try lab.startUpstream(address: "127.0.0.2")
        let md = try lab.startMarkdns(["--listen", "127.0.0.1:53", "--upstream", "127.0.0.2:5353", "--threads", "1"] + args)
        lab.forgetUpstreamFlows()
        return md
    }

    @Test("With the restore rule packet marks take over after 64 matching lookups; a changed connmark is honoured at once")
    func trustedAfterVerification() throws {
        let lab = try Lab("pktmark")
        defer { lab.close() }
        let md = try start(lab)
        try queries(lab, from: "127.0.0.10", n: 300, prefix: "warm")
        let log = lab.readLog("markdns.log")
        #expect(log.contains("marks from UDP packet marks (SO_RCVMARK) once they match"), "\(log)")
        #expect(log.contains("using packet marks (SO_RCVMARK)"), "\(log)")
        #expect(Set(lab.upstreamFlows(to: "127.0.0.2").map(\.mark)) == [0x10])
        // The packet path, not a lookup, now decides; a connmark change on the client's flow
        // (a captive portal letting a user in) must still count from the very next query.
        let source = "127.0.0.10#40053"
        _ = lab.dig("before.example.test", from: source)
        try lab.exec(["conntrack", "-U", "-p", "udp", "-s", "127.0.0.10", "--sport", "40053", "--dport", "53",
                      "--mark", "0x30"])
        lab.forgetUpstreamFlows()
        for i in 0..<5 {
            let r = lab.dig("after\(i).example.test", from: source, options: ["+short"])
            #expect(r.stdout.contains("192.0.2.7"), "\(r.stdout)")
        }
        let flows = lab.upstreamFlows(to: "127.0.0.2")
        #expect(!flows.isEmpty && flows.allSatisfy { $0.mark == 0x30 }, "\(flows)")
        #expect(lab.stop(md) == 0)
        let s = lab.stats()
        #expect((s["packet_marks"] ?? 0) >= 200, "\(s)")
        #expect((s["packet_marks_verified"] ?? 0) >= 64, "\(s)")
        #expect(s["packet_mark_mismatches"] == 0, "\(s)")
    }

    @Test("--mark-source conntrack: every mark looked up even with the restore rule")
    func conntrackOnly() throws {
        let lab = try Lab("pktctonly")
        defer { lab.close() }
        let md = try start(lab, args: ["--mark-source", "conntrack"])
        let s = try queriesMarked0x10(lab, md, prefix: "ctonly")
        #expect(s["packet_marks"] == 0 && s["packet_marks_verified"] == 0, "\(s)")
        #expect(lab.readLog("markdns.log").contains("marks from ctnetlink (mark source: conntrack)"))
    }

    @Test("The policy's [conntrack] mark-source: conntrack, then auto after a SIGHUP reload")
    func markSourceFromPolicyFollowsReload() throws {
        let lab = try Lab("pktpolicy")
        defer { lab.close() }
        try lab.loadNftRules(clients: ["127.0.0.10": 0x10])
        try lab.startUpstream(address: "127.0.0.2")
        func policy(_ source: String) -> String {
            "[conntrack]\nmark-source = \"\(source)\"\n\n[[pool]]\nname = \"wan\"\nservers = [\"127.0.0.2:5353\"]\ndefault = true\n"
        }
        try policy("conntrack").write(toFile: lab.path("policy.toml"), atomically: true, encoding: .utf8)
        let md = try lab.startMarkdns(["--listen", "127.0.0.1:53", "--config", lab.path("policy.toml"), "--threads", "1"])
        lab.forgetUpstreamFlows()
        try queries(lab, from: "127.0.0.10", n: 150, prefix: "before")
        #expect(!lab.readLog("markdns.log").contains("using packet marks"))
        try policy("auto").write(toFile: lab.path("policy.toml"), atomically: true, encoding: .utf8)
        md.signal(SIGHUP)
        try lab.waitForLog("markdns.log", contains: "reloaded policy")
        try queries(lab, from: "127.0.0.10", n: 300, prefix: "after")
        #expect(lab.readLog("markdns.log").contains("using packet marks (SO_RCVMARK)"))
        #expect(Set(lab.upstreamFlows(to: "127.0.0.2").map(\.mark)) == [0x10])
        #expect(lab.stop(md) == 0)
        let s = lab.stats()
        #expect((s["packet_marks"] ?? 0) >= 200 && (s["packet_marks"] ?? 0) <= 300 - 64, "\(s)")
        #expect(s["packet_mark_mismatches"] == 0, "\(s)")
    }

    @Test("Without the restore rule every mark is looked up in conntrack and still right")
    func noRestoreRule() throws {
        let lab = try Lab("pktnorestore")
        defer { lab.close() }
        // Marks only on the connection: packets reach markdns with mark 0.
        try lab.exec(["nft", "-f", "-"], input: """
            table inet ctonly {
              chain pre { type filter hook prerouting priority mangle; policy accept;
                ip saddr 127.0.0.10 ct mark set 0x10
              }
              chain out { type route hook output priority mangle; policy accept;
                meta mark != 0 ct mark set meta mark
              }
            }
            """)
        try lab.startUpstream(address: "127.0.0.2")
        let md = try lab.startMarkdns(["--listen", "127.0.0.1:53", "--upstream", "127.0.0.2:5353", "--threads", "1"])
        lab.forgetUpstreamFlows()
        let s = try queriesMarked0x10(lab, md, prefix: "norestore")
        #expect(s["packet_marks"] == 0, "\(s)")
        #expect(!lab.readLog("markdns.log").contains("using packet marks"))
    }

    @Test("A packet mark that differs from the connmark turns packet marks off; the connmark is used")
    func mismatchDetected() throws {
        let lab = try Lab("pktmismatch")
        defer { lab.close() }
        // After conf/nftables.conf restored and saved 0x10, something re-marks the packet.
        let md = try start(lab, extraRules: """
            table inet remark {
              chain pre { type filter hook prerouting priority mangle + 10; policy accept;
                ip saddr 127.0.0.10 udp dport 53 meta mark set 0x77
              }
            }
            """)
        let s = try queriesMarked0x10(lab, md, prefix: "mismatch")
        #expect(s["packet_marks"] == 0, "\(s)")
        #expect((s["packet_mark_mismatches"] ?? 0) >= 1, "\(s)")
        let log = lab.readLog("markdns.log")
        #expect(log.contains("packet mark 0x77 differs from connmark"), "\(log)")
    }
}
}
