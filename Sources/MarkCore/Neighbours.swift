/// One entry of the kernel's neighbour table (ARP for IPv4, neighbour discovery for IPv6),
/// as an rtnetlink dump gives it: the address, its link-layer address, the NUD_* state.
public struct Neighbour: Sendable, Equatable {
    public var address: IPAddress
    public var mac: MACAddress
    public var state: UInt16

    public init(address: IPAddress, mac: MACAddress, state: UInt16) {
        self.address = address; self.mac = mac; self.state = state
    }
}

/// Which neighbours count, for MAC client selectors and MAC sessions.
public enum Neighbours {
    /// NUD_* bits of linux/neighbour.h.
    static let incomplete: UInt16 = 0x01, failed: UInt16 = 0x20

    /// An entry whose MAC the kernel believes: reachable, stale, delay, probe, permanent or
    /// noarp. Incomplete (no answer yet), failed and none (0) are not.
    public static func isUsable(_ state: UInt16) -> Bool {
        state != 0 && state & (incomplete | failed) == 0
    }

    /// Address -> MAC of the usable entries.
    public static func table(_ entries: [Neighbour]) -> [IPAddress: MACAddress] {
        var out: [IPAddress: MACAddress] = [:]
        for e in entries where isUsable(e.state) { out[e.address] = e.mac }
        return out
    }

    /// Every address (IPv4 and IPv6) of one MAC among the usable entries, sorted.
    public static func addresses(of mac: MACAddress, in entries: [Neighbour]) -> [IPAddress] {
        Set(entries.filter { isUsable($0.state) && $0.mac == mac }.map(\.address)).sorted { $0.bytes.lexicographicallyPrecedes($1.bytes) }
    }
}
