import MarkCore
/// The `/clients` document: per mark, its heaviest clients. Codable (JSON on the metrics
/// listener, read back by `markdns top`).
public struct ClientsReport: Codable, Sendable, Equatable {
    public struct Client: Codable, Sendable, Equatable {
        public var client: String
        /// Upper bound of the client's queries; `queries - error` is a lower bound.
        public var queries: Int
        public var error: Int
        public init(client: String, queries: Int, error: Int) {
            self.client = client; self.queries = queries; self.error = error
        }
    }

    public struct Mark: Codable, Sendable, Equatable {
        public var mark: String
        /// Every query of the mark, also of clients not listed.
        public var queries: Int
        public var clients: [Client]
        public init(mark: String, queries: Int, clients: [Client]) {
            self.mark = mark; self.queries = queries; self.clients = clients
        }
    }

    public var marks: [Mark]

    public init(marks: [Mark]) { self.marks = marks }

    /// The report of the `n` heaviest clients per mark, marks by name.
    public init(_ top: TopClients, n: Int) {
        marks = top.top(n).sorted { $0.key < $1.key }.map { mark, entries in
            Mark(mark: mark, queries: top.total(mark: mark),
                 clients: entries.map { Client(client: $0.client.description, queries: $0.count, error: $0.error) })
        }
    }

    /// A fixed-width table for people (`markdns top`).
    public func table() -> String {
        var rows = [["MARK", "CLIENT", "QUERIES", "±"]]
        for m in marks {
            rows.append([m.mark, "(all)", "\(m.queries)", ""])
            for c in m.clients { rows.append(["", c.client, "\(c.queries)", c.error > 0 ? "\(c.error)" : ""]) }
        }
        return TextTable.render(rows, rightAligned: [2, 3])
    }
}

/// Plain text columns, padded to the widest cell.
enum TextTable {
    static func render(_ rows: [[String]], rightAligned: Set<Int>) -> String {
        let columns = rows.map(\.count).max() ?? 0
        var widths = [Int](repeating: 0, count: columns)
        for row in rows { for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) } }
        return rows.map { row in
            row.enumerated().map { i, cell in
                let pad = String(repeating: " ", count: widths[i] - cell.count)
                return rightAligned.contains(i) ? pad + cell : cell + pad
            }.joined(separator: "  ").trimmingTrailingSpaces()
        }.joined(separator: "\n") + "\n"
    }
}

extension String {
    func trimmingTrailingSpaces() -> String {
        var s = Substring(self)
        while s.last == " " { s = s.dropLast() }
        return String(s)
    }
}
