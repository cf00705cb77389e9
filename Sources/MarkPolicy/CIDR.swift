import MarkCore

/// An IPv4 or IPv6 network: address and prefix length, host bits zero.
public struct CIDR: Sendable, Hashable, CustomStringConvertible {
    public let address: IPAddress
    public let prefixLength: Int

    /// nil when the prefix is too long for the family or host bits are set.
    public init?(address: IPAddress, prefixLength: Int) {
        let bits = address.isIPv6 ? 128 : 32
        guard (0...bits).contains(prefixLength),
              CIDR.masked(address.bytes, prefixLength) == address.bytes else { return nil }
        self.address = address; self.prefixLength = prefixLength
    }

    public init(parsing text: String) throws(ClientSelector.ParseError) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2, let addr = IPAddress(String(parts[0])) else {
            throw .badNetwork(text, "'\(parts[0])' is not an IPv4 or IPv6 address")
        }
        let bits = addr.isIPv6 ? 128 : 32
        var len = bits
        if parts.count == 2 {
            guard let l = Int(parts[1]), (0...bits).contains(l), parts[1].allSatisfy(\.isNumber) else {
                throw .badNetwork(text, "prefix length must be 0-\(bits)")
            }
            len = l
        }
        let net = CIDR.masked(addr.bytes, len)
        guard net == addr.bytes, let cidr = CIDR(address: addr, prefixLength: len) else {
            let fixed = IPAddress(bytes: net).map { "\($0)/\(len)" } ?? "?"
            throw .badNetwork(text, "host bits are set (did you mean \(fixed)?)")
        }
        self = cidr
    }

    /// True when `ip` is inside this network. IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`,
    /// as a dual-stack socket reports IPv4 clients) match IPv4 networks.
    public func contains(_ ip: IPAddress) -> Bool {
        var bytes = ip.bytes
        if !address.isIPv6, bytes.count == 16, bytes[0..<10].allSatisfy({ $0 == 0 }),
           bytes[10] == 0xff, bytes[11] == 0xff {
            bytes = Array(bytes[12...])
        }
        guard bytes.count == address.bytes.count else { return false }
        return CIDR.masked(bytes, prefixLength) == address.bytes
    }

    public var isIPv6: Bool { address.isIPv6 }
    public var isHost: Bool { prefixLength == (address.isIPv6 ? 128 : 32) }

    public var description: String { "\(address)/\(prefixLength)" }

    static func masked(_ bytes: [UInt8], _ prefix: Int) -> [UInt8] {
        var out = bytes
        for i in 0..<out.count {
            let keep = max(0, min(8, prefix - i * 8))
            out[i] &= keep == 0 ? 0 : UInt8(truncatingIfNeeded: 0xff << (8 - keep))
        }
        return out
    }
}
