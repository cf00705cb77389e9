import NIOCore
import QueryCore

/// The socket or connection of each transaction's current attempt, by the transaction's
/// slot in the core's table (`TxnID.index`): an array read, not a hash of the ID, on every
/// upstream send and answer. An entry is only returned for the generation it was stored
/// with, so a stale `TxnID` never reaches a newer transaction of the same slot.
struct AttemptSlots {
    private var slots: [(generation: UInt32, io: AttemptIO)?] = []

    subscript(_ id: TxnID) -> AttemptIO? {
        get {
            let i = Int(id.index)
            guard i >= 0, i < slots.count, let slot = slots[i], slot.generation == id.generation else { return nil }
            return slot.io
        }
        set {
            let i = Int(id.index)
            precondition(i >= 0, "negative transaction slot")
            if let newValue {
                if i >= slots.count { slots.append(contentsOf: repeatElement(nil, count: i - slots.count + 1)) }
                slots[i] = (id.generation, newValue)
            } else if i < slots.count, let slot = slots[i], slot.generation == id.generation {
                slots[i] = nil
            }
        }
    }

    /// Removes and returns the entry of `id` (nil when there is none for its generation).
    mutating func removeValue(forKey id: TxnID) -> AttemptIO? {
        let i = Int(id.index)
        guard i >= 0, i < slots.count, let slot = slots[i], slot.generation == id.generation else { return nil }
        slots[i] = nil
        return slot.io
    }
}
