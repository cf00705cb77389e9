import Testing
import MarkCore
@testable import MarkPolicy

@Suite("Policy engine: mask arithmetic and action choice")
struct PolicyEngineTests {
    typealias F = Fixtures
    static let anyClient = Fixtures.client("203.0.113.9")

    func engine(onMissing: OnMissing = .policy) throws -> PolicyEngine {
        var c = try F.load(F.basic)
        c.conntrack.onMissing = onMissing
        return PolicyEngine(c)
    }

    @Test func maskedMarkSelectsPolicyAndBaseFillsTheOtherBits() throws {
        let e = try engine()
        // Bits outside the mask (0xab00_0007) are someone else's: ignored for the policy,
        // replaced by the base's (0x5) on the upstream socket.
        let d = e.decide(connmark: .found(0xab00_0107), client: Self.anyClient)
        #expect(d.view == PolicyView(mark: 0x100, kind: .walledGarden, name: "guests"))
        #expect(d.upstreamMark == 0x105)
        #expect(d.markName == "guests")
        #expect(d.origin == .connmark)
        #expect(d.pool == "main")
        #expect(e.upstreamMark(for: 0xffff_ffff) == 0xff05)
        #expect(e.upstreamMark(for: 0) == 0x5)
    }

    @Test func forwardMark() throws {
        let d = try engine().decide(connmark: .found(0x200), client: Self.anyClient)
        #expect(d.action == .forward(pool: "office"))
        #expect(d.upstreamMark == 0x205)
        #expect(d.view.kind == .forward)
        #expect(!d.isRefused)
    }

    @Test func refuseMark() throws {
        let d = try engine().decide(connmark: .found(0x10300), client: Self.anyClient)
        #expect(d.action == .refuse)
        #expect(d.isRefused)
        #expect(d.upstreamMark == 0)
        #expect(d.pool == nil)
        #expect(d.markName == "quarantine")
    }

    @Test func unknownMarkIsOtherOnDefaultPool() throws {
        let d = try engine().decide(connmark: .found(0x0400), client: Self.anyClient)
        #expect(d.view == PolicyView(mark: 0x400, kind: .forward, name: "other"))
        #expect(d.markName == "other")
        #expect(d.action == .forward(pool: "main"))
        #expect(d.upstreamMark == 0x405)
        #expect(d.answer(name: "ads.example", qtype: 1) == nil)
    }

    @Test(arguments: [
        (MarkLookup?.none, NoMarkReason.noSource),
        (.notFound, .noEntry),
        (.failed(1), .lookupFailed),
        (.found(0), .markZero),
        (.found(0xff00_00ff), .markZero),   // bits, but none inside the mask
    ])
    func missingMarkUsesSelectorsWithPolicy(_ c: (MarkLookup?, NoMarkReason)) throws {
        let e = try engine(onMissing: .policy)
        let d = e.decide(connmark: c.0, client: F.client("192.168.1.77"))
        #expect(d.view.name == "guests")
        #expect(d.origin == .selector(client: "guests"))
        #expect(d.upstreamMark == 0x105, "markdns sets the selector's mark on the socket itself")
        let none = e.decide(connmark: c.0, client: Self.anyClient)
        #expect(none.view == PolicyView(mark: 0, kind: .forward, name: "none"))
        #expect(none.origin == .missing(c.1))
        #expect(none.action == .forward(pool: "main"))
        #expect(none.upstreamMark == 0x5, "the base still applies")
    }

    @Test func missingMarkUnmarked() throws {
        let e = try engine(onMissing: .unmarked)
        for lookup: MarkLookup? in [nil, .notFound, .failed(5), .found(0)] {
            let d = e.decide(connmark: lookup, client: F.client("192.168.1.10"))
            #expect(d.markName == "none", "selectors are not consulted")
            #expect(d.action == .forward(pool: "main"))
            #expect(d.upstreamMark == 0x5)
        }
        #expect(e.decide(connmark: .found(0x200), client: Self.anyClient).markName == "staff")
    }

