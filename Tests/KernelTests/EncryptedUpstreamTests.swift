import Foundation
import Testing

/// DoT and DoH upstreams against real unbound servers with a test PKI: every upstream
/// connection carries its client's mark and no other, connections are reused, certificate
/// failures fail over with the reason logged and never fall back to plain DNS.
extension KernelSuite {
@Suite("Encrypted upstreams (kernel)", .serialized)
struct EncryptedUpstreamTests {
    static let clientA = "127.0.0.10", clientB = "127.0.0.11", clientC = "127.0.0.12"
    static let clients: [String: UInt32] = [clientA: 0x10, clientB: 0x20, "fd6d::10": 0x10, "fd6d::11": 0x20]
    static let upstreams = ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"]

    func withLab(_ label: String, ipv6: Bool = false, _ body: (Lab, TestPKI) throws -> Void) throws {
        try #require(Lab.which("unbound") != nil && Lab.which("openssl") != nil && Lab.which("curl") != nil,
                     "unbound, openssl and curl are needed (scripts/install-deps.sh)")
        let lab = try Lab(label, ipv6: ipv6)
        defer { lab.close() }
        try lab.loadNftRules(clients: Self.clients)
        let pki = try TestPKI(lab: lab)
        try body(lab, pki)
    }

    @discardableResult
    func markdns(_ lab: Lab, _ args: [String], probe: Bool = true) throws -> ChildProcess {
        let p = try lab.startMarkdns(["--listen", "127.0.0.1:53", "--metrics", "127.0.0.1:9153",
                                      "--upstream-timeout", "1000", "--query-log", lab.path("queries.log")] + args, probe: probe ? ("127.0.0.1", 53) : nil)
        if !probe { try lab.waitForListener(process: p) }
        return p
    }

    func policy(_ lab: Lab, _ name: String, _ text: String) throws -> String {
        try text.write(toFile: lab.path(name), atomically: true, encoding: .utf8)
        return lab.path(name)
    }

