import Foundation
import Testing
import MarkCore
@testable import MarkPolicy

@Suite("Local answers: walled garden and block lists")
struct LocalAnswerTests {
    typealias F = Fixtures
    static let A: UInt16 = 1, AAAA: UInt16 = 28, MX: UInt16 = 15, TXT: UInt16 = 16, HTTPS: UInt16 = 65

    func decision(_ mark: UInt32, _ text: String = Fixtures.basic) throws -> PolicyDecision {
        PolicyEngine(try F.load(text)).decide(connmark: .found(mark), client: F.client("203.0.113.9"))
    }

    @Test func walledGardenAnswersThePortal() throws {
        let d = try decision(0x100)
        #expect(d.answer(name: "www.example.org", qtype: Self.A)
                == LocalAnswer(kind: .addresses([F.ip("10.0.0.1")]), ttl: 20, reason: .walledGarden))
        #expect(d.answer(name: "www.example.org.", qtype: Self.AAAA)
                == LocalAnswer(kind: .addresses([F.ip("fd00::1")]), ttl: 20, reason: .walledGarden))
        for t in [Self.MX, Self.TXT, Self.HTTPS, 255] {
            #expect(d.answer(name: "www.example.org", qtype: t) == LocalAnswer(kind: .noData, ttl: 20, reason: .walledGarden))
        }
    }

    @Test func walledGardenForwardsAllowListedNamesAndSubdomains() throws {
        let d = try decision(0x100)
        for name in ["portal.example", "login.portal.example", "PORTAL.EXAMPLE.", "pay.example.com", "x.y.pay.example.com"] {
            #expect(d.answer(name: name, qtype: Self.A) == nil, "\(name)")
            #expect(d.answer(name: name, qtype: Self.MX) == nil, "\(name)")
        }
        for name in ["evilportal.example", "example", "portal.example.evil", "example.com"] {
            #expect(d.answer(name: name, qtype: Self.A)?.reason == .walledGarden, "\(name)")
        }
        #expect(d.pool == "main", "allow-listed names go to the default pool")
    }

    @Test func walledGardenWithoutAnIPv6PortalAnswersNoDataForAAAA() throws {
        let d = try decision(0x100, F.basic.replacingOccurrences(of: "portal = [\"10.0.0.1\", \"fd00::1\"]",
                                                                 with: "portal = [\"10.0.0.1\", \"10.0.0.2\"]"))
        #expect(d.answer(name: "a.test", qtype: Self.A)?.kind == .addresses([F.ip("10.0.0.1"), F.ip("10.0.0.2")]))
        #expect(d.answer(name: "a.test", qtype: Self.AAAA)?.kind == .noData)
    }

    @Test func nullAddressBlocks() throws {
        let d = try decision(0x200)
        #expect(d.answer(name: "ads.example", qtype: Self.A)
                == LocalAnswer(kind: .addresses([F.ip("0.0.0.0")]), ttl: 300, reason: .blocked))
        #expect(d.answer(name: "x.ADS.example.", qtype: Self.AAAA)?.kind == .addresses([F.ip("::")]))
        #expect(d.answer(name: "ads.example", qtype: Self.TXT)?.kind == .noData)
        #expect(d.answer(name: "a.b.tracker.example.net", qtype: Self.A)?.reason == .blocked)
        for name in ["notads.example", "example", "example.net", "tracker.example.org", "www.example.org"] {
            #expect(d.answer(name: name, qtype: Self.A) == nil, "\(name)")
        }
    }

    @Test func nxdomainBlocks() throws {
        let d = try decision(0x200, F.basic.replacingOccurrences(of: "block-answer = \"null\"", with: "block-ttl = 60"))
        for t in [Self.A, Self.AAAA, Self.MX] {
            #expect(d.answer(name: "www.ads.example", qtype: t) == LocalAnswer(kind: .nxDomain, ttl: 60, reason: .blocked))
        }
        #expect(d.answer(name: "www.example", qtype: Self.A) == nil)
    }

    @Test func blockListAppliesToAllowListedNamesOfAWalledGarden() throws {
        let text = F.basic.replacingOccurrences(of: "ttl = 20", with: "ttl = 20\nblock = [\"bad.portal.example\"]")
        let d = try decision(0x100, text)
        #expect(d.answer(name: "portal.example", qtype: Self.A) == nil)
        #expect(d.answer(name: "x.bad.portal.example", qtype: Self.A)?.reason == .blocked)
        #expect(d.answer(name: "elsewhere.test", qtype: Self.A)?.reason == .walledGarden)
    }

    @Test func wireNamesAnswerLikeText() throws {
        let garden = try decision(0x100), staff = try decision(0x200)
        let names: [[String]] = [["www", "Portal", "example"], ["evil", "test"], ["ADS", "example"], ["ok", "example"]]
        for labels in names {
            let wire = DomainSetTests.wire(labels)
            let text = labels.joined(separator: ".")
            for t in [Self.A, Self.AAAA, Self.TXT] {
                #expect(garden.answer(wireName: wire, qtype: t) == garden.answer(name: text, qtype: t))
                #expect(staff.answer(wireName: wire, qtype: t) == staff.answer(name: text, qtype: t))
            }
        }
        #expect(staff.answer(wireName: DomainSetTests.wire(["ads", "example"]), qtype: Self.A)?.reason == .blocked)
    }

    @Test func noLocalAnswersWithoutAPolicyMark() throws {
        let e = PolicyEngine(try F.load(F.basic))
        #expect(e.decide(connmark: .found(0x300), client: F.client("203.0.113.9")).answer(name: "ads.example", qtype: 1) == nil)
        #expect(e.decide(connmark: .notFound, client: F.client("203.0.113.9")).answer(name: "x.test", qtype: 1) == nil)
    }
}
