import Foundation
import Testing

/// Plain upstreams' TCP queries on pooled connections (RFC 7766): per (mark, upstream), at
/// most max-connections of them, reused and pipelined, each with its client's mark.
extension KernelSuite {
@Suite("TCP upstream pools (kernel)", .serialized)
struct TCPPoolTests {
    static let clients: [String: UInt32] = ["127.0.0.10": 0x10, "127.0.0.11": 0x20]

    @Test("TCP clients' queries reuse a few marked connections per mark; a connection never carries two marks")
    func tcpQueriesShareMarkedConnections() throws {
        let lab = try Lab("tcppool")
        defer { lab.close() }
        try lab.loadNftRules(clients: Self.clients)
        try lab.startUpstream(address: "127.0.0.2")
        try lab.startMarkdns(["--listen", "127.0.0.1:53", "--upstream", "127.0.0.2:5353", "--cache-size", "0",
                              "--metrics", "127.0.0.1:9153", "--max-tcp-per-client", "100"])
        lab.forgetUpstreamFlows()
        for (client, prefix) in [("127.0.0.10", "ta"), ("127.0.0.11", "tb"), ("127.0.0.12", "tc")] {
            #expect(lab.burst(60, client: client, prefix: prefix, tcp: true) == 0, "60 concurrent TCP queries from \(client)")
        }
        let flows = lab.upstreamFlows(to: "127.0.0.2", proto: "tcp")
        let byMark = Dictionary(grouping: flows, by: \.mark)
        #expect(Set(byMark.keys) == [0x10, 0x20, 0], "each client's mark and only those: \(byMark)")
        for (mark, list) in byMark {
            #expect((1...2).contains(list.count), "mark \(mark): \(list.count) connections for 60 queries (max-connections 2)")
        }
        let ports = byMark.mapValues { Set($0.map(\.sport)) }
        #expect(ports[0x10, default: []].isDisjoint(with: ports[0x20, default: []]), "a connection of two marks")
        let up = "tcp://127.0.0.2:5353"
        let carried = lab.metric("markdns_upstream_connection_queries_total", [up]) ?? 0
        let opened = lab.metric("markdns_upstream_connections_opened_total", [up]) ?? 0
        #expect(carried == 180 && (3...6).contains(opened), "\(carried) queries on \(opened) connections")
        #expect(lab.upstreamFlows(to: "127.0.0.2", proto: "udp").isEmpty, "TCP clients' queries go upstream over TCP")
    }

    /// Reads queries off each TCP connection and answers them in reverse order once it has
    /// `batch` (or after 0.5 s); `qN.example.test` gets 192.0.2.N.
    static let reversingServer = #"""
    import socket, struct, threading, time, sys
    batch = int(sys.argv[1])
    srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.4", 5353)); srv.listen(16)
    def answer(q):
        end = 12
        while q[end]: end += 1 + q[end]
        first = q[13:13 + q[12]].decode()
        ip = bytes([192, 0, 2, int(first[1:])])
        return q[:2] + b"\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00" + q[12:end + 5] + b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04" + ip
    def serve(c):
        f = c.makefile("rb"); held = []; deadline = None
        c.settimeout(0.1)
        while True:
            try:
                n = f.read(2)
                if len(n) < 2: break
                held.append(f.read(struct.unpack("!H", n)[0])); deadline = deadline or time.time() + 0.5
            except socket.timeout:
                pass
            if held and (len(held) >= batch or time.time() > deadline):
                print("answering %d in reverse order on one connection" % len(held), flush=True)
                for q in reversed(held):
                    a = answer(q); c.sendall(struct.pack("!H", len(a)) + a)
                held = []; deadline = None
    print("ready", flush=True)
    while True:
        c, _ = srv.accept(); threading.Thread(target=serve, args=(c,), daemon=True).start()
    """#

    @Test("Pipelined TCP queries answered out of order reach the right clients")
    func outOfOrderAnswers() throws {
        let lab = try Lab("tcppool3")
        defer { lab.close() }
        try lab.loadNftRules(clients: Self.clients)
        try lab.spawnPython("reverser", Self.reversingServer, args: ["4"])
        try Lab.waitFor("the reversing server", seconds: 5) { lab.readLog("reverser.log").contains("ready") }
        try lab.startMarkdns(["--listen", "127.0.0.1:53", "--upstream", "127.0.0.4:5353", "--cache-size", "0",
                              "--upstream-timeout", "2000"], probe: nil)
        try Lab.waitFor("markdns listening", seconds: 10) { lab.readLog("markdns.log").contains("listening on") }
        let script = (1...4).map { "dig +time=4 +tries=1 +short +tcp -b 127.0.0.10 @127.0.0.1 q\($0).example.test A > \(lab.path("ooo"))-\($0) &" }
            .joined(separator: "\n") + "\nwait"
        _ = lab.run(["bash", "-c", script])
        for n in 1...4 {
            let got = (try? String(contentsOfFile: lab.path("ooo-\(n)"), encoding: .utf8)) ?? ""
            #expect(got.trimmingCharacters(in: .whitespacesAndNewlines) == "192.0.2.\(n)", "q\(n): \(got)")
        }
        #expect(lab.readLog("reverser.log").contains("answering 4 in reverse order on one connection"),
                "the four queries were pipelined on one connection: \(lab.readLog("reverser.log"))")
    }

    @Test("A TCP upstream that goes away under its pooled connection: the next query fails over, marked")
    func tcpUpstreamGoesAway() throws {
        let lab = try Lab("tcppool2")
        defer { lab.close() }
        try lab.loadNftRules(clients: Self.clients)
        let upstream = try lab.startUpstream(address: "127.0.0.2")
        _ = try lab.startUpstream(address: "127.0.0.3", answer: "192.0.2.8")
        try lab.startMarkdns(["--listen", "127.0.0.1:53", "--upstream", "127.0.0.2:5353", "--upstream", "127.0.0.3:5353",
                              "--cache-size", "0", "--upstream-timeout", "500"])
        let first = lab.dig("r1.example.test", from: "127.0.0.10", options: ["+tcp"])
        #expect(first.stdout.contains("192.0.2.7"), "\(first.stdout)")
        _ = lab.stop(upstream)
        // The pooled connection is gone with its server: the next query fails over to .3.
        let over = lab.dig("r2.example.test", from: "127.0.0.10", options: ["+tcp", "+time=4"])
        #expect(over.stdout.contains("192.0.2.8"), "failed over: \(over.stdout)")
        let flows = lab.upstreamFlows(to: "127.0.0.3", proto: "tcp")
        #expect(!flows.isEmpty && flows.allSatisfy { $0.mark == 0x10 }, "\(flows)")
    }
}
}
