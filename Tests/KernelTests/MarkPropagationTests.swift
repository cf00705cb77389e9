import Foundation
import Testing

/// Marks through the real kernel: each test has its own namespace with conf/nftables.conf
/// loaded, a real dnsmasq upstream and the markdns binary, and reads marks back from the
/// conntrack table.
extension KernelSuite {
@Suite("Mark propagation (kernel)", .serialized)
struct MarkPropagationTests {
    static let clientA = "127.0.0.10", clientB = "127.0.0.11", clientC = "127.0.0.12"
    static let markA: UInt32 = 0x10, markB: UInt32 = 0x20
    static let clients: [String: UInt32] = [clientA: markA, clientB: markB, "fd6d::10": markA, "fd6d::11": markB]

    /// A lab with the rules, an upstream at 127.0.0.2#5353 and [fd6d::2]#5353, and markdns.
    func withLab(_ label: String, ipv6: Bool = false, markdnsArgs: [String] = [],
                 upstreams: [String] = ["127.0.0.2:5353"], _ body: (Lab) throws -> Void) throws {
        let lab = try Lab(label, ipv6: ipv6)
        defer { lab.close() }
        try lab.loadNftRules(clients: Self.clients)
        try lab.startUpstream(address: "127.0.0.2")
        if ipv6 { try lab.startUpstream(address: "fd6d::2") }
        try lab.startMarkdns(["--listen", "127.0.0.1:53"] + (ipv6 ? ["--listen", "[fd6d::1]:53"] : [])
                             + upstreams.flatMap { ["--upstream", $0] } + ["--upstream-timeout", "400"] + markdnsArgs)
        lab.forgetUpstreamFlows()
        try body(lab)
    }

    /// Queries from one client, then checks that every new upstream flow carries `mark`.
    func expectUpstreamMark(_ lab: Lab, client: String, server: String, upstream: String,
                            mark: UInt32, tcp: Bool, name: String) {
        lab.forgetUpstreamFlows()
        let r = lab.dig(name, server: server, from: client, type: server.contains(":") ? "AAAA" : "A",
                        options: tcp ? ["+tcp"] : ["+notcp"])
        #expect(r.status == 0 && r.stdout.contains("status: NOERROR"), "query from \(client) failed: \(r.stdout)")
        let flows = lab.upstreamFlows(to: upstream, proto: tcp ? "tcp" : "udp")
        #expect(!flows.isEmpty, "no \(tcp ? "tcp" : "udp") upstream flow for \(client)")
        for f in flows {
            #expect(f.mark == mark, "upstream flow for \(client) has mark \(f.mark), want \(mark): \(f)")
        }
    }

    @Test("IPv4: each client's upstream flow carries its own mark, UDP and TCP; unmarked stays 0")
    func ipv4MarksPerClient() throws {
        try withLab("v4") { lab in
            for tcp in [false, true] {
                expectUpstreamMark(lab, client: Self.clientA, server: "127.0.0.1", upstream: "127.0.0.2",
                                   mark: Self.markA, tcp: tcp, name: "a.example.test")
                expectUpstreamMark(lab, client: Self.clientB, server: "127.0.0.1", upstream: "127.0.0.2",
                                   mark: Self.markB, tcp: tcp, name: "b.example.test")
                expectUpstreamMark(lab, client: Self.clientC, server: "127.0.0.1", upstream: "127.0.0.2",
                                   mark: 0, tcp: tcp, name: "c.example.test")
            }
        }
    }

    @Test("IPv6: each client's upstream flow carries its own mark, UDP and TCP")
    func ipv6MarksPerClient() throws {
        try withLab("v6", ipv6: true, upstreams: ["[fd6d::2]:5353"]) { lab in
            for tcp in [false, true] {
                expectUpstreamMark(lab, client: "fd6d::10", server: "fd6d::1", upstream: "fd6d::2",
                                   mark: Self.markA, tcp: tcp, name: "a6.example.test")
                expectUpstreamMark(lab, client: "fd6d::11", server: "fd6d::1", upstream: "fd6d::2",
                                   mark: Self.markB, tcp: tcp, name: "b6.example.test")
                expectUpstreamMark(lab, client: "fd6d::12", server: "fd6d::1", upstream: "fd6d::2",
                                   mark: 0, tcp: tcp, name: "c6.example.test")
            }
        }
    }

