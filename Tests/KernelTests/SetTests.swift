import Foundation
import Testing

/// `[[set]]` end to end: `markdns rules --apply` loads the sets, a real dnsmasq upstream
/// answers from its local data, and the addresses are in the nft sets the moment `dig`
/// returns, with timeout max(TTL, timeout-min), per mark, along CNAME chains, both
/// families, refreshed by cache hits; the route mark reaches a TCP connection and its
/// conntrack entry; `markdns sets` and the per-set metrics show it; without the sets
/// answers still flow and each failure is counted and logged once.
extension KernelSuite {
@Suite("Name-based sets (kernel)", .serialized)
struct SetTests {
    /// Kids (0x100, 127.0.0.10) fill "vpn" (timeout-min 900, route mark 0x10000) and
    /// "also" (timeout-min 30); adults (0x200, 127.0.0.11) fill "also" only. The upstream
    /// answers with TTL 600.
    static let policy = """
    [server]
    listen = ["127.0.0.1:53"]
    [conntrack]
    mask = 0xff00
    [[pool]]
    name = "up"
    servers = ["127.0.0.2:5353"]
    [[mark]]
    value = 0x100
    name = "kids"
    [[mark]]
    value = 0x200
    name = "adults"
    [[client]]
    name = "kids"
    match = ["127.0.0.10"]
    mark = "kids"
    [[client]]
    name = "adults"
    match = ["127.0.0.11"]
    mark = "adults"
    [[set]]
    name = "vpn"
    domains = ["video.test"]
    marks = ["kids"]
    timeout-min = 900
    route-mark = 0x10000
    table = 100
    [[set]]
    name = "also"
    domains = ["video.test"]
    timeout-min = 30
    """

    /// Elements of an nft set: address -> (timeout, expires) in seconds.
    static func members(_ lab: Lab, _ set: String) -> [String: (timeout: Double, expires: Double)] {
        let text = lab.run(["nft", "list", "set", "inet", "markdns", set]).stdout
        guard let open = text.range(of: "elements = {"), let close = text[open.upperBound...].firstIndex(of: "}") else { return [:] }
        var out: [String: (timeout: Double, expires: Double)] = [:]
        for entry in text[open.upperBound..<close].split(separator: ",") {
            let w = entry.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" }).map(String.init)
            guard let addr = w.first else { continue }
            func value(_ key: String) -> Double {
                guard let i = w.firstIndex(of: key), i + 1 < w.count else { return -1 }
                return duration(w[i + 1])
            }
            out[addr] = (value("timeout"), value("expires"))
        }
        return out
    }

    /// nft's durations: 1d2h3m4s5ms.
    static func duration(_ s: String) -> Double {
        var total = 0.0, number = ""
        var i = s.startIndex
        while i < s.endIndex {
            let c = s[i]
            if c.isNumber { number.append(c); i = s.index(after: i); continue }
            var unit = String(c)
            if c == "m", s.index(after: i) < s.endIndex, s[s.index(after: i)] == "s" { unit = "ms"; i = s.index(after: i) }
            let n = Double(number) ?? 0
            switch unit {
            case "d": total += n * 86400
            case "h": total += n * 3600
            case "m": total += n * 60
            case "s": total += n
            case "ms": total += n / 1000
            default: break
            }
            number = ""
            i = s.index(after: i)
        }
        return total
    }

