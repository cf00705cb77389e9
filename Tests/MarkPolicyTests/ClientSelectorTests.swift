import Testing
import MarkCore
@testable import MarkPolicy

@Suite("Client selectors")
struct ClientSelectorTests {
    typealias F = Fixtures

    func sel(_ s: String) throws(ClientSelector.ParseError) -> ClientSelector { try ClientSelector(parsing: s) }

    @Test func parsesEachSyntax() throws {
        #expect(try sel("192.168.111.0/24") == .network(CIDR(address: F.ip("192.168.111.0"), prefixLength: 24)!))
        #expect(try sel("192.168.111.7") == .network(CIDR(address: F.ip("192.168.111.7"), prefixLength: 32)!))
        #expect(try sel("fd00::/64") == .network(CIDR(address: F.ip("fd00::"), prefixLength: 64)!))
        #expect(try sel("fd00::7") == .network(CIDR(address: F.ip("fd00::7"), prefixLength: 128)!))
        #expect(try sel("AA:bb:CC:dd:EE:ff") == .mac(MACAddress("aa:bb:cc:dd:ee:ff")!))
        #expect(try sel("iface:wlan1").description == "iface:wlan1")
        #expect(try sel("iface:wlan*").description == "iface:wlan*")
        #expect(try sel("aa:bb:cc:dd:ee:ff").description == "aa:bb:cc:dd:ee:ff")
        #expect(try sel("fd00:1::/64").description == "fd00:1::/64")
    }

    @Test(arguments: [
        ("192.168.1.5/24", "host bits are set (did you mean 192.168.1.0/24?)"),
        ("192.168.1.0/33", "prefix length must be 0-32"),
        ("fd00::1/64", "did you mean fd00::/64?"),
        ("fd00::/129", "prefix length must be 0-128"),
        ("192.168.1.0/x", "prefix length"),
        ("300.1.1.1", "not an IPv4 or IPv6 address"),
        ("wlan1", "write interfaces as \"iface:wlan1\""),
        ("aa:bb:cc:dd:ee:gg", "is not a MAC address"),
        ("aa-bb-cc-dd-ee-ff", "write aa:bb:cc:dd:ee:ff"),
        ("iface:", "empty name"),
        ("iface:abcdefghijklmnop", "longer than 15"),
        ("iface:wl an", "use letters"),
    ])
    func rejectsBadSelectors(_ c: (String, String)) {
        do {
            let s = try sel(c.0)
            Issue.record("'\(c.0)' parsed as \(s)")
        } catch {
            #expect(error.description.contains(c.1), "\(error.description)")
        }
    }

    @Test func ipv4NetworkMatching() throws {
        let s = try sel("192.168.111.0/24")
        #expect(s.matches(F.client("192.168.111.0")))
        #expect(s.matches(F.client("192.168.111.255")))
        #expect(!s.matches(F.client("192.168.110.255")))
        #expect(!s.matches(F.client("192.168.112.0")))
        #expect(!s.matches(F.client("fd00::1")))
        // A dual-stack socket reports IPv4 clients as IPv4-mapped IPv6.
        #expect(s.matches(F.client("::ffff:192.168.111.9")))
        #expect(!s.matches(F.client("::ffff:192.168.112.9")))
        let odd = try sel("10.0.0.128/25")
        #expect(odd.matches(F.client("10.0.0.200")))
        #expect(!odd.matches(F.client("10.0.0.127")))
        #expect(try sel("0.0.0.0/0").matches(F.client("203.0.113.9")))
        #expect(!(try sel("0.0.0.0/0")).matches(F.client("2001:db8::1")))
        #expect(try sel("10.1.2.3").matches(F.client("10.1.2.3")))
        #expect(!(try sel("10.1.2.3")).matches(F.client("10.1.2.4")))
    }

    @Test func ipv6NetworkMatching() throws {
        let s = try sel("fd00:111::/64")
        #expect(s.matches(F.client("fd00:111::1")))
        #expect(s.matches(F.client("fd00:111::ffff:ffff:ffff:ffff")))
        #expect(!s.matches(F.client("fd00:111:0:1::1")))
        #expect(!s.matches(F.client("192.168.111.1")))
        let odd = try sel("2001:db8:80::/41")
        #expect(odd.matches(F.client("2001:db8:ff::1")))
        #expect(!odd.matches(F.client("2001:db8:7f::1")))
        #expect(try sel("::/0").matches(F.client("2001:db8::1")))
        #expect(try sel("fd00::7").matches(F.client("fd00:0::7")))
    }

    @Test func macMatching() throws {
        let s = try sel("02:00:00:AB:cd:01")
        #expect(s.matches(F.client("10.0.0.1", mac: "02:00:00:ab:cd:01")))
        #expect(!s.matches(F.client("10.0.0.1", mac: "02:00:00:ab:cd:02")))
        #expect(!s.matches(F.client("10.0.0.1")), "unknown MAC matches no MAC selector")
    }

    @Test func interfaceMatching() throws {
        let exact = try sel("iface:wlan1")
        #expect(exact.matches(F.client("10.0.0.1", iface: "wlan1")))
        #expect(!exact.matches(F.client("10.0.0.1", iface: "wlan10")))
        #expect(!exact.matches(F.client("10.0.0.1", iface: "wlan")))
        #expect(!exact.matches(F.client("10.0.0.1")), "unknown interface matches no interface selector")
        let prefix = try sel("iface:wlan*")
        #expect(prefix.matches(F.client("10.0.0.1", iface: "wlan")))
        #expect(prefix.matches(F.client("10.0.0.1", iface: "wlan-guest")))
        #expect(!prefix.matches(F.client("10.0.0.1", iface: "eth0")))
    }

    @Test func ruleMatchesWhenAnySelectorDoes() throws {
        let rule = ClientRule(name: "r", match: [try sel("10.0.0.0/8"), try sel("iface:wg0")], mark: 1)
        #expect(rule.matches(F.client("10.9.9.9")))
        #expect(rule.matches(F.client("192.0.2.1", iface: "wg0")))
        #expect(!rule.matches(F.client("192.0.2.1", iface: "eth0")))
    }
}
