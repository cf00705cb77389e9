import Foundation
import Testing
import MarkCore
import MarkSessions
@testable import MarkPolicy

@Suite("Session keys of the policy")
struct SessionPolicyTests {
    typealias F = Fixtures

    static let pool = """
    [[pool]]
    name = "main"
    servers = ["192.0.2.1"]

    """

    static let policy = pool + """
    [sessions]
    database = "/tmp/s.db"
    control = "/tmp/c.sock"
    portal-api = "127.0.0.1:8908"

    [[mark]]
    value = 0x10
    name = "garden"
    action = "walled-garden"
    portal = ["10.0.0.1"]
    user-portal-url = "https://portal.example/login"

    [[mark]]
    value = 0x20
    name = "guest"
    sessions = true
    session-timeout = "2h"

    [[mark]]
    name = "users"
    range = "0x1000-0x1fff"
    sessions = true
    """

    @Test func keysAreRead() throws {
        let c = try F.load(Self.policy)
        #expect(c.sessions == SessionsConfig(database: "/tmp/s.db", control: "/tmp/c.sock",
                                             portalAPI: try Endpoint.parse("127.0.0.1:8908")))
        #expect(c.mark(named: "guest")?.sessionTimeout == 7200)
        #expect(c.mark(named: "users")?.range == MarkRange(lower: 0x1000, upper: 0x1fff))
        #expect(c.mark(named: "users")?.value == 0x1000)
        #expect(c.mark(value: 0x1abc)?.name == "users")
        #expect(c.mark(named: "garden")?.userPortalURL == "https://portal.example/login")
        #expect(c.sessionRules == SessionRules(mask: .max, marks: [
            SessionMark(name: "guest", value: 0x20, timeout: 7200),
            SessionMark(name: "users", value: 0x1000, range: MarkRange(lower: 0x1000, upper: 0x1fff)),
        ], otherMarks: ["garden"]))
        // Every value of the range gets the range mark's policy.
        let engine = PolicyEngine(c)
        let d = engine.decide(connmark: .found(0x1234), client: F.client("192.0.2.9"))
        #expect(d.view.name == "users")
        #expect(d.view.mark == 0x1234)
        #expect(try F.load(Self.pool).sessions == SessionsConfig())
    }

    @Test(arguments: [
        ("[[mark]]\nvalue = 1\nname = \"a\"\nsession-timeout = \"1h\"\n", 7, "mark[1].session-timeout", "only applies with sessions = true"),
        ("[[mark]]\nvalue = 1\nname = \"a\"\nsessions = true\nsession-timeout = \"1y\"\n", 8, "mark[1].session-timeout",
         "'1y' is not a duration: the unit must be s, m, h or d"),
        ("[[mark]]\nname = \"a\"\nsessions = true\nrange = \"5-2\"\n", 7, "mark[1].range",
         "'5-2' is not a mark range: the lower bound is above the upper one"),
        ("[[mark]]\nvalue = 1\nname = \"a\"\nrange = \"5-9\"\nsessions = true\n", 5, "mark[1].value",
         "a mark with a range takes its values from the range; leave value out"),
        ("[[mark]]\nname = \"a\"\nrange = \"1-9\"\n", 6, "mark[1].range", "only applies with sessions = true"),
        ("[[mark]]\nvalue = 1\nname = \"a\"\nuser-portal-url = \"ftp://x\"\n", 7, "mark[1].user-portal-url",
         "'ftp://x' is not an http:// or https:// URL"),
        ("[sessions]\ndatabase = \"rel.db\"\n", 5, "sessions.database", "'rel.db' is not an absolute path"),
        ("[sessions]\ncontrol = \"/x\"\nportal = 1\n", 6, "sessions.portal", "unknown key (known: database, control, portal-api, portal-tls-cert, portal-tls-key)"),
        ("[sessions]\nportal-api = \"nonsense\"\n", 5, "sessions.portal-api", nil),
        ("[[mark]]\nvalue = 0x1005\nname = \"a\"\n[[mark]]\nname = \"b\"\nsessions = true\nrange = \"0x1000-0x1fff\"\n",
         10, "mark[2].range", "mark 0x1005 is already defined by mark[1] (a)"),
        ("[conntrack]\nmask = 0xffff\n[[mark]]\nname = \"b\"\nsessions = true\nrange = \"0x1000-0x1fff\"\n",
         9, "mark[1].range", "ranges need the full mask (conntrack.mask = 0xffffffff)"),
    ] as [(String, Int, String, String?)])
    func errorsNameFileLineAndKey(_ text: String, _ line: Int, _ key: String, _ reason: String?) throws {
        let e = try #require(F.loadError(Self.pool + text))
        #expect(e.file == "/etc/markdns/policy.toml")
        #expect(e.line == line)
        #expect(e.key == key)
        if let reason { #expect(e.reason == reason) }
    }

    @Test func rulesRenderSessionMapsAheadOfSelectors() throws {
        let c = try F.load(Self.policy + "\n[[client]]\nname = \"lan\"\nmatch = [\"192.0.2.0/24\"]\nmark = \"garden\"\n")
        let a = SessionClient.address(IPAddress("192.0.2.7")!)
        let text = NftablesRenderer.render(c, sessions: [
            KernelElement(set: "session_guest_v4", client: a, value: nil, timeout: 60),
            KernelElement(set: "session_users_v4", client: .address(IPAddress("192.0.2.8")!), value: 0x1001, timeout: 70),
        ])
        #expect(text.contains("""
            set session_guest_v4 {
                type ipv4_addr
                flags timeout
                elements = { 192.0.2.7 timeout 60s }
            }
        """))
        #expect(text.contains("""
            map session_users_mac {
                type ether_addr : mark
                flags timeout
            }
        """))
        #expect(text.contains("elements = { 192.0.2.8 timeout 70s : 0x1001 }"))
        let session = try #require(text.range(of: "meta mark 0 ip saddr @session_guest_v4 meta mark set 0x20 comment \"session guest\""))
        let map = try #require(text.range(of: "meta mark 0 meta mark set ether saddr map @session_users_mac comment \"session users\""))
        let client = try #require(text.range(of: "comment \"client lan\""))
        #expect(session.lowerBound < client.lowerBound && map.lowerBound < client.lowerBound)
    }

    /// The session maps load into nft (in a throwaway namespace), with their elements.
    @Test(.enabled(if: Namespace.available, "needs root, nft, iptables-restore, ip6tables-restore and ip netns"))
    func sessionRulesetLoads() throws {
        for config in [try F.load(Self.policy), try F.loadExample("captive-portal.toml")] {
            let found = config.marks.first { $0.sessions }
            let sessionMark = try #require(found)
            let elements = [
                KernelElement(set: SessionMaps.name(mark: sessionMark.name, family: .v4), client: .address(IPAddress("192.0.2.7")!),
                              value: sessionMark.range.map(\.lower), timeout: 600),
                KernelElement(set: SessionMaps.name(mark: sessionMark.name, family: .mac), client: .mac(MACAddress("02:00:00:00:00:07")!),
                              value: sessionMark.range.map(\.lower), timeout: 600),
            ]
            try Namespace.with { ns in
                let file = try Namespace.temp(NftablesRenderer.render(config, sessions: elements), "nft")
                defer { try? FileManager.default.removeItem(atPath: file) }
                try ns.run(["nft", "-c", "-f", file])
                try ns.run(["nft", "-f", file])
                let listed = try ns.run(["nft", "list", "set", "inet", "markdns", elements[0].set])
                #expect(listed.contains("192.0.2.7 timeout 10m expires"))
                let add = try Namespace.temp(SessionMaps.script([.kernelAdd(KernelElement(
                    set: elements[0].set, client: .address(IPAddress("192.0.2.9")!), value: sessionMark.range.map(\.lower), timeout: 30))],
                    sets: [], maps: []), "nft")
                defer { try? FileManager.default.removeItem(atPath: add) }
                try ns.run(["nft", "-f", add])
                #expect(try ns.run(["nft", "list", "set", "inet", "markdns", elements[0].set]).contains("192.0.2.9 timeout 30s expires"))
                try ns.run(["nft", "delete", "table", "inet", "markdns"])
            }
        }
    }
}