    @Test("Concurrent load from two marked clients: no query leaves with the other's mark")
    func concurrentClientsNeverMixMarks() throws {
        try #require(Lab.which("dnsperf") != nil, "dnsperf missing")
        try withLab("load") { lab in
            // In-kernel referee: count upstream query packets by the first letter of their
            // qname (the byte after the 12-byte DNS header and the first label's length)
            // and by the packet's mark, as they leave markdns.
            try lab.exec(["nft", "-f", "-"], input: """
                table inet referee {
                  chain out {
                    type filter hook output priority 0; policy accept;
                    ip daddr 127.0.0.2 udp dport 5353 @th,168,8 0x61 meta mark 0x10 counter name a_ok
                    ip daddr 127.0.0.2 udp dport 5353 @th,168,8 0x61 meta mark != 0x10 counter name a_bad
                    ip daddr 127.0.0.2 udp dport 5353 @th,168,8 0x62 meta mark 0x20 counter name b_ok
                    ip daddr 127.0.0.2 udp dport 5353 @th,168,8 0x62 meta mark != 0x20 counter name b_bad
                  }
                  counter a_ok {}
                  counter a_bad {}
                  counter b_ok {}
                  counter b_bad {}
                }
                """)
            for (letter, _) in [("a", 0), ("b", 1)] {
                let lines = (0..<4000).map { "\(letter)\($0).example.test A" }.joined(separator: "\n") + "\n"
                try lines.write(toFile: lab.path("\(letter).queries"), atomically: true, encoding: .utf8)
            }
            let perfA = try lab.spawn(["dnsperf", "-f", "inet", "-s", "127.0.0.1", "-a", Self.clientA, "-d", lab.path("a.queries"),
                                       "-c", "4", "-q", "50", "-l", "3"], log: "perf-a.log")
            let perfB = try lab.spawn(["dnsperf", "-f", "inet", "-s", "127.0.0.1", "-a", Self.clientB, "-d", lab.path("b.queries"),
                                       "-c", "4", "-q", "50", "-l", "3"], log: "perf-b.log")
            perfA.wait()
            perfB.wait()
            let counters = lab.run(["nft", "list", "counters", "table", "inet", "referee"]).stdout
            let packets = { (name: String) in lab.nftCounter(table: "referee", name) }
            #expect(packets("a_ok") > 1000, "client A's queries did not reach the upstream: \(counters)")
            #expect(packets("b_ok") > 1000, "client B's queries did not reach the upstream: \(counters)")
            #expect(packets("a_bad") == 0, "client A's queries left with another mark: \(counters)")
            #expect(packets("b_bad") == 0, "client B's queries left with another mark: \(counters)")
            // And in conntrack: every upstream flow is marked with one of the two marks.
            let flows = lab.upstreamFlows(to: "127.0.0.2", proto: "udp")
            #expect(!flows.isEmpty)
            for f in flows { #expect(f.mark == Self.markA || f.mark == Self.markB, "bad flow \(f)") }
            #expect(Set(flows.map(\.mark)) == [Self.markA, Self.markB])
            for log in ["perf-a.log", "perf-b.log"] {
                let text = lab.readLog(log)
                #expect(text.contains("Queries completed"), "\(log): \(text)")
            }
        }
    }

    @Test("A connmark changed with conntrack -U is used by the very next query")
    func connmarkUpdateHonoured() throws {
        try withLab("update") { lab in
            let source = "\(Self.clientA)#40053"
            expectUpstreamMark(lab, client: source, server: "127.0.0.1", upstream: "127.0.0.2",
                               mark: Self.markA, tcp: false, name: "before.example.test")
            try lab.exec(["conntrack", "-U", "-p", "udp", "-s", Self.clientA, "--sport", "40053",
                          "--dport", "53", "--mark", "0x30"])
            expectUpstreamMark(lab, client: source, server: "127.0.0.1", upstream: "127.0.0.2",
                               mark: 0x30, tcp: false, name: "after.example.test")
        }
    }

    @Test("A query REDIRECTed to markdns (captive-portal hijack) still finds its mark")
    func redirectedQueryFindsMark() throws {
        try withLab("redirect") { lab in
            // The client asks 127.0.0.99:53, which nobody serves; NAT redirects it to us.
            try lab.exec(["nft", "-f", "-"], input: """
                table ip hijack {
                  chain out { type nat hook output priority -100; policy accept;
                    ip daddr 127.0.0.99 udp dport 53 redirect to :53
                    ip daddr 127.0.0.99 tcp dport 53 redirect to :53
                  }
                }
                """)
            for tcp in [false, true] {
                expectUpstreamMark(lab, client: Self.clientA, server: "127.0.0.99", upstream: "127.0.0.2",
                                   mark: Self.markA, tcp: tcp, name: "hijacked.example.test")
            }
            let stats = lab.readLog("markdns.log")
            #expect(!stats.contains("no conntrack entry"), "lookup failed for a redirected query: \(stats)")
        }
    }

    @Test("Truncated UDP answer is relayed with TC; the TCP retry carries the mark too")
    func truncationThenTCP() throws {
        try withLab("tc") { lab in
            lab.forgetUpstreamFlows()
            let udp = lab.dig("big.example.test", from: Self.clientA, type: "TXT", options: ["+noedns", "+ignore"])
            #expect(udp.stdout.contains(" tc"), "expected TC on the UDP answer: \(udp.stdout)")
            let full = lab.dig("big.example.test", from: Self.clientA, type: "TXT", options: ["+noedns"])
            #expect(full.stdout.contains("ANSWER: 1"), "TCP retry failed: \(full.stdout)")
            let tcpFlows = lab.upstreamFlows(to: "127.0.0.2", proto: "tcp")
            #expect(!tcpFlows.isEmpty)
            for f in tcpFlows { #expect(f.mark == Self.markA, "TCP retry flow \(f)") }
        }
    }
}
}
