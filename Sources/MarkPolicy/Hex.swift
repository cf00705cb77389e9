/// `0x`-prefixed lower-case hex, as nft, iptables and ip-rule accept and as errors print.
@inline(__always)
func hex(_ v: UInt32) -> String { "0x" + String(v, radix: 16) }