    @Test("Sets fill before the answer leaves: TTL vs minimum, marks, CNAME, AAAA, cache refresh, route mark; missing sets do not block")
    func setsFillBeforeTheAnswer() throws {
        let lab = try Lab("sets")
        defer { lab.close() }
        try Self.policy.write(toFile: lab.path("policy.toml"), atomically: true, encoding: .utf8)
        let check = lab.run([Lab.markdnsBinary, "check", "--config", lab.path("policy.toml")])
        #expect(check.status == 0, "check: \(check.stderr)")
        try lab.exec([Lab.markdnsBinary, "rules", "--config", lab.path("policy.toml"), "--apply"])
        try lab.startUpstream(address: "127.0.0.2", extra: [
            "--local-ttl=600",
            "--host-record=a.video.test,192.0.2.21,2001:db8::21",
            "--host-record=b.video.test,192.0.2.22",
            "--host-record=target.cdn.test,192.0.2.50",
            "--cname=www.video.test,target.cdn.test",
            "--host-record=c.video.test,192.0.2.23",
        ])
        let md = try lab.startMarkdns(["--config", lab.path("policy.toml"), "--cache-size", "100",
                                        "--metrics", "127.0.0.1:9153"], probe: nil)
        try lab.waitForDNS(server: "127.0.0.1", port: 53)

        func short(_ name: String, from client: String, type: String = "A") -> String {
            lab.dig(name, from: client, type: type, options: ["+short"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        }

        // A kid's answer: both sets, checked the moment dig returns (no waiting).
        #expect(short("a.video.test", from: "127.0.0.10") == "192.0.2.21")
        let vpn = Self.members(lab, "vpn_v4")
        let also = Self.members(lab, "also_v4")
        #expect(vpn["192.0.2.21"].map { $0.timeout == 900 && $0.expires > 890 } == true, "min wins over TTL 600: \(vpn)")
        #expect(also["192.0.2.21"].map { $0.timeout == 600 && $0.expires > 590 } == true, "TTL wins over min 30: \(also)")
        // AAAA fills the _v6 sets.
        #expect(short("a.video.test", from: "127.0.0.10", type: "AAAA") == "2001:db8::21")
        #expect(Self.members(lab, "vpn_v6")["2001:db8::21"]?.timeout == 900)
        #expect(Self.members(lab, "vpn_v4").count == 1, "AAAA fills no _v4 set")
        // A CNAME chain fills the address at its end.
        #expect(short("www.video.test", from: "127.0.0.10").hasSuffix("192.0.2.50"))
        #expect(Self.members(lab, "vpn_v4")["192.0.2.50"] != nil, "\(Self.members(lab, "vpn_v4"))")
        // Another mark fills only the set without marks.
        #expect(short("b.video.test", from: "127.0.0.11") == "192.0.2.22")
        #expect(Self.members(lab, "vpn_v4")["192.0.2.22"] == nil, "an adult's answer is not in the kids' set")
        #expect(Self.members(lab, "also_v4")["192.0.2.22"] != nil)
        // A name under no set's domain fills nothing.
        #expect(short("x.example.test", from: "127.0.0.10") == "192.0.2.7")
        #expect(Self.members(lab, "also_v4")["192.0.2.7"] == nil)

        // A cache hit refreshes the timeout.
        usleep(3_000_000)
        let before = try #require(Self.members(lab, "vpn_v4")["192.0.2.21"]?.expires)
        #expect(short("a.video.test", from: "127.0.0.10") == "192.0.2.21")
        let after = try #require(Self.members(lab, "vpn_v4")["192.0.2.21"]?.expires)
        #expect(after > before + 2, "cache hit refreshed: \(before) -> \(after)")

        // `markdns sets` lists the members with their timeouts and time left.
        let listed = lab.run([Lab.markdnsBinary, "sets", "--config", lab.path("policy.toml"), "--name", "vpn"])
        #expect(listed.status == 0 && listed.stdout.contains("192.0.2.21 timeout 15m expires")
                && listed.stdout.contains("2001:db8::21 timeout 15m expires") && !listed.stdout.contains("also_v4"), "\(listed)")

        // Route mark: a TCP connection to a member carries 0x10000 (counter) and so does
        // its conntrack entry.
        try lab.exec(["ip", "addr", "add", "192.0.2.21/32", "dev", "lo"])
        try lab.spawnPython("server", """
            import socket
            s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("192.0.2.21", 8080)); s.listen(4); print("listening", flush=True)
            while True:
                c, _ = s.accept(); c.sendall(b"hi"); c.close()
            """)
        try lab.waitForLog("server.log", contains: "listening")
        let before4 = lab.nftCounter(table: "markdns", "route_vpn")
        let conn = lab.run(["python3", "-c", """
            import socket
            c = socket.socket(); c.bind(("127.0.0.10", 0)); c.connect(("192.0.2.21", 8080)); print(c.recv(2)); c.close()
            """])
        #expect(conn.stdout.contains("hi"), "\(conn.stderr)")
        #expect(lab.nftCounter(table: "markdns", "route_vpn") > before4, "route rule counted the connection")
        let tcp = lab.flows().filter { $0.proto == "tcp" && $0.dst == "192.0.2.21" && $0.dport == 8080 }
        #expect(!tcp.isEmpty && tcp.allSatisfy { $0.mark & 0x10000 != 0 }, "conntrack keeps the route mark: \(tcp)")

        // Sets missing (the rules of an older policy without [[set]] loaded; the marks still
        // work): answers still come, quickly; failures counted, each logged once.
        let withoutSets = String(Self.policy[..<Self.policy.range(of: "[[set]]")!.lowerBound])
        try withoutSets.write(toFile: lab.path("nosets.toml"), atomically: true, encoding: .utf8)
        try lab.exec([Lab.markdnsBinary, "rules", "--config", lab.path("nosets.toml"), "--apply"])
        #expect(lab.run(["nft", "list", "set", "inet", "markdns", "vpn_v4"]).status != 0, "the sets are gone")
        let t0 = Date()
        #expect(short("c.video.test", from: "127.0.0.10") == "192.0.2.23")
        #expect(short("c.video.test", from: "127.0.0.11") == "192.0.2.23")
        #expect(Date().timeIntervalSince(t0) < 2)
        #expect(lab.run([Lab.markdnsBinary, "sets", "--config", lab.path("policy.toml")]).status == 1, "sets missing: exit 1")
        ObservabilityTests.waitForMetrics(lab)
        let m = ObservabilityTests.scrape(lab)
        let e = "markdns_set_elements_total"
        // vpn: 192.0.2.21, 2001:db8::21, 192.0.2.50 added, the cache hit refreshed;
        // also: the same plus 192.0.2.22; c.video.test refused for the kid (both sets) and
        // the adult (also).
        #expect(m["\(e){result=added,set=vpn}"] == 3 && m["\(e){result=refreshed,set=vpn}"] == 1, "\(m.filter { $0.key.hasPrefix(e) })")
        #expect(m["\(e){result=added,set=also}"] == 4 && m["\(e){result=failed,set=also}"] == 2, "\(m.filter { $0.key.hasPrefix(e) })")
        #expect(m["\(e){result=failed,set=vpn}"] == 1, "\(m.filter { $0.key.hasPrefix(e) })")
        lab.stop(md)
        let log = lab.readLog("markdns.log")
        #expect(log.components(separatedBy: "the kernel refused elements of also_v4").count == 2, "logged once: \(log)")
        #expect(log.components(separatedBy: "the kernel refused elements of vpn_v4").count == 2, "logged once: \(log)")
        let s = lab.stats()
        #expect(s["set_failures"] == 3 && s["set_added"] == 7 && s["set_refreshed"] == 2, "\(s)")
        #expect(s["set_deadline_misses"] == 0, "\(s)")
    }

    /// The packaged default: `serve --user nobody`. The event loops keep CAP_NET_ADMIN, so
    /// their netlink set writes still succeed after the drop.
    @Test("sets fill under serve --user nobody")
    func setsFillAsNobody() throws {
        let lab = try Lab("setsuser")
        defer { lab.close() }
        try Self.policy.write(toFile: lab.path("policy.toml"), atomically: true, encoding: .utf8)
        try lab.exec([Lab.markdnsBinary, "rules", "--config", lab.path("policy.toml"), "--apply"])
        try lab.startUpstream(address: "127.0.0.2", extra: ["--local-ttl=600", "--host-record=a.video.test,192.0.2.21,2001:db8::21"])
        let md = try lab.startMarkdns(["--config", lab.path("policy.toml"), "--user", "nobody"], probe: nil)
        try lab.waitForDNS(server: "127.0.0.1", port: 53)
        #expect(lab.readLog("markdns.log").contains("running as nobody"))
        for type in ["A", "AAAA"] {
            let r = lab.dig("a.video.test", from: "127.0.0.10", type: type, options: ["+short"]).stdout
            #expect(r.contains(type == "A" ? "192.0.2.21" : "2001:db8::21"), "\(r)")
        }
        #expect(Self.members(lab, "vpn_v4")["192.0.2.21"]?.timeout == 900, "\(Self.members(lab, "vpn_v4"))")
        #expect(Self.members(lab, "vpn_v6")["2001:db8::21"]?.timeout == 900, "\(Self.members(lab, "vpn_v6"))")
        lab.stop(md)
        let s = lab.stats()
        #expect(s["set_added"] == 4 && s["set_failures"] == 0 && s["set_deadline_misses"] == 0, "\(s)")
    }
}
}
