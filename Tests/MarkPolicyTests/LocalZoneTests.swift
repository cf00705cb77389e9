import MarkCore
import Testing
@testable import MarkPolicy

@Suite("Local data: records, hosts files, local domain, private reverse")
struct LocalZoneTests {
    let wire = DomainSetTests.wire

    func records(_ a: LocalAnswer?) -> [LocalRecord] {
        if case .records(let r)? = a?.kind { return r }
        return []
    }

    @Test func parsesZoneFileStyleRecords() throws {
        let a = try LocalRecord.parse("Router.LAN A 192.168.1.1").get()
        #expect(a.owner == wire(["router", "lan"]) && a.type == 1 && a.rdata == [192, 168, 1, 1])
        let aaaa = try LocalRecord.parse("router.lan\tAAAA fd00::1").get()
        #expect(aaaa.type == 28 && aaaa.rdata.count == 16 && aaaa.rdata.last == 1)
        let cname = try LocalRecord.parse("nas.lan cname Router.lan.").get()
        #expect(cname.type == 5 && cname.rdata == wire(["router", "lan"]))
        let mx = try LocalRecord.parse("lan MX 10 mail.lan").get()
        #expect(mx.rdata == [0, 10] + wire(["mail", "lan"]))
        let srv = try LocalRecord.parse("_sip._udp.lan SRV 0 5 5060 pbx.lan").get()
        #expect(srv.rdata == [0, 0, 0, 5, 0x13, 0xC4] + wire(["pbx", "lan"]))
        let txt = try LocalRecord.parse("info.lan TXT \"hello world\"").get()
        #expect(txt.rdata == [11] + Array("hello world".utf8))
        let long = try LocalRecord.parse("l.lan TXT " + String(repeating: "x", count: 300)).get()
        #expect(long.rdata.count == 302 && long.rdata[0] == 255 && long.rdata[256] == 45, "split into 255-byte strings")
    }

    @Test(arguments: ["router.lan", "router.lan A", "router.lan A 300.1.1.1", "router.lan A fd00::1",
                      "router.lan AAAA 10.0.0.1", "router.lan HINFO x y", "bad..name A 10.0.0.1",
                      "x.lan MX ten mail.lan", "x.lan SRV 1 2 mail.lan", "x.lan CNAME *.lan"])
    func rejectsBadRecords(_ text: String) {
        if case .success(let r) = LocalRecord.parse(text) { Issue.record("accepted '\(text)': \(r)") }
    }

    @Test func hostsFileFormat() {
        let h = HostsFile(text: """
            # comment
            127.0.0.1\tlocalhost
            192.168.1.10  nas nas.home.arpa   # trailing comment
            fd00::10 nas
            not-an-address foo
            10.0.0.1
            fe80::1%eth0 linklocal
            10.0.0.2 bad..name
            """)
        #expect(h.entries.map(\.names) == [["localhost"], ["nas", "nas.home.arpa"], ["nas"]])
        #expect(h.entries[1].address == IPAddress("192.168.1.10"))
        #expect(h.badLines == [5, 6, 7, 8])
    }

