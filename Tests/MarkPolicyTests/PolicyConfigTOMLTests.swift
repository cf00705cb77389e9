import Testing
import MarkCore
@testable import MarkPolicy

@Suite("Policy TOML loading")
struct PolicyConfigTOMLTests {
    typealias F = Fixtures

    static let pool = """
    [[pool]]
    name = "p"
    servers = ["192.0.2.1"]
    """

    @Test func loadsEverySetting() throws {
        let c = try F.load("""
        [server]
        listen = ["192.168.10.1", "[::1]:5353"]
        """ + "\n" + F.basic)
        #expect(c.server.listen == [Endpoint(address: F.ip("192.168.10.1"), port: 53),
                                    Endpoint(address: F.ip("::1"), port: 5353)])
        #expect(c.conntrack == ConntrackConfig(mask: 0xff00, base: 0x5, onMissing: .policy))
        #expect(c.pools == [
            Pool(name: "main", servers: [Endpoint(address: F.ip("192.0.2.1"), port: 53),
                                         Endpoint(address: F.ip("192.0.2.2"), port: 5353)]),
            Pool(name: "office", servers: [Endpoint(address: F.ip("2001:db8::53"), port: 53)]),
        ])
        #expect(c.defaultPool == "main", "the first pool when none says default = true")
        #expect(c.marks.map(\.value) == [0x100, 0x200, 0x300])
        #expect(c.marks[0].action == .walledGarden(WalledGarden(
            portal: [F.ip("10.0.0.1"), F.ip("fd00::1")], allow: ["portal.example", "pay.example.com"], ttl: 20, pool: "main")))
        #expect(c.marks[1].action == .forward(pool: "office"))
        #expect(c.marks[1].block == ["ads.example", "tracker.example.net"])
        #expect(c.marks[1].blockAnswer == .nullAddress)
        #expect(c.marks[1].blockTTL == 300)
        #expect(c.marks[2].action == .refuse)
        #expect(c.clients.map(\.name) == ["boss", "guests", "bad"])
        #expect(c.clients.map(\.mark) == [0x200, 0x100, 0x300], "marks by name and by value")
        #expect(c.clients[1].match.map(\.description) == ["192.168.1.0/24", "fd00:1::/64", "iface:wlan*"])
        #expect(c.routing.isEmpty)
    }

    @Test func defaultPoolAndRoutingHints() throws {
        let c = try F.load(Self.pool + """

        [[pool]]
        name = "q"
        servers = ["192.0.2.2"]
        default = true
        [[mark]]
        value = 7
        name = "m"
        table = 100
        """)
        #expect(c.defaultPool == "q")
        #expect(c.marks[0].action == .forward(pool: "q"), "a mark without a pool forwards to the default pool")
        #expect(c.routing == [7: 100])
        #expect(c.server.listen == nil)
    }

    // MARK: - Errors with positions

    @Test func syntaxErrorHasTheParserLine() throws {
        let e = try #require(F.loadError("""
        [conntrack]
        mask = 0xff00
        base = = 3
        """))
        #expect(e.line == 3)
        #expect(e.key == nil)
        #expect(e.description.hasPrefix("/etc/markdns/policy.toml:3: syntax error: "))
    }

    @Test func duplicateKeyIsASyntaxError() throws {
        let e = try #require(F.loadError(Self.pool + "\nname = \"again\"\n"))
        #expect(e.line == 4)
    }

    @Test func unknownKeyWithSuggestion() throws {
        let e = try #require(F.loadError("""
        [conntrack]
        mask = 0xff00
        onmissing = "policy"
        """ + "\n" + Self.pool))
        #expect(e == PolicyError(file: "/etc/markdns/policy.toml", line: 3, key: "conntrack.onmissing",
                                 reason: "unknown key (did you mean 'on-missing'?)"))
        #expect(e.description == "/etc/markdns/policy.toml:3: conntrack.onmissing: unknown key (did you mean 'on-missing'?)")
    }

    @Test func unknownTableAndKeyInTheNthArrayTable() throws {
        let e1 = try #require(F.loadError(Self.pool + "\n[pools]\nx = 1\n"))
        #expect(e1.key == "pools")
        #expect(e1.line == 4)
        #expect(e1.reason.contains("did you mean 'pool'?"))

        let e2 = try #require(F.loadError(Self.pool + """

        [[mark]]
        value = 1
        name = "a"
        [[client]]
        name = "one"
        match = ["10.0.0.1"]
        mark = 1
        [[client]]
        name = "two"
        match = ["10.0.0.2"]
        colour = "red"
        mark = 1
        """))
        #expect(e2.key == "client[2].colour")
        #expect(e2.line == 14)
        #expect(e2.reason.hasPrefix("unknown key (known: name, match, mark)"))
    }

    @Test func markOutsideMask() throws {
        let e = try #require(F.loadError("""
        [conntrack]
        mask = 0xff00
        """ + "\n" + Self.pool + """

        [[mark]]
        name = "ok"
        value = 0x100
        [[mark]]
        name = "wide"
        value = 0x10300
        """))
        #expect(e.description == "/etc/markdns/policy.toml:11: mark[2].value: mark 0x10300 has bits outside mask 0xff00")
    }

    @Test func missingPool() throws {
        let e = try #require(F.loadError(Self.pool + """

        [[mark]]
        value = 1
        name = "a"
        [[mark]]
        value = 2
        name = "b"
        pool = "nope"
        """))
        #expect(e.key == "mark[2].pool")
        #expect(e.line == 10)
        #expect(e.reason == "pool 'nope' is not defined by any [[pool]]")
    }

    @Test func clientMarkMustBeDefined() throws {
        let byValue = try #require(F.loadError(Self.pool + """

        [[mark]]
        value = 1
        name = "a"
        [[client]]
        name = "c"
        match = ["10.0.0.0/8"]
        mark = 2
        """))
        #expect(byValue.description == "/etc/markdns/policy.toml:10: client[1].mark: mark 0x2 is not defined by any [[mark]]")
        let byName = try #require(F.loadError(Self.pool + "\n[[client]]\nname = \"c\"\nmatch = [\"10.0.0.0/8\"]\nmark = \"ghost\"\n"))
        #expect(byName.key == "client[1].mark")
        #expect(byName.line == 7)
        #expect(byName.reason == "no [[mark]] is named 'ghost'")
    }

    @Test func badSelectorInAMultiLineArrayPointsAtTheElement() throws {
        let e = try #require(F.loadError(Self.pool + """

        [[mark]]
        value = 1
        name = "a"
        [[client]]
        name = "c"
        match = [
            "10.0.0.0/8",   # ok [really]
            "aa:bb:cc:dd:ee:ff",
            "wlan1",
        ]
        mark = 1
        """))
        #expect(e.key == "client[1].match[3]")
        #expect(e.line == 12)
        #expect(e.reason.contains("write interfaces as \"iface:wlan1\""))
    }

    @Test func badServerAndPortal() throws {
        let e1 = try #require(F.loadError("[[pool]]\nname = \"p\"\nservers = [\"192.0.2.1\", \"192.0.2.1:0\"]\n"))
        #expect(e1.key == "pool[1].servers[2]")
        #expect(e1.line == 3)
        #expect(e1.reason.contains("not a port number"))
        let e2 = try #require(F.loadError(Self.pool + "\n[[mark]]\nvalue = 1\nname = \"g\"\naction = \"walled-garden\"\nportal = [\"portal.example\"]\n"))
        #expect(e2.key == "mark[1].portal[1]")
        #expect(e2.line == 8)
    }

    @Test func typeAndRangeErrors() throws {
        let e1 = try #require(F.loadError("[conntrack]\nmask = \"0xff00\"\n" + Self.pool))
        #expect(e1.description == "/etc/markdns/policy.toml:2: conntrack.mask: expected an integer, found a string")
        let e2 = try #require(F.loadError("[conntrack]\nmask = 0x1ffffffff\n" + Self.pool))
        #expect(e2.reason.contains("out of range"))
        let e3 = try #require(F.loadError("conntrack = 5\n" + Self.pool))
        #expect(e3.key == "conntrack")
        #expect(e3.reason == "expected a table ([conntrack]), found a integer" || e3.reason.hasPrefix("expected a table"))
        let e4 = try #require(F.loadError("[pool]\nname = \"p\"\n"))
        #expect(e4.key == "pool")
        #expect(e4.reason.hasPrefix("expected an array of tables ([[pool]])"))
        let e5 = try #require(F.loadError(Self.pool + "\n[[mark]]\nvalue = -1\nname = \"a\"\n"))
        #expect(e5.key == "mark[1].value")
        let e6 = try #require(F.loadError(Self.pool + "\n[conntrack]\non-missing = \"maybe\"\n"))
        #expect(e6.reason == "'maybe' is not one of \"policy\", \"unmarked\", \"refuse\"")
        let e7 = try #require(F.loadError(Self.pool + "\n[conntrack]\nmark-source = \"packet\"\n"))
        #expect(e7.key == "conntrack.mark-source")
        #expect(e7.reason == "'packet' is not one of \"auto\", \"conntrack\"")
    }

    @Test func markSourceDefaultsToAutoAndReadsConntrack() throws {
        #expect(try F.load(Self.pool).conntrack.markSource == .auto)
        #expect(try F.load(Self.pool + "\n[conntrack]\nmark-source = \"conntrack\"\n").conntrack.markSource == .conntrack)
    }

    @Test func requiredKeysPointAtTheirTable() throws {
        let e = try #require(F.loadError(Self.pool + "\n[[mark]]\nvalue = 1\nname = \"g\"\naction = \"walled-garden\"\nallow = [\"a.example\"]\n"))
        #expect(e.key == "mark[1].portal")
        #expect(e.reason == "is required")
        #expect(e.line == 4, "the [[mark]] header")
        let e2 = try #require(F.loadError(Self.pool + "\n[[client]]\nname = \"c\"\nmatch = [\"10.0.0.1\"]\n"))
        #expect(e2.key == "client[1].mark")
        #expect(e2.line == 4)
    }

    @Test func semanticErrors() throws {
        func reason(_ text: String) throws -> String { try #require(F.loadError(text)).description }
        #expect(try reason("") == "/etc/markdns/policy.toml: pool: no [[pool]]: at least one upstream pool is needed")
        #expect(try reason("[conntrack]\nmask = 0\n" + Self.pool).contains("conntrack.mask: must not be 0"))
        #expect(try reason("[conntrack]\nmask = 0xff00\nbase = 0x100\n" + Self.pool)
                .contains(":3: conntrack.base: base 0x100 has bits inside mask 0xff00"))
        #expect(try reason(Self.pool + "\n[[mark]]\nvalue = 0\nname = \"z\"\n").contains("mark[1].value: mark 0 means unmarked"))
        #expect(try reason(Self.pool + "\n[[mark]]\nvalue = 1\nname = \"a\"\n[[mark]]\nvalue = 1\nname = \"b\"\n")
                .contains(":8: mark[2].value: mark 0x1 is already defined by mark[1] (a)"))
        #expect(try reason(Self.pool + "\n[[mark]]\nvalue = 1\nname = \"a\"\n[[mark]]\nvalue = 2\nname = \"a\"\n")
                .contains(":9: mark[2].name: mark name 'a' is used twice"))
        #expect(try reason(Self.pool + "\n[[mark]]\nvalue = 1\nname = \"other\"\n").contains("is reserved"))
        #expect(try reason(Self.pool + "\n[[mark]]\nvalue = 1\nname = \"9lives\"\n").contains("not a valid name"))
        #expect(try reason(Self.pool + "\n[[mark]]\nvalue = 1\nname = \"a\"\ntable = 254\n").contains("mark[1].table: table 254 is reserved"))
        #expect(try reason(Self.pool + "\n[[mark]]\nvalue = 1\nname = \"a\"\nportal = [\"10.0.0.1\"]\n")
                .contains("mark[1].portal: only applies to action = \"walled-garden\""))
        #expect(try reason(Self.pool + "\n[[mark]]\nvalue = 1\nname = \"a\"\naction = \"refuse\"\nblock = [\"x.example\"]\n")
                .contains("mark[1].block: has no effect with action = \"refuse\""))
        #expect(try reason(Self.pool + "\n[[mark]]\nvalue = 1\nname = \"a\"\nblock = [\"ok.example\", \"*.ads.example\"]\n")
                .contains(":7: mark[1].block[2]: '*.ads.example': no wildcards"))
        #expect(try reason(Self.pool + "\n[[pool]]\nname = \"p\"\nservers = [\"192.0.2.9\"]\n").contains("pool[2].name: pool 'p' is defined twice"))
        #expect(try reason(Self.pool + "\ndefault = true\n[[pool]]\nname = \"q\"\nservers = [\"192.0.2.9\"]\ndefault = true\n")
                .contains("pool[2].default: pool 'p' is already the default"))
        #expect(try reason("[[pool]]\nname = \"p\"\nservers = []\n").contains("pool[1].servers: is empty"))
        #expect(try reason(Self.pool + "\n[server]\nlisten = []\n").contains("server.listen: is empty"))
        #expect(try reason(Self.pool + "\n[[mark]]\nvalue = 1\nname = \"a\"\n[[client]]\nname = \"c\"\nmatch = []\nmark = 1\n")
                .contains("client[1].match: is empty"))
        #expect(try reason(Self.pool + "\n[[mark]]\nvalue = 1\nname = \"a\"\naction = \"teleport\"\n")
                .contains("mark[1].action: 'teleport' is not one of \"forward\", \"walled-garden\", \"refuse\""))
    }

    @Test func validatesPoliciesBuiltInCode() throws {
        var c = PolicyConfig(pools: [Pool(name: "p", servers: [Endpoint(address: F.ip("192.0.2.1"), port: 53)])],
                             marks: [MarkRule(value: 0x100, name: "m", action: .forward(pool: "p"))])
        try c.validate()
        c.conntrack.mask = 0xff
        #expect(throws: PolicyError(file: "<policy>", line: nil, key: "mark[1].value",
                                    reason: "mark 0x100 has bits outside mask 0xff")) { try c.validate() }
    }
}
