import Testing
import MarkCore
@testable import MarkPolicy

/// The annotated examples in conf/ load through the real file reader and say what their
/// comments say.
@Suite("Example configs")
struct ExampleConfigTests {
    typealias F = Fixtures

    @Test func accounting() throws {
        let c = try F.loadExample("accounting.toml")
        #expect(c.conntrack == ConntrackConfig(mask: 0xff00, base: 0, onMissing: .policy))
        #expect(c.pools.map(\.name) == ["isp", "corp"])
        #expect(c.pools[1].domains == ["corp.example", "10.in-addr.arpa"])
        #expect(c.local.domain == "lan" && c.local.hosts == ["/etc/hosts"] && c.local.records.count == 4)
        #expect(c.pools[0].servers.map(\.description) == ["192.0.2.53:53", "198.51.100.53:53", "[2001:db8::53]:53"])
        #expect(c.defaultPool == "isp")
        #expect(c.marks.map(\.name) == ["alice", "bob", "kids", "servers"])
        #expect(c.marks.allSatisfy { $0.action == .forward(pool: "isp") }, "every user forwards to the one pool")
        #expect(Set(c.clients.map(\.mark)).count == 4, "each user has a mark of their own")
        let e = PolicyEngine(c)
        let laptop = e.decide(connmark: nil, client: F.client("192.168.1.99", mac: "AA:BB:CC:00:00:10"))
        #expect(laptop.markName == "alice")
        #expect(laptop.upstreamMark == 0x100)
        #expect(e.decide(connmark: nil, client: F.client("192.168.1.21")).markName == "bob")
        #expect(e.decide(connmark: nil, client: F.client("192.168.1.22")).markName == "none")
        #expect(e.decide(connmark: nil, client: F.client("fd00:2::5")).markName == "kids")
        #expect(e.decide(connmark: nil, client: F.client("192.168.1.200")).markName == "servers")
        let kids = e.decide(connmark: .found(0x0300), client: F.client("192.168.2.5"))
        #expect(kids.answer(name: "cdn.ads.example", qtype: 1)
                == LocalAnswer(kind: .addresses([F.ip("0.0.0.0")]), ttl: 600, reason: .blocked))
    }

    @Test func captivePortal() throws {
        let c = try F.loadExample("captive-portal.toml")
        #expect(c.conntrack.onMissing == .policy)
        let e = PolicyEngine(c)
        let guest = e.decide(connmark: nil, client: F.client("192.168.111.23"))
        #expect(guest.markName == "unauthenticated")
        #expect(guest.view.kind == .walledGarden)
        #expect(guest.answer(name: "captive.apple.com", qtype: 1)?.kind == .addresses([F.ip("192.168.111.1")]))
        #expect(guest.answer(name: "www.example.org", qtype: 28)?.kind == .addresses([F.ip("fd00:111::1")]))
        #expect(guest.answer(name: "portal.example.net", qtype: 1) == nil)
        #expect(guest.answer(name: "checkout.pay.example-psp.com", qtype: 1) == nil)
        #expect(guest.answer(name: "www.example.org", qtype: 1)?.ttl == 30)
        let wifiGuest = e.decide(connmark: .notFound, client: F.client("10.1.1.1", iface: "wlan-guest5"))
        #expect(wifiGuest.markName == "unauthenticated")
        let registered = e.decide(connmark: nil, client: F.client("192.168.111.77", mac: "02:00:00:00:01:01"))
        #expect(registered.markName == "authenticated", "the authenticated rule comes before the guest subnet")
        #expect(registered.answer(name: "www.example.org", qtype: 1) == nil)
        #expect(registered.answer(name: "smtp.example.org", qtype: 1)?.kind == .nxDomain)
        #expect(registered.view != guest.view)
        #expect(e.decide(connmark: .found(0x0f00), client: F.client("192.168.111.5")).isRefused)
        #expect(e.decide(connmark: nil, client: F.client("192.168.111.5", mac: "02:00:00:00:0f:0f")).isRefused)
    }

    @Test func multiwan() throws {
        let c = try F.loadExample("multiwan.toml")
        #expect(c.conntrack.mask == 0x00ff_0000)
        #expect(c.pools.map(\.name) == ["isp1", "isp2"])
        #expect(c.defaultPool == "isp1")
        #expect(c.routing == [0x01_0000: 101, 0x02_0000: 102])
        #expect(RoutingHints.commands(c) == [
            "ip rule add fwmark 0x10000/0xff0000 table 101",
            "ip -6 rule add fwmark 0x10000/0xff0000 table 101",
            "ip rule add fwmark 0x20000/0xff0000 table 102",
            "ip -6 rule add fwmark 0x20000/0xff0000 table 102",
        ])
        let e = PolicyEngine(c)
        let lab = e.decide(connmark: nil, client: F.client("192.168.20.9"))
        #expect(lab.action == .forward(pool: "isp2"))
        #expect(lab.upstreamMark == 0x02_0000)
        let office = e.decide(connmark: .found(0x3f00 | 0x01_0000), client: F.client("192.168.20.9"))
        #expect(office.action == .forward(pool: "isp1"), "the kernel mark wins; mwan3's bits are ignored")
        #expect(office.upstreamMark == 0x01_0000)
        #expect(e.decide(connmark: nil, client: F.client("198.51.100.7", iface: "wan2")).markName == "wan2")
    }

    /// The package's /etc/markdns/markdns.toml: every connmark is carried upstream as it is,
    /// to the one pool; unmarked queries are forwarded unmarked; the LAN's names stay local.
    @Test func packagedDefault() throws {
        let c = try F.loadExample("markdns.toml")
        #expect(c.conntrack == ConntrackConfig(mask: 0xffff_ffff, base: 0, onMissing: .unmarked, markSource: .auto))
        #expect(c.server.listen?.map(\.description) == ["192.168.1.1:53"])
        #expect(c.pools.map(\.name) == ["upstream"] && c.defaultPool == "upstream")
        #expect(c.marks.isEmpty && c.clients.isEmpty)
        let e = PolicyEngine(c)
        let marked = e.decide(connmark: .found(0x10), client: F.client("192.168.1.50"))
        #expect(marked.action == .forward(pool: "upstream"))
        #expect(marked.upstreamMark == 0x10, "the client's connmark goes upstream unchanged")
        #expect(e.decide(connmark: .notFound, client: F.client("192.168.1.50")).upstreamMark == 0)
        #expect(c.local.domain == "lan" && c.local.privateReverse)
    }

    @Test(arguments: ["accounting.toml", "captive-portal.toml", "multiwan.toml", "markdns.toml", "route-by-name.toml"])
    func everyKeyIsAnnotated(_ name: String) throws {
        // Each `key = value` line either has a trailing comment or follows a comment line.
        let text = try F.readFile(F.confPath(name))
        var previousWasComment = false
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.drop { $0 == " " }
            if line.hasPrefix("#") { previousWasComment = true; continue }
            if line.contains("=") && !line.hasPrefix("\"") {
                #expect(previousWasComment || line.contains("#"), "\(name):\(i + 1) has no comment: \(line)")
            }
            if !line.isEmpty && !line.hasPrefix("[") { previousWasComment = false }
        }
    }
}
