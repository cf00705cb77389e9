import DNSWire
import MarkCore
import MarkPolicy

/// Local answers of the marking policy for parsed names, against an independent oracle: the
/// name's dotted text (bytes outside printable ASCII and dots inside labels escaped, so they
/// can never fake a label boundary) ends with a listed domain at a label boundary.
enum PolicyInvariants {
    static let policyText = """
    [conntrack]
    mask = 0xff00
    on-missing = "unmarked"

    [[pool]]
    name = "up"
    servers = ["127.0.0.1"]
    default = true

    [[mark]]
    value = 0x100
    name = "guests"
    action = "walled-garden"
    portal = ["10.0.0.1", "fd00::1"]
    allow = ["portal.example", "Pay.Example.COM."]
    ttl = 30

    [[mark]]
    value = 0x200
    name = "staff"
    pool = "up"
    block = ["ads.example", "t.example.net"]
    block-answer = "null"
    block-ttl = 60

    [[mark]]
    value = 0x300
    name = "kids"
    pool = "up"
    block = ["games.example", "a"]
    block-ttl = 90
    """
    static let allow = ["portal.example", "pay.example.com"]
    static let staffBlock = ["ads.example", "t.example.net"]
    static let kidsBlock = ["games.example", "a"]

    static let engine: PolicyEngine = {
        do {
            return PolicyEngine(try PolicyConfig.load(text: policyText, file: "fuzz.toml") { _ in "" })
        } catch {
            fatalError("fuzz policy does not load: \(error)")
        }
    }()
    static let client = ClientIdentity(address: IPAddress("192.0.2.1")!)

    static func decision(_ mark: UInt32) -> PolicyDecision {
        engine.decide(connmark: .found(mark), client: client)
    }
    static let guests = decision(0x100), staff = decision(0x200), kids = decision(0x300)
    static let unmarked = decision(0), other = decision(0x4400)

    static func inSet(_ name: DNSName, _ domains: [String]) -> Bool {
        let text = name.description.lowercased()
        return domains.contains { text == $0 + "." || text.hasSuffix("." + $0 + ".") }
    }

    static func check(_ m: DNSMessage) {
        let wire = m.question.name.wire
        let type = m.question.type
        let answers = [guests, staff, kids, unmarked, other].map { $0.answer(wireName: wire, qtype: type) }
        // Case never matters.
        let flipped = flippedCase(wire)
        for (d, a) in zip([guests, staff, kids, unmarked, other], answers) {
            require(d.answer(wireName: flipped, qtype: type) == a, "\(d.markName): answer depends on case of \(m.question)")
        }
        let addressFor: (UInt16, IPAddress, IPAddress) -> LocalAnswer.Kind = { t, v4, v6 in
            t == LocalAnswer.typeA ? .addresses([v4]) : t == LocalAnswer.typeAAAA ? .addresses([v6]) : .noData
        }
        let portal = addressFor(type, IPAddress("10.0.0.1")!, IPAddress("fd00::1")!)
        let null = addressFor(type, .v4(0, 0, 0, 0), .v6(.zero))
        let expected: [LocalAnswer?] = [
            inSet(m.question.name, allow) ? nil : LocalAnswer(kind: portal, ttl: 30, reason: .walledGarden),
            inSet(m.question.name, staffBlock) ? LocalAnswer(kind: null, ttl: 60, reason: .blocked) : nil,
            inSet(m.question.name, kidsBlock) ? LocalAnswer(kind: .nxDomain, ttl: 90, reason: .blocked) : nil,
            nil, nil,
        ]
        for (i, (a, e)) in zip(answers, expected).enumerated() {
            require(a == e, "decision \(i) for \(m.question): \(String(describing: a)), expected \(String(describing: e))")
            guard let a else { continue }
            // The engine turns it into a response exactly like this (QueryEngine.localAnswer).
            switch a.kind {
            case .addresses(let list):
                WireInvariants.checkLocalAnswer(to: m, rcode: .noError, addresses: list.map(\.bytes), ttl: a.ttl)
            case .noData:
                WireInvariants.checkLocalAnswer(to: m, rcode: .noError, addresses: [], ttl: a.ttl)
            case .nxDomain:
                WireInvariants.checkLocalAnswer(to: m, rcode: .nxDomain, addresses: [], ttl: a.ttl)
            case .records:
                require(false, "a policy decision answered with local records: \(a)")
            }
        }
        checkLocalZone(m)
    }

    /// Local data (records, a CNAME chain, hosts, local domain): any answer it gives for a
    /// parsed question builds a response that re-parses with one answer record per record.
    static let zone: LocalZone = {
        let records = ["www.lan CNAME web.lan", "web.lan A 10.0.0.5", "web.lan AAAA fd00::5", "lan MX 10 mail.lan",
                       "_sip._udp.lan SRV 0 5 5060 pbx.lan", "info.lan TXT " + String(repeating: "t", count: 300)]
            .map { (try? LocalRecord.parse($0).get())! }
        return LocalZone(config: LocalConfig(domain: "lan", records: records),
                         hosts: [HostsFile(text: "192.168.1.10 nas\nfd00::10 nas nas.lan\n")])
    }()

    static func checkLocalZone(_ m: DNSMessage) {
        guard let a = zone.answer(wireName: m.question.name.wire, qtype: m.question.type) else {
            require(!DomainSet(["lan"]).contains(wireName: m.question.name.wire), "a name under the local domain was not answered")
            return
        }
        guard case .records(let list) = a.kind else { return }
        let rrs = list.map { DNSResponseBuilder.LocalRR(owner: $0.owner, type: $0.type, rdata: $0.rdata) }
        let resp = DNSResponseBuilder.localAnswer(to: m, records: rrs, ttl: a.ttl)
        let r = WireInvariants.checkBuiltResponse(resp, to: m, rcode: .noError, what: "local records")
        require(Int(r.header.ancount) == list.count, "\(r.header.ancount) records for \(list.count)")
    }
}
