import MarkCore
import Testing

@Suite("Neighbour table")
struct NeighboursTests {
    static let a = MACAddress("02:00:00:00:01:07")!
    static let b = MACAddress("02:00:00:00:01:08")!

    static func n(_ ip: String, _ mac: MACAddress, _ state: UInt16) -> Neighbour {
        Neighbour(address: IPAddress(ip)!, mac: mac, state: state)
    }

    @Test("reachable, stale, delay, probe, permanent and noarp count; none, incomplete and failed do not")
    func states() {
        for usable: UInt16 in [0x02, 0x04, 0x08, 0x10, 0x40, 0x80] { #expect(Neighbours.isUsable(usable), "\(usable)") }
        for unusable: UInt16 in [0x00, 0x01, 0x20, 0x21] { #expect(!Neighbours.isUsable(unusable), "\(unusable)") }
    }

    @Test("a MAC's IPv4 and IPv6 addresses, only from usable entries; the table maps both families")
    func addressesOfAMAC() throws {
        let entries = [
            Self.n("192.168.1.20", Self.a, 0x02), Self.n("fd00::20", Self.a, 0x04), Self.n("fe80::20", Self.a, 0x80),
            Self.n("192.168.1.21", Self.a, 0x20), Self.n("192.168.1.22", Self.b, 0x02), Self.n("fd00::21", Self.a, 0x01),
        ]
        #expect(Neighbours.addresses(of: Self.a, in: entries).map(\.description) == ["192.168.1.20", "fd00::20", "fe80::20"])
        #expect(Neighbours.addresses(of: Self.b, in: entries).map(\.description) == ["192.168.1.22"])
        let table = Neighbours.table(entries)
        #expect(table.count == 4)
        #expect(table[try #require(IPAddress("fd00::20"))] == Self.a)
        #expect(table[try #require(IPAddress("192.168.1.21"))] == nil)
    }
}
