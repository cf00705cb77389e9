import MarkCore
import Testing
@testable import MarkPolicy

@Suite("Per-domain servers")
struct DomainRoutingTests {
    let wire = DomainSetTests.wire

    @Test func mostSpecificDomainWins() {
        var m = DomainMap<String>()
        m.set("corp.example", "corp")
        m.set("EU.Corp.Example.", "eu")
        #expect(m.lookup("corp.example") == "corp")
        #expect(m.lookup("host.corp.example") == "corp")
        #expect(m.lookup("x.eu.corp.example") == "eu")
        #expect(m.lookup("eu.corp.example") == "eu")
        #expect(m.lookup("notcorp.example") == nil, "only at a label boundary")
        #expect(m.lookup("example") == nil)
        #expect(m.lookup(wireName: wire(["A", "EU", "CORP", "EXAMPLE"])) == "eu", "any case")
        #expect(m.lookup(wireName: [3, 0x61, 0x62]) == nil, "malformed names match nothing")
        let accepted = m.set("a..b", "x")
        #expect(!accepted)
    }

    static let policy = """
        [[pool]]
        name = "isp"
        servers = ["192.0.2.53"]
        [[pool]]
        name = "corp"
        servers = ["10.1.1.1", "10.1.1.2"]
        domains = ["corp.example", "10.in-addr.arpa"]
        [[pool]]
        name = "lab"
        servers = ["10.9.9.9"]
        domains = ["Lab.Corp.Example."]
        [[mark]]
        value = 0x1
        name = "guest"
        action = "walled-garden"
        portal = ["192.0.2.80"]
        allow = ["corp.example"]
        [[mark]]
        value = 0x2
        name = "banned"
        action = "refuse"
        """

    @Test func forwardedNamesFollowTheirDomainsPool() throws {
        let c = try Fixtures.load(Self.policy)
        #expect(c.pools[1].domains == ["corp.example", "10.in-addr.arpa"])
        #expect(c.pools[2].domains == ["lab.corp.example"], "normalised")
        let e = PolicyEngine(c)
        let unmarked = e.decide(connmark: .notFound, client: Fixtures.client("192.168.1.5"))
        #expect(e.pool(for: unmarked, wireName: wire(["www", "example", "org"])) == "isp")
        #expect(e.pool(for: unmarked, wireName: wire(["git", "corp", "example"])) == "corp")
        #expect(e.pool(for: unmarked, wireName: wire(["x", "lab", "corp", "example"])) == "lab")
        #expect(e.pool(for: unmarked, wireName: wire(["4", "3", "2", "10", "in-addr", "arpa"])) == "corp")
        // A walled-garden mark's allow-listed names are forwarded, and routed the same way.
        let guest = e.decide(connmark: .found(0x1), client: Fixtures.client("192.168.1.6"))
        #expect(e.pool(for: guest, wireName: wire(["git", "corp", "example"])) == "corp")
        // A refused mark forwards nothing.
        let banned = e.decide(connmark: .found(0x2), client: Fixtures.client("192.168.1.7"))
        #expect(e.pool(for: banned, wireName: wire(["git", "corp", "example"])) == nil)
    }

    @Test func aDomainRoutedTwiceIsAnError() {
        let e = Fixtures.loadError("""
            [[pool]]
            name = "a"
            servers = ["192.0.2.1"]
            domains = ["corp.example"]
            [[pool]]
            name = "b"
            servers = ["192.0.2.2"]
            domains = ["CORP.example."]
            """)
        #expect(e?.key == "pool[2].domains[1]")
        #expect(e?.reason.contains("already routed to pool 'a'") == true, "\(String(describing: e))")
    }

    @Test func badDomainNamesTheKey() {
        let e = Fixtures.loadError("""
            [[pool]]
            name = "a"
            servers = ["192.0.2.1"]
            domains = ["ok.example", "*.corp.example"]
            """)
        #expect(e?.key == "pool[1].domains[2]")
        #expect(e?.line == 4)
    }
}