    @Test func answersFromHostsWithReverseAndExpandedNames() {
        let hosts = HostsFile(text: "192.168.1.10 nas\nfd00::10 nas\n192.168.1.11 printer.home.arpa printer\n")
        let z = LocalZone(config: LocalConfig(domain: "home.arpa", ttl: 120), hosts: [hosts])
        let a = records(z.answer(wireName: wire(["NAS"]), qtype: 1))
        #expect(a.map(\.rdata) == [[192, 168, 1, 10]])
        #expect(z.answer(wireName: wire(["nas"]), qtype: 1)?.ttl == 120)
        #expect(records(z.answer(wireName: wire(["nas", "home", "arpa"]), qtype: 28)).first?.rdata.last == 0x10,
                "bare names are also answered under the local domain")
        let ptr = records(z.answer(wireName: wire(["10", "1", "168", "192", "in-addr", "arpa"]), qtype: 12))
        #expect(ptr.map(\.rdata) == [wire(["nas", "home", "arpa"])], "PTR to the qualified name")
        let ptr2 = records(z.answer(wireName: wire(["11", "1", "168", "192", "in-addr", "arpa"]), qtype: 12))
        #expect(ptr2.map(\.rdata) == [wire(["printer", "home", "arpa"])])
        // A name with records of other types: NODATA. Unknown under the domain: NXDOMAIN.
        #expect(z.answer(wireName: wire(["nas"]), qtype: 16)?.kind == .noData)
        #expect(z.answer(wireName: wire(["ghost", "home", "arpa"]), qtype: 1)?.kind == .nxDomain)
        #expect(z.answer(wireName: wire(["example", "com"]), qtype: 1) == nil, "other names are forwarded")
    }

    @Test func cnameIsFollowedThroughLocalData() throws {
        let config = LocalConfig(records: [try LocalRecord.parse("www.lan CNAME web.lan").get(),
                                           try LocalRecord.parse("web.lan CNAME host.lan").get(),
                                           try LocalRecord.parse("host.lan A 10.0.0.5").get(),
                                           try LocalRecord.parse("loop.lan CNAME loop.lan").get()])
        let z = LocalZone(config: config)
        let chain = records(z.answer(wireName: wire(["www", "lan"]), qtype: 1))
        #expect(chain.map(\.type) == [5, 5, 1])
        #expect(chain.last?.owner == wire(["host", "lan"]))
        #expect(records(z.answer(wireName: wire(["www", "lan"]), qtype: 5)).count == 1, "asking for the CNAME itself")
        #expect(records(z.answer(wireName: wire(["loop", "lan"]), qtype: 1)).count == 8, "a loop stops after 8 steps")
    }

    @Test func privateReverseZones() {
        let on = LocalZone(config: LocalConfig())
        for name in [["1", "0", "0", "10", "in-addr", "arpa"], ["5", "20", "172", "in-addr", "arpa"],
                     ["1", "1", "168", "192", "in-addr", "arpa"], ["1", "64", "100", "in-addr", "arpa"],
                     ["1", "0", "0", "127", "in-addr", "arpa"]] {
            #expect(on.isPrivateReverse(wireName: wire(name)), "\(name)")
        }
        for name in [["8", "8", "8", "8", "in-addr", "arpa"], ["5", "32", "172", "in-addr", "arpa"],
                     ["1", "128", "100", "in-addr", "arpa"]] {
            #expect(!on.isPrivateReverse(wireName: wire(name)), "\(name)")
        }
        let v6 = wire(IPAddress("fd00::1")!.reverseName.split(separator: ".").map(String.init))
        #expect(on.isPrivateReverse(wireName: v6))
        #expect(!on.isPrivateReverse(wireName: wire(IPAddress("2a00::1")!.reverseName.split(separator: ".").map(String.init))))
        #expect(on.isPrivateReverse(wireName: wire(["1", "0", "0", "10", "IN-ADDR", "ARPA"])), "any case")
        #expect(!on.isPrivateReverse(wireName: wire(["10", "in-addr", "arpb"])))
        #expect(!on.isPrivateReverse(wireName: wire(["arpa"])), "the root of arpa is not private")
        #expect(on.privateReverseAnswer.kind == .nxDomain && on.privateReverseAnswer.reason == .privateReverse)
        let off = LocalZone(config: LocalConfig(privateReverse: false))
        #expect(!off.isPrivateReverse(wireName: wire(["1", "0", "0", "10", "in-addr", "arpa"])))
        #expect(off.isEmpty)
    }

    @Test func loadsTheLocalTable() throws {
        let c = try Fixtures.load("""
            [[pool]]
            name = "isp"
            servers = ["192.0.2.53"]
            [local]
            domain = "Home.Arpa."
            hosts = ["hosts.lan", "/etc/hosts"]
            private-reverse = false
            ttl = 30
            records = ["router.home.arpa A 192.168.1.1"]
            """)
        #expect(c.local.domain == "home.arpa")
        #expect(c.local.hosts == ["/etc/markdns/hosts.lan", "/etc/hosts"], "relative to the policy file")
        #expect(!c.local.privateReverse && c.local.ttl == 30 && c.local.records.count == 1)
    }

    @Test func badLocalSettingsNameTheKey() {
        let pool = "[[pool]]\nname = \"isp\"\nservers = [\"192.0.2.53\"]\n[local]\n"
        #expect(Fixtures.loadError(pool + "records = [\"ok.lan A 10.0.0.1\", \"x.lan A nope\"]")?.key == "local.records[2]")
        #expect(Fixtures.loadError(pool + "domain = \"bad..lan\"")?.key == "local.domain")
        #expect(Fixtures.loadError(pool + "hostz = []")?.key == "local.hostz")
        #expect(Fixtures.loadError(pool + "ttl = -1")?.key == "local.ttl")
    }
}
