/// The DNS IDs one upstream socket has sent: one bit per ID (8 KiB, allocated with the
/// socket), so the never-reuse check per query is a shift and a mask, not a hash.
struct UsedIDs {
    private var words = [UInt64](repeating: 0, count: 1024)

    /// Adds `id`; false when it was already there.
    mutating func insert(_ id: UInt16) -> Bool {
        let bit: UInt64 = 1 << UInt64(id & 63)
        let i = Int(id >> 6)
        guard words[i] & bit == 0 else { return false }
        words[i] |= bit
        return true
    }
}
