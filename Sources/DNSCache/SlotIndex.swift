/// An open-addressing hash index from a key's hash to an entry number (linear probing,
/// at most half full, backward-shift deletion so no tombstones pile up).
///
/// It stores only 4-byte entry numbers: the keys live in the entries themselves, and the
/// caller says through closures whether an entry matches and what an entry's hash is.
/// That way a cache entry's key is held once, not a second time in a dictionary.
/// Inlinable (like `AnswerCache`) so that clients compile it specialized.
@usableFromInline
struct SlotIndex: Sendable {
    @usableFromInline var slots: [Int32] = []
    @usableFromInline var count = 0

    @usableFromInline static let empty: Int32 = -1

    @inlinable init() {}

    @inlinable var mask: Int { slots.count - 1 }

    /// The slot holding an entry for which `matches` is true, probing from `hash`; or,
    /// when there is none, nil and the empty slot where such an entry would go.
    @inlinable func find(hash: Int, matches: (Int32) -> Bool) -> (slot: Int, found: Int32?) {
        guard !slots.isEmpty else { return (-1, nil) }
        var s = hash & mask
        while true {
            let e = slots[s]
            if e == SlotIndex.empty { return (s, nil) }
            if matches(e) { return (s, e) }
            s = (s + 1) & mask
        }
    }

    /// The slot holding `entry` (which must be in the index).
    @inlinable func slot(of entry: Int32, hash: Int) -> Int {
        var s = hash & mask
        while slots[s] != entry { s = (s + 1) & mask }
        return s
    }

    /// Puts `entry` in the empty `slot` that `find` returned. Growing invalidates slots,
    /// so call `reserve` before `find` when inserting.
    @inlinable mutating func insert(_ entry: Int32, at slot: Int) {
        slots[slot] = entry
        count += 1
    }

    /// Makes room for one more entry, rehashing every entry (through `hashOf`) when the
    /// table would get more than half full.
    @inlinable mutating func reserveOneMore(hashOf: (Int32) -> Int) {
        guard (count + 1) * 2 > slots.count else { return }
        let old = slots
        slots = Array(repeating: SlotIndex.empty, count: max(16, slots.count * 2))
        for e in old where e != SlotIndex.empty {
            var s = hashOf(e) & mask
            while slots[s] != SlotIndex.empty { s = (s + 1) & mask }
            slots[s] = e
        }
    }

    /// Empties `slot`, moving later entries of the same probe run back so every entry stays
    /// reachable from its home slot.
    @inlinable mutating func remove(at slot: Int, hashOf: (Int32) -> Int) {
        var hole = slot
        var j = slot
        while true {
            j = (j + 1) & mask
            let e = slots[j]
            if e == SlotIndex.empty { break }
            let home = hashOf(e) & mask
            // The entry may stay where it is when its home lies cyclically in (hole, j].
            let stays = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j)
            if !stays {
                slots[hole] = e
                hole = j
            }
        }
        slots[hole] = SlotIndex.empty
        count -= 1
    }

    @inlinable mutating func removeAll() {
        slots = []
        count = 0
    }
}