    func expectAnswer(_ lab: Lab, _ name: String, from client: String, server: String = "127.0.0.1", tcp: Bool,
                      type: String = "A", expect: String = "192.0.2.7", sourceLocation: SourceLocation = #_sourceLocation) {
        let r = lab.dig(name, server: server, from: client, type: type, options: [tcp ? "+tcp" : "+notcp", "+time=4"])
        #expect(r.stdout.contains("status: NOERROR") && r.stdout.contains(expect),
                "\(client) \(tcp ? "tcp" : "udp") \(name): \(r.stdout)\(r.stderr)", sourceLocation: sourceLocation)
    }

    @Test("DoT: each client's connections carry its mark, two marks never share one, 100 queries reuse them")
    func dotMarksAndReuse() throws {
        try withLab("dot") { lab, pki in
            try lab.startUnbound("good", addresses: ["127.0.0.2"], cert: pki.cert, key: pki.key)
            try markdns(lab, ["--upstream", "tls://127.0.0.2#dns.test", "--tls-ca", pki.ca])
            for tcp in [false, true] {
                expectAnswer(lab, "a.example.test", from: Self.clientA, tcp: tcp)
                expectAnswer(lab, "b.example.test", from: Self.clientB, tcp: tcp)
                expectAnswer(lab, "c.example.test", from: Self.clientC, tcp: tcp)
            }
            for (client, prefix) in [(Self.clientA, "pa"), (Self.clientB, "pb"), (Self.clientC, "pc")] {
                #expect(lab.burst(100, client: client, prefix: prefix) == 0, "100 concurrent queries from \(client)")
                #expect(lab.burst(20, client: client, prefix: prefix + "t", tcp: true) == 0)
            }
            let byMark = lab.connectionsByMark(port: 853)
            #expect(Set(byMark.keys).isSubset(of: [0x10, 0x20, 0]), "only the clients' marks: \(byMark)")
            for mark: UInt32 in [0x10, 0x20, 0] {
                let n = byMark[mark]?.count ?? 0
                #expect(n >= 1 && n <= 2, "mark \(mark): \(n) connections for 121 queries (max-connections 2): \(byMark)")
            }
            let portsA = Set(byMark[0x10]?.map(\.sport) ?? []), portsB = Set(byMark[0x20]?.map(\.sport) ?? [])
            #expect(portsA.isDisjoint(with: portsB), "a connection of two marks")
            // 3 clients x 121 names; each mark opens at most max-connections (2), so all but
            // at most 6 of the queries upstream went on a connection that had carried one.
            let up = "tls://127.0.0.2:853#dns.test"
            let carried = lab.metric("markdns_upstream_connection_queries_total", [up]) ?? 0
            let opened = lab.metric("markdns_upstream_connections_opened_total", [up]) ?? 0
            let reused = lab.metric("markdns_upstream_reused_connection_queries_total", [up]) ?? 0
            #expect(carried >= 363 && opened >= 3 && opened <= 6, "\(carried) queries on \(opened) connections")
            #expect(reused >= carried - 6, "queries on reused connections: \(reused) of \(carried)")
            #expect(lab.plainFlows(to: Self.upstreams).isEmpty, "plain DNS to the upstream: \(lab.plainFlows(to: Self.upstreams))")
            #expect(lab.readLog("queries.log").contains(#""upstream":"tls://127.0.0.2:853#dns.test""#),
                    "the query log names the upstream as written")
        }
    }

    @Test("DoT over IPv6: marked per client")
    func dotIPv6() throws {
        try withLab("dot6", ipv6: true) { lab, pki in
            try lab.startUnbound("good", addresses: ["fd6d::2"], cert: pki.cert, key: pki.key)
            try markdns(lab, ["--listen", "[fd6d::1]:53", "--upstream", "tls://[fd6d::2]#dns.test", "--tls-ca", pki.ca])
            for tcp in [false, true] {
                expectAnswer(lab, "a6.example.test", from: "fd6d::10", server: "fd6d::1", tcp: tcp, type: "AAAA", expect: "2001:db8::7")
                expectAnswer(lab, "b6.example.test", from: "fd6d::11", server: "fd6d::1", tcp: tcp, type: "AAAA", expect: "2001:db8::7")
            }
            let byMark = lab.connectionsByMark(port: 853, to: "fd6d::2")
            #expect(byMark[0x10]?.isEmpty == false && byMark[0x20]?.isEmpty == false, "\(byMark)")
            #expect(Set(byMark.keys).isSubset(of: [0x10, 0x20, 0]), "\(byMark)")
        }
    }

    @Test("Another name, an unknown CA, a wrong pin: fail over with the reason logged, never plain DNS")
    func certificateFailures() throws {
        try withLab("certs") { lab, pki in
            try lab.startUnbound("good", addresses: ["127.0.0.2", "127.0.0.3"], cert: pki.cert, key: pki.key)
            try lab.startUnbound("rogue", addresses: ["127.0.0.4"], cert: pki.rogueCert, key: pki.rogueKey)
            let cases: [(servers: [String], words: String, cause: String)] = [
                (["tls://127.0.0.2#wrong.test", "tls://127.0.0.3#dns.test"], "wrong name", "wrong_name"),
                (["tls://127.0.0.4#dns.test", "tls://127.0.0.3#dns.test"], "unknown CA", "unknown_ca"),
                (["https://127.0.0.4#dns.test", "https://127.0.0.3#dns.test"], "unknown CA", "unknown_ca"),
            ]
            for (i, c) in cases.enumerated() {
                let p = try markdns(lab, c.servers.flatMap { ["--upstream", $0] } + ["--tls-ca", pki.ca])
                expectAnswer(lab, "f\(i).example.test", from: Self.clientA, tcp: false)
                expectAnswer(lab, "g\(i).example.test", from: Self.clientB, tcp: true)
                // The metrics name an upstream as markdns writes it: with its port.
                let first = c.servers[0].replacingOccurrences(of: "#", with: c.servers[0].hasPrefix("tls") ? ":853#" : ":443#")
                #expect((lab.metric("markdns_upstream_connection_failures_total", [first, "cause=\"\(c.cause)\""]) ?? 0) >= 1)
                #expect((lab.metric("markdns_upstream_failures_total", [first, "reason=\"tls\""]) ?? 0) >= 1)
                lab.stop(p)
                #expect(lab.readLog("markdns.log").contains(c.words), "\(c.words) not logged: \(lab.readLog("markdns.log"))")
            }
            // A pin of another key: no answer at all (the only server), SERVFAIL, logged.
            let wrongPin = try policy(lab, "pin.toml", """
                [[pool]]
                name = "dot"
                servers = ["tls://127.0.0.2#dns.test"]
                tls-ca = "\(pki.ca)"
                tls-pin = ["\(pki.roguePin)"]
                """)
            var p = try markdns(lab, ["--config", wrongPin], probe: false)
            let r = lab.dig("pin.example.test", from: Self.clientA, options: ["+time=5"])
            #expect(r.stdout.contains("status: SERVFAIL"), "\(r.stdout)")
            #expect((lab.metric("markdns_upstream_connection_failures_total", ["cause=\"pin_mismatch\""]) ?? 0) >= 1)
            lab.stop(p)
            #expect(lab.readLog("markdns.log").contains("pin mismatch"))
            // The right pin is accepted.
            let rightPin = try policy(lab, "pin2.toml", """
                [[pool]]
                name = "dot"
                servers = ["tls://127.0.0.2#dns.test"]
                tls-ca = "\(pki.ca)"
                tls-pin = ["\(pki.roguePin)", "\(pki.pin)"]
                """)
            p = try markdns(lab, ["--config", rightPin])
            expectAnswer(lab, "pinned.example.test", from: Self.clientA, tcp: false)
            lab.stop(p)
            #expect(lab.plainFlows(to: Self.upstreams).isEmpty, "plain DNS to an upstream: \(lab.plainFlows(to: Self.upstreams))")
        }
    }

    @Test("The server closing idle connections is invisible; a killed upstream is reconnected")
    func serverClosesAndRestarts() throws {
        try withLab("idle") { lab, pki in
            var unbound = try lab.startUnbound("good", addresses: ["127.0.0.2"], cert: pki.cert, key: pki.key,
                                               idleTimeoutMs: 1000)
            try markdns(lab, ["--upstream", "tls://127.0.0.2#dns.test", "--tls-ca", pki.ca])
            for round in 0..<3 {
                expectAnswer(lab, "i\(round).example.test", from: Self.clientA, tcp: false)
                usleep(1_800_000)  // unbound closes the idle connection after 1 s
            }
            expectAnswer(lab, "after.example.test", from: Self.clientA, tcp: false)
            let handshakes = lab.metric("markdns_upstream_handshakes_total") ?? 0
            #expect(handshakes >= 4, "a new connection after each close: \(handshakes)")
            lab.stop(unbound)
            _ = lab.dig("down.example.test", from: Self.clientA, options: ["+time=3"])
            unbound = try lab.startUnbound("good2", addresses: ["127.0.0.2"], cert: pki.cert, key: pki.key)
            try Lab.waitFor("an answer after the restart", seconds: 15) {
                lab.dig("back.example.test", from: Self.clientA, options: ["+time=2"]).stdout.contains("192.0.2.7")
            }
            #expect(lab.plainFlows(to: Self.upstreams).isEmpty)
        }
    }

    @Test("DoH: POST and GET over HTTP/2, connections marked per client")
    func doh() throws {
        try withLab("doh") { lab, pki in
            try lab.startUnbound("good", addresses: ["127.0.0.2"], cert: pki.cert, key: pki.key)
            var p = try markdns(lab, ["--upstream", "https://127.0.0.2#dns.test", "--tls-ca", pki.ca])
            for tcp in [false, true] {
                expectAnswer(lab, "a.example.test", from: Self.clientA, tcp: tcp)
                expectAnswer(lab, "b.example.test", from: Self.clientB, tcp: tcp)
            }
            #expect(lab.burst(60, client: Self.clientA, prefix: "h") == 0, "60 concurrent streams")
            let byMark = lab.connectionsByMark(port: 443)
            #expect((1...2).contains(byMark[0x10]?.count ?? 0) && (1...2).contains(byMark[0x20]?.count ?? 0), "\(byMark)")
            #expect(Set(byMark.keys).isSubset(of: [0x10, 0x20, 0]), "\(byMark)")
            lab.stop(p)
            let get = try policy(lab, "get.toml", """
                [[pool]]
                name = "doh"
                servers = ["https://127.0.0.2/dns-query#dns.test"]
                tls-ca = "\(pki.ca)"
                https-method = "get"
                """)
            p = try markdns(lab, ["--config", get])
            expectAnswer(lab, "get.example.test", from: Self.clientB, tcp: false)
            lab.stop(p)
            #expect(lab.plainFlows(to: Self.upstreams).isEmpty)
        }
    }

    @Test("edns-tcp-keepalive: every DoT query with EDNS asks for it, and the server's 1.5 s closes markdns's idle connection")
    func keepaliveAskedAndHonoured() throws {
        try withLab("keepalive") { lab, pki in
            let upstream = "tls://127.0.0.2:853#dns.test"
            for keepaliveMs in [1500, nil] as [Int?] {
                let server = try lab.startKeepaliveUpstream(address: "127.0.0.2", pki: pki, keepaliveMs: keepaliveMs)
                let p = try markdns(lab, ["--upstream", "tls://127.0.0.2#dns.test", "--tls-ca", pki.ca])
                let plain = lab.dig("noedns.example.test", from: Self.clientA, options: ["+noedns", "+time=4"])
                #expect(plain.stdout.contains("192.0.2.7"), "\(plain.stdout)")
                for tcp in [false, true] {
                    // The server's keepalive is about markdns's connection: clients never see it.
                    let r = lab.dig("ka.example.test", from: Self.clientA, options: [tcp ? "+tcp" : "+notcp", "+time=4"])
                    #expect(r.stdout.contains("192.0.2.7") && !r.stdout.contains("KEEPALIVE"), "\(r.stdout)")
                }
                let queries = lab.keepaliveQueries("127.0.0.2")
                #expect(queries.contains { !$0.edns && !$0.asked }, "the +noedns query went without OPT: \(queries)")
                #expect(queries.contains { $0.edns }, "\(queries)")
                #expect(queries.allSatisfy { $0.edns == $0.asked }, "every query with an OPT record asked: \(queries)")
                // markdns's own idle timeout is 10 s; the server's keepalive shortens it to
                // 1.5 s, checked once a second. The server never closes a connection itself.
                usleep(3_500_000)
                let idleClosed = lab.metric("markdns_upstream_idle_closed_total", [upstream]) ?? 0
                let open = lab.run(["conntrack", "-L", "-p", "tcp", "-d", "127.0.0.2", "--dport", "853", "--state", "ESTABLISHED"])
                    .stdout.split(separator: "\n").count
                let log = lab.readLog("keepalive-127.0.0.2.log")
                if keepaliveMs != nil {
                    #expect(idleClosed >= 1 && open == 0, "closed by markdns within 3.5 s: \(idleClosed), \(open) open")
                    #expect(log.contains("closed by client"), "\(log)")
                } else {
                    #expect(idleClosed == 0 && open >= 1, "still open after 3.5 s without keepalive: \(idleClosed), \(open) open")
                }
                lab.stop(p)
                lab.stop(server)
            }
        }
    }

    @Test("DoH: the server sees POST by default and GET with https-method = \"get\"")
    func dohMethodAtTheServer() throws {
        try #require(Lab.which("dnsdist") != nil, "dnsdist is needed (scripts/install-deps.sh)")
        try withLab("dohmethod") { lab, pki in
            try lab.startDnsdist(address: "127.0.0.6", cert: pki.cert, key: pki.key,
                                 postAddress: "192.0.2.80", getAddress: "192.0.2.71")
            for (method, expect) in [(nil, "192.0.2.80"), ("post", "192.0.2.80"), ("get", "192.0.2.71")] as [(String?, String)] {
                let config = try policy(lab, "doh-\(method ?? "default").toml", """
                    [[pool]]
                    name = "doh"
                    servers = ["https://127.0.0.6/dns-query#dns.test"]
                    tls-ca = "\(pki.ca)"
                    \(method.map { "https-method = \"\($0)\"" } ?? "")
                    """)
                let p = try markdns(lab, ["--config", config], probe: false)
                for tcp in [false, true] {
                    expectAnswer(lab, "\(method ?? "default").example.test", from: Self.clientA, tcp: tcp, expect: expect)
                }
                lab.stop(p)
            }
            #expect(lab.plainFlows(to: ["127.0.0.6"]).isEmpty)
        }
    }

    @Test("A large answer over DoT reaches a UDP client with TC; its TCP retry is marked")
    func largeAnswerTruncatedForUDP() throws {
        try withLab("tc") { lab, pki in
            try lab.startUnbound("good", addresses: ["127.0.0.2"], cert: pki.cert, key: pki.key)
            try markdns(lab, ["--upstream", "tls://127.0.0.2#dns.test", "--tls-ca", pki.ca, "--cache-size", "0"])
            let udp = lab.dig("big.test", from: Self.clientA, type: "TXT", options: ["+noedns", "+ignore", "+notcp"])
            #expect(udp.stdout.contains(" tc") && udp.stdout.contains("status: NOERROR"), "\(udp.stdout)")
            #expect(udp.stdout.contains("ANSWER: 0,") && !udp.stdout.contains("IN\tTXT\t\""), "no records in a truncated answer")
            let tcp = lab.dig("big.test", from: Self.clientA, type: "TXT", options: ["+noedns", "+tcp"])
            #expect(tcp.stdout.components(separatedBy: "IN\tTXT\t\"").count - 1 == 12, "\(tcp.stdout)")
            let byMark = lab.connectionsByMark(port: 853)
            #expect(byMark[0x10]?.isEmpty == false && Set(byMark.keys).isSubset(of: [0x10, 0]), "\(byMark)")
        }
    }
}
}
