import MarkCore
import MarkStats
import Testing

@Suite("Top clients (space-saving)")
struct TopClientsTests {
    func ip(_ n: Int) -> IPAddress { .v4(10, 0, UInt8(n / 256), UInt8(n % 256)) }

    @Test("Below capacity every count is exact, per mark, heaviest first")
    func exactBelowCapacity() {
        var top = TopClients(capacity: 8)
        for (client, times) in [(1, 5), (2, 3), (3, 7)] {
            for _ in 0..<times { top.record(ip(client), mark: "alice") }
        }
        top.record(ip(1), mark: "bob")
        let t = top.top(10)
        #expect(t["alice"] == [.init(client: ip(3), count: 7, error: 0), .init(client: ip(1), count: 5, error: 0),
                               .init(client: ip(2), count: 3, error: 0)])
        #expect(t["bob"] == [.init(client: ip(1), count: 1, error: 0)])
        #expect(top.total(mark: "alice") == 15)
        #expect(top.top(2)["alice"]?.count == 2)
    }

    @Test("Memory stays bounded with many distinct clients; heavy hitters survive with bounds that hold")
    func heavyHittersSurvive() {
        var top = TopClients(capacity: 10)
        var truth: [IPAddress: Int] = [:]
        // 3 heavy clients (each > total/capacity) among 5000 one-off clients.
        for i in 0..<5000 {
            top.record(ip(1000 + i), mark: "m"); truth[ip(1000 + i), default: 0] += 1
            if i % 5 == 0 { for h in 1...3 { top.record(ip(h), mark: "m"); truth[ip(h), default: 0] += 1 } }
        }
        let t = top.top(100)["m"] ?? []
        #expect(t.count == 10)
        for h in 1...3 {
            let e = t.first { $0.client == ip(h) }
            #expect(e != nil, "heavy client \(h) must be present")
            if let e {
                #expect(e.count >= truth[ip(h)]!, "count is an upper bound")
                #expect(e.count - e.error <= truth[ip(h)]!, "count - error is a lower bound")
            }
        }
        #expect(top.total(mark: "m") == truth.values.reduce(0, +))
    }

    @Test("The number of marks is bounded too")
    func marksBounded() {
        var top = TopClients(capacity: 4, maxMarks: 2)
        top.record(ip(1), mark: "a"); top.record(ip(1), mark: "b"); top.record(ip(1), mark: "c")
        #expect(Set(top.top(5).keys) == ["a", "b"])
    }

    @Test("The clients report lists marks by name and renders a table")
    func report() {
        var top = TopClients(capacity: 4)
        for _ in 0..<3 { top.record(ip(2), mark: "kids") }
        top.record(ip(1), mark: "adults")
        let r = ClientsReport(top, n: 5)
        #expect(r.marks.map(\.mark) == ["adults", "kids"])
        #expect(r.marks[1].clients == [.init(client: "10.0.0.2", queries: 3, error: 0)])
        let table = r.table()
        #expect(table.contains("kids"))
        #expect(table.split(separator: "\n").contains { $0.hasSuffix("10.0.0.2        3") || ($0.contains("10.0.0.2") && $0.hasSuffix("3")) })
    }
}
