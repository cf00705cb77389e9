import Testing
import MarkCore
@testable import MarkPolicy

@Suite("Pools with tls:// and https:// servers")
struct SecurePoolConfigTests {
    typealias F = Fixtures
    static let ca = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    static let pin = SPKIPin.text([UInt8](repeating: 7, count: 32))

    @Test func settingsApplyToTheEncryptedServers() throws {
        let c = try F.load("""
        [[pool]]
        name = "vpn"
        servers = ["tls://10.8.0.1#dns.vpn.example", "https://[2001:db8::53]/q#doh.example", "192.0.2.1"]
        tls-ca = "ca.pem"
        tls-pin = ["\(Self.pin)"]
        max-connections = 3
        https-method = "get"
        """, files: ["/etc/markdns/ca.pem": Self.ca])
        let p = c.pools[0]
        #expect(p.servers.map(\.description) == ["10.8.0.1:853", "[2001:db8::53]:443", "192.0.2.1:53"])
        #expect(p.upstreams.map(\.description) == ["tls://10.8.0.1:853#dns.vpn.example",
                                                   "https://[2001:db8::53]:443/q#doh.example", "192.0.2.1:53"])
        let dot = try #require(p.secure[Endpoint.parse("10.8.0.1:853")])
        #expect(dot.caFile == "/etc/markdns/ca.pem", "relative to the policy file")
        #expect(dot.pins == [[UInt8](repeating: 7, count: 32)])
        #expect(dot.maxConnections == 3)
        #expect(p.secure[try Endpoint.parse("[2001:db8::53]:443")]?.method == .get)
        #expect(p.secure[try Endpoint.parse("192.0.2.1:53")] == nil, "plain stays plain")
        #expect(c.secureUpstreams.count == 2)
    }

    @Test func defaultsWithoutSettings() throws {
        let c = try F.load("""
        [[pool]]
        name = "p"
        servers = ["tls://192.0.2.1"]
        """)
        let s = try #require(c.pools[0].secure.values.first)
        #expect(s.caFile == nil, "the system store")
        #expect(s.pins.isEmpty)
        #expect(s.method == .post)
        #expect(s.maxConnections == StreamUpstream.defaultMaxConnections)
    }

    @Test func plainServersPoolTheirTCPWithThePoolsMaxConnections() throws {
        let c = try F.load("""
        [[pool]]
        name = "a"
        servers = ["192.0.2.1", "tls://192.0.2.2"]
        max-connections = 4
        [[pool]]
        name = "b"
        servers = ["192.0.2.3:5353", "192.0.2.1"]
        """)
        let tcp = c.tcpUpstreams
        #expect(Set(tcp.keys.map(\.description)) == ["192.0.2.1:53", "192.0.2.3:5353"], "not the tls:// one")
        let first = try #require(tcp.values.first { $0.endpoint.port == 53 })
        #expect(first.kind == .tcp && first.maxConnections == 4, "the first pool naming it")
        #expect(first.description == "tcp://192.0.2.1:53")
        #expect(tcp.values.first { $0.endpoint.port == 5353 }?.maxConnections == StreamUpstream.defaultMaxConnections)
        #expect(c.pools[0].secure.values.first?.maxConnections == 4)
    }

    @Test func errorsNameFileLineAndKey() {
        let cases: [(String, String, String)] = [
            ("servers = [\"tls://192.0.2.1#-bad\"]", "pool[1].servers[1]", "not a host name"),
            ("servers = [\"ftp://192.0.2.1\"]", "pool[1].servers[1]", "not a known scheme"),
            ("servers = [\"192.0.2.1\"]\ntls-ca = \"/ca.pem\"", "pool[1].tls-ca", "no tls:// or https:// server"),
            ("servers = [\"tls://192.0.2.1\"]\ntls-ca = \"/missing.pem\"", "pool[1].tls-ca", "cannot read"),
            ("servers = [\"tls://192.0.2.1\"]\ntls-ca = \"/empty.pem\"", "pool[1].tls-ca", "no PEM certificate"),
            ("servers = [\"tls://192.0.2.1\"]\ntls-pin = [\"sha256/abc\"]", "pool[1].tls-pin[1]", "sha256/BASE64"),
            ("servers = [\"tls://192.0.2.1\"]\ntls-pin = []", "pool[1].tls-pin", "is empty"),
            ("servers = [\"tls://192.0.2.1\"]\nmax-connections = 0", "pool[1].max-connections", "at least 1"),
            ("servers = [\"tls://192.0.2.1\"]\nmax-connections = 65", "pool[1].max-connections", "out of range"),
            ("servers = [\"https://192.0.2.1\"]\nhttps-method = \"put\"", "pool[1].https-method", "\"post\", \"get\""),
        ]
        for (body, key, reason) in cases {
            let e = F.loadError("[[pool]]\nname = \"p\"\n" + body, files: ["/empty.pem": "nothing"])
            #expect(e?.key == key, "\(body)")
            #expect(e?.line != nil, "\(body)")
            #expect(e?.reason.contains(reason) == true, "\(body): \(e?.reason ?? "")")
        }
    }

    @Test func oneAddressIsReachedOneWay() {
        let e = F.loadError("""
        [[pool]]
        name = "a"
        servers = ["tls://192.0.2.1:853"]

        [[pool]]
        name = "b"
        servers = ["192.0.2.1:853"]
        domains = ["corp.example"]
        """)
        #expect(e?.key == "pool[2].servers[1]")
        #expect(e?.reason.contains("one address is one upstream") == true)
    }

    @Test func setUpstreamsReplacesSecureSettings() throws {
        var p = Pool(name: "p", servers: [])
        p.setUpstreams([try UpstreamAddress.parse("tls://192.0.2.1"), try UpstreamAddress.parse("192.0.2.2")])
        #expect(p.secure.count == 1)
        p.setUpstreams([try UpstreamAddress.parse("192.0.2.1:853")])
        #expect(p.secure.isEmpty)
    }
}
