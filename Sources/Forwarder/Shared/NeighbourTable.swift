import Conntrack
import MarkCore
import NIOCore

/// Address (IPv4 and IPv6) -> MAC from the kernel's neighbour table (an rtnetlink dump,
/// `NeighbourDump`), re-read at most once per `refreshSeconds` and only when a MAC selector
/// needs it; an address not in the table re-reads it at most once a second. Which entries
/// count is pure and tested (MarkCore `Neighbours`).
final class NeighbourTable {
    private var table: [IPAddress: [UInt8]] = [:]
    private var loadedAt: Double = -1e9
    let refreshSeconds: Double
    private let source: () -> [Neighbour]?

    init(refreshSeconds: Double = 5, source: @escaping () -> [Neighbour]? = { try? NeighbourDump.entries() }) {
        self.refreshSeconds = refreshSeconds
        self.source = source
    }

    func mac(for address: IPAddress) -> [UInt8]? {
        let now = Double(NIODeadline.now().uptimeNanoseconds) / 1e9
        if now - loadedAt > refreshSeconds || (table[address] == nil && now - loadedAt > 1) {
            if let entries = source() { table = Neighbours.table(entries).mapValues(\.bytes) }
            loadedAt = now
        }
        return table[address]
    }
}