    @Test func missingMarkRefused() throws {
        let e = try engine(onMissing: .refuse)
        let d = e.decide(connmark: .notFound, client: F.client("192.168.1.10"))
        #expect(d.isRefused)
        #expect(d.view == PolicyView(mark: 0, kind: .refuse, name: "none"))
        #expect(d.origin == .missing(.noEntry))
        #expect(e.decide(connmark: .found(0x100), client: Self.anyClient).markName == "guests")
    }

    @Test func firstMatchingClientRuleWins() throws {
        let e = try engine()
        // 192.168.1.10 is in both "boss" (first) and "guests".
        #expect(e.decide(connmark: nil, client: F.client("192.168.1.10")).origin == .selector(client: "boss"))
        #expect(e.decide(connmark: nil, client: F.client("192.168.1.11")).origin == .selector(client: "guests"))
        #expect(e.decide(connmark: nil, client: F.client("fd00:1::99")).markName == "guests")
        // wlan-guest is named by "boss" and matches "guests"' wlan* too: boss comes first.
        #expect(e.decide(connmark: nil, client: F.client("10.9.9.9", iface: "wlan-guest")).markName == "staff")
        #expect(e.decide(connmark: nil, client: F.client("10.9.9.9", iface: "wlan0")).markName == "guests")
        let bad = e.decide(connmark: nil, client: F.client("10.9.9.9", mac: "02:00:00:00:00:BD"))
        #expect(bad.isRefused)
        #expect(bad.origin == .selector(client: "bad"))
        #expect(e.firstMatchingRule(for: F.client("10.9.9.9"))?.name == nil)
    }

    @Test func kernelMarkWinsOverSelectors() throws {
        let d = try engine().decide(connmark: .found(0x200), client: F.client("192.168.1.50"))
        #expect(d.markName == "staff")
        #expect(d.origin == .connmark)
    }

    @Test func viewsSeparatePolicies() throws {
        let e = try engine()
        let viaKernel = e.decide(connmark: .found(0x100), client: Self.anyClient)
        let viaSelector = e.decide(connmark: nil, client: F.client("192.168.1.50"))
        #expect(viaKernel.view == viaSelector.view, "one policy, one view, however the mark was found")
        let views: Set<PolicyView> = [
            viaKernel.view,
            e.decide(connmark: .found(0x200), client: Self.anyClient).view,
            e.decide(connmark: .found(0x300), client: Self.anyClient).view,
            e.decide(connmark: .found(0x400), client: Self.anyClient).view,
            e.decide(connmark: .found(0x500), client: Self.anyClient).view,
            e.decide(connmark: nil, client: Self.anyClient).view,
        ]
        #expect(views.count == 6)
    }

    @Test func fullMaskDefaults() throws {
        let c = try F.load("""
        [[pool]]
        name = "p"
        servers = ["192.0.2.1"]
        [[mark]]
        value = 0x89
        name = "m"
        """)
        #expect(c.conntrack == ConntrackConfig(mask: 0xffff_ffff, base: 0, onMissing: .unmarked))
        let e = PolicyEngine(c)
        #expect(e.decide(connmark: .found(0x89), client: Self.anyClient).upstreamMark == 0x89)
        let other = e.decide(connmark: .found(0x8000_0001), client: Self.anyClient)
        #expect(other.upstreamMark == 0x8000_0001)
        #expect(other.markName == "other")
        #expect(e.decide(connmark: .notFound, client: Self.anyClient).upstreamMark == 0, "0: no SO_MARK")
        #expect(!e.consultsSelectors)
    }

    @Test func selectorNeeds() throws {
        let e = try engine()
        #expect(e.consultsSelectors)
        #expect(e.usesMAC)
        #expect(e.usesInterface)
        #expect(!(try engine(onMissing: .unmarked)).consultsSelectors)
    }
}
