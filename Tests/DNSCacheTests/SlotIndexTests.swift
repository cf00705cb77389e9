@testable import DNSCache
import Testing

/// The cache's open-addressing index, driven directly with hashes chosen to collide: after
/// every insert and every backward-shift removal each member must still be found from its
/// home slot, and nothing else.
@Suite("SlotIndex")
struct SlotIndexTests {
    /// Entry e's hash: few distinct values, and some near the top of the table so probe
    /// runs wrap around the end.
    static func hash(_ e: Int32, spread: Int) -> Int { Int(e) % spread * 7 + (Int(e) % 3 == 0 ? -1 : 0) }

    func check(_ index: SlotIndex, members: Set<Int32>, universe: Range<Int32>, spread: Int) {
        #expect(index.count == members.count)
        #expect(index.slots.count >= 2 * members.count, "never more than half full")
        for e in universe {
            let found = index.find(hash: Self.hash(e, spread: spread)) { $0 == e }.found
            #expect(found == (members.contains(e) ? e : nil), "entry \(e)")
        }
    }

    @Test(arguments: [(UInt64(1), 3), (7, 5), (99, 40)])
    func randomInsertsAndRemovesAgainstASet(seed: UInt64, spread: Int) {
        var rng = SplitMix64(seed: seed)
        var index = SlotIndex()
        var members: Set<Int32> = []
        let universe: Range<Int32> = 0..<60
        for _ in 0..<2_000 {
            let e = Int32(rng.next() % UInt64(universe.count))
            let h = Self.hash(e, spread: spread)
            if members.contains(e) {
                let slot = index.slot(of: e, hash: h)
                index.remove(at: slot) { Self.hash($0, spread: spread) }
                members.remove(e)
            } else {
                index.reserveOneMore { Self.hash($0, spread: spread) }
                let (slot, found) = index.find(hash: h) { $0 == e }
                #expect(found == nil)
                index.insert(e, at: slot)
                members.insert(e)
            }
            check(index, members: members, universe: universe, spread: spread)
        }
    }

    @Test func removeAllEmptiesTheTable() {
        var index = SlotIndex()
        for e: Int32 in 0..<10 {
            index.reserveOneMore { Int($0) }
            index.insert(e, at: index.find(hash: Int(e)) { $0 == e }.slot)
        }
        index.removeAll()
        #expect(index.count == 0 && index.slots.isEmpty)
        #expect(index.find(hash: 3) { $0 == 3 }.found == nil)
    }
}
