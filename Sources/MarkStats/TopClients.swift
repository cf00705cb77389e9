import MarkCore

/// The heaviest clients by queries, per mark name, in bounded memory (the space-saving
/// algorithm of Metwally et al.): each mark keeps at most `capacity` counters whatever
/// the number of distinct clients. A client that enters by evicting the smallest counter
/// inherits its count; `error` records that inheritance, so `count - error` is a lower
/// bound and `count` an upper bound of the client's real number of queries. A client
/// with more than total/capacity queries is always present.
public struct TopClients: Sendable {
    public struct Entry: Sendable, Equatable {
        public var client: IPAddress
        public var count: Int
        public var error: Int
        public init(client: IPAddress, count: Int, error: Int) {
            self.client = client; self.count = count; self.error = error
        }
    }

    struct Table: Sendable {
        var entries: [Entry] = []
        var index: [IPAddress: Int] = [:]
        var total = 0
    }

    public let capacity: Int
    /// Mark names are a bounded set (the policy's marks, `other`, `none`), and so is this.
    public let maxMarks: Int
    private var tables: [String: Table] = [:]

    public init(capacity: Int = 64, maxMarks: Int = 256) {
        self.capacity = max(1, capacity)
        self.maxMarks = max(1, maxMarks)
    }

    /// Counts one query of `client` under `mark`.
    public mutating func record(_ client: IPAddress, mark: String) {
        if tables[mark] == nil, tables.count >= maxMarks { return }
        tables[mark, default: Table()].record(client, capacity: capacity)
    }

    /// Queries counted for `mark` (all clients, also those no longer in the table).
    public func total(mark: String) -> Int { tables[mark]?.total ?? 0 }

    /// The `n` heaviest clients of every mark, heaviest first (ties by address text).
    public func top(_ n: Int) -> [String: [Entry]] {
        tables.mapValues { table in
            Array(table.entries.sorted {
                $0.count != $1.count ? $0.count > $1.count : $0.client.description < $1.client.description
            }.prefix(max(0, n)))
        }
    }

    public mutating func removeAll() { tables = [:] }
}

extension TopClients.Table {
    mutating func record(_ client: IPAddress, capacity: Int) {
        total += 1
        if let i = index[client] {
            entries[i].count += 1
            return
        }
        if entries.count < capacity {
            index[client] = entries.count
            entries.append(.init(client: client, count: 1, error: 0))
            return
        }
        var victim = 0
        for i in 1..<entries.count where entries[i].count < entries[victim].count { victim = i }
        let floor = entries[victim].count
        index[entries[victim].client] = nil
        index[client] = victim
        entries[victim] = .init(client: client, count: floor + 1, error: floor)
    }
}
