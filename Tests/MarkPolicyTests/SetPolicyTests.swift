import Testing
import MarkCore
@testable import MarkPolicy

@Suite("[[set]] policy: parsing, checks, matching, timeouts")
struct SetPolicyTests {
    typealias F = Fixtures

    static let base = """
    [conntrack]
    mask = 0xff00
    [[pool]]
    name = "p"
    servers = ["192.0.2.1"]
    [[mark]]
    value = 0x100
    name = "kids"
    [[mark]]
    value = 0x200
    name = "guests"
    [[mark]]
    value = 0x300
    name = "adults"

    """

    @Test func parsesEveryKey() throws {
        let c = try F.load(Self.base + """
        [[set]]
        name = "via_vpn"
        domains = ["Netflix.com.", "nflxvideo.net", "netflix.com"]
        marks = ["kids", 0x200]
        timeout-min = 300
        route-mark = 0x2
        table = 100
        [[set]]
        name = "bank"
        domains = ["bank.example"]
        """)
        #expect(c.sets == [
            SetRule(name: "via_vpn", domains: ["netflix.com", "nflxvideo.net"], marks: [0x100, 0x200],
                    timeoutMin: 300, routeMark: 2, table: 100),
            SetRule(name: "bank", domains: ["bank.example"]),
        ])
        #expect(c.sets[0].v4Name == "via_vpn_v4" && c.sets[0].v6Name == "via_vpn_v6")
    }

    /// Each bad `[[set]]` body, the line of its key within it (0: the `[[set]]` header,
    /// line 15 of the file), the key and the reason.
    static let errors: [(String, Int, String, String)] = [
        ("name = \"v\"\ndomains = [\"a.example\"]\nmarks = [\"nobody\"]", 3, "set[1].marks[1]", "no [[mark]] is named 'nobody'"),
        ("name = \"v\"\ndomains = [\"a.example\"]\nmarks = [0x400]", 3, "set[1].marks[1]", "mark 0x400 is not defined"),
        ("name = \"1bad\"\ndomains = [\"a.example\"]", 1, "set[1].name", "not a valid set name"),
        ("name = \"a_very_long_set_name_over_29_c\"\ndomains = [\"a.example\"]", 1, "set[1].name", "at most 29"),
        ("name = \"client_x\"\ndomains = [\"a.example\"]", 1, "set[1].name", "starts with 'client_'"),
        ("name = \"v\"\ndomains = []", 2, "set[1].domains", "is empty"),
        ("name = \"v\"\ndomains = [\"bad..name\"]", 2, "set[1].domains[1]", "empty label"),
        ("name = \"v\"\ndomains = [\"a.example\"]\nroute-mark = 0x100", 3, "set[1].route-mark", "has bits inside mask 0xff00"),
        ("name = \"v\"\ndomains = [\"a.example\"]\nroute-mark = 0", 3, "set[1].route-mark", "must not be 0"),
        ("name = \"v\"\ndomains = [\"a.example\"]\ntable = 100", 3, "set[1].table", "needs route-mark"),
        ("name = \"v\"\ndomains = [\"a.example\"]\nroute-mark = 2\ntable = 254", 4, "set[1].table", "reserved"),
        ("name = \"v\"\ndomains = [\"a.example\"]\ntimeout-min = 9999999", 3, "set[1].timeout-min", "out of range"),
        ("name = \"v\"\ndomains = [\"a.example\"]\ntimout-min = 5", 3, "set[1].timout-min", "did you mean 'timeout-min'"),
        ("domains = [\"a.example\"]", 0, "set[1].name", "is required"),
    ]

    @Test(arguments: 0..<errors.count)
    func badSetIsRejectedAtItsLine(_ i: Int) throws {
        let (body, line, key, reason) = Self.errors[i]
        let e = try #require(F.loadError(Self.base + "[[set]]\n" + body))
        #expect(e.line == 15 + line, "\(e)")
        #expect(e.key == key, "\(e)")
        #expect(e.reason.contains(reason), "\(e)")
    }

    @Test func twoSetsOfOneNameAreRejected() throws {
        let e = try #require(F.loadError(Self.base + "[[set]]\nname = \"v\"\ndomains = [\"a.x\"]\n[[set]]\nname = \"v\"\ndomains = [\"b.x\"]"))
        #expect(e.key == "set[2].name" && e.reason.contains("defined twice"), "\(e)")
    }

    @Test func routeMarkNeedsBitsOutsideAFullMask() throws {
        let text = """
        [[pool]]
        name = "p"
        servers = ["192.0.2.1"]
        [[set]]
        name = "v"
        domains = ["a.example"]
        route-mark = 0x2
        """
        let e = try #require(F.loadError(text))
        #expect(e.key == "set[1].route-mark" && e.reason.contains("narrow conntrack.mask"), "\(e)")
    }

    @Test func matchingIsBySuffixOnLabelBoundariesAnyCase() {
        let m = SetMatcher([SetRule(name: "v", domains: ["netflix.com"])])
        for name in ["netflix.com", "NETFLIX.com.", "www.Netflix.COM", "a.b.c.netflix.com"] {
            #expect(m.targets(name, mark: 0) == [SetTarget(name: "v", timeoutMin: 0)], "\(name)")
        }
        for name in ["badnetflix.com", "netflix.com.evil", "com", "netflix.co", ""] {
            #expect(m.targets(name, mark: 0).isEmpty, "\(name)")
        }
        #expect(m.targets(wireName: [3, 0x61, 0x62], mark: 0).isEmpty, "a malformed wire name matches nothing")
    }

    @Test func setChoicePerMarkAndSeveralSetsForOneName() {
        let m = SetMatcher([
            SetRule(name: "kids", domains: ["video.example"], marks: [0x100], timeoutMin: 60),
            SetRule(name: "all", domains: ["example"]),
            SetRule(name: "also", domains: ["www.video.example", "video.example"], marks: [0x100, 0x200]),
        ])
        #expect(m.targets("www.video.example", mark: 0x100).map(\.name) == ["kids", "all", "also"],
                "every matching set, in file order, once")
        #expect(m.targets("www.video.example", mark: 0x200).map(\.name) == ["all", "also"])
        #expect(m.targets("www.video.example", mark: 0).map(\.name) == ["all"], "unmarked: sets without marks only")
        #expect(m.targets("other.example", mark: 0x100).map(\.name) == ["all"])
    }

    @Test func policyEngineChoosesByTheDecisionsMaskedMark() throws {
        let c = try F.load(Self.base + "[[set]]\nname = \"v\"\ndomains = [\"a.example\"]\nmarks = [\"kids\"]\n")
        let engine = PolicyEngine(c)
        let me = ClientIdentity(address: .v4(192, 0, 2, 9))
        let kids = engine.decide(connmark: .found(0x1_0105), client: me)  // other bits: ignored
        let name = DomainSet.wire(fromText: "x.a.example")!
        #expect(engine.setTargets(for: kids, wireName: name).map(\.name) == ["v"])
        let guests = engine.decide(connmark: .found(0x200), client: me)
        #expect(engine.setTargets(for: guests, wireName: name).isEmpty)
    }

    @Test func timeoutIsTheLongerOfTTLAndTheMinimumNeverZero() {
        let r = SetRule(name: "v", domains: ["a"], timeoutMin: 300)
        #expect(r.timeout(ttl: 60) == 300)
        #expect(r.timeout(ttl: 3600) == 3600)
        #expect(r.timeout(ttl: 0x8000_0000) == 300, "TTLs above 2^31-1 count as 0")
        let none = SetRule(name: "v", domains: ["a"])
        #expect(none.timeout(ttl: 0) == 1, "never 0: an element without timeout would stay for ever")
        #expect(none.timeout(ttl: 42) == 42)
        #expect(SetTarget(r).timeout(ttl: 10) == 300)
    }
}
