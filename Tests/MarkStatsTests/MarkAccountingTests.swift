import MarkCore
import MarkPolicy
import MarkStats
import Testing

@Suite("Conntrack accounting per mark")
struct MarkAccountingTests {
    let policy = PolicyConfig(conntrack: ConntrackConfig(mask: 0xff),
                              pools: [Pool(name: "default", servers: [])],
                              marks: [MarkRule(value: 0x10, name: "alice", action: .forward(pool: "default")),
                                      MarkRule(value: 0x20, name: "bob", action: .forward(pool: "default"))])

    @Test("Marks are masked, named from the policy, and bytes and packets summed per mark")
    func sums() {
        let flows = [
            FlowCounters(mark: 0x10, proto: 17, originalBytes: 100, originalPackets: 1, replyBytes: 200, replyPackets: 1),
            FlowCounters(mark: 0xAB10, proto: 6, originalBytes: 1000, originalPackets: 10, replyBytes: 5000, replyPackets: 8),
            FlowCounters(mark: 0x20, proto: 17, originalBytes: 50, originalPackets: 1),
            FlowCounters(mark: 0x30, proto: 17, originalBytes: 7, originalPackets: 1),
            FlowCounters(mark: 0x100, proto: 17, originalBytes: 3, originalPackets: 1),
            FlowCounters(mark: 0, proto: 6, originalBytes: 9, originalPackets: 2, replyBytes: 1, replyPackets: 1),
        ]
        let totals = MarkAccounting.totals(flows, policy: policy)
        #expect(totals == [
            MarkTotals(mark: 0, name: "none", flows: 2, originalBytes: 12, originalPackets: 3, replyBytes: 1, replyPackets: 1),
            MarkTotals(mark: 0x10, name: "alice", flows: 2, originalBytes: 1100, originalPackets: 11, replyBytes: 5200, replyPackets: 9),
            MarkTotals(mark: 0x20, name: "bob", flows: 1, originalBytes: 50, originalPackets: 1),
            MarkTotals(mark: 0x30, name: "other", flows: 1, originalBytes: 7, originalPackets: 1),
        ])
        #expect(totals[1].bytes == 6300 && totals[1].packets == 20)
    }

    @Test("By name, undefined marks fold into other")
    func byName() {
        let flows = [FlowCounters(mark: 0x30, originalBytes: 7), FlowCounters(mark: 0x40, originalBytes: 8),
                     FlowCounters(mark: 0x10, originalBytes: 1)]
        let named = MarkAccounting.byName(MarkAccounting.totals(flows, policy: policy))
        #expect(named["other"]?.originalBytes == 15 && named["other"]?.flows == 2)
        #expect(named["alice"]?.originalBytes == 1)
        #expect(Set(named.keys) == ["other", "alice"])
    }

    @Test("The table has one row per mark plus the header")
    func table() {
        let text = MarkAccounting.table(MarkAccounting.totals([FlowCounters(mark: 0x10, originalBytes: 42)], policy: policy))
        let lines = text.split(separator: "\n")
        #expect(lines.count == 2)
        #expect(lines[1].hasPrefix("0x10") && lines[1].contains("alice") && lines[1].hasSuffix("42"))
    }

    @Test("An empty table sums to nothing")
    func empty() {
        #expect(MarkAccounting.totals([], policy: policy).isEmpty)
    }
}
