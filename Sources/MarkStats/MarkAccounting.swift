import MarkCore
import MarkPolicy

/// Bytes and packets of all conntrack flows per connmark, masked and named as the policy
/// does it (the `markdns accounting` view). Pure: the flows come from a netlink dump.
public struct MarkTotals: Codable, Sendable, Equatable {
    /// The masked mark.
    public var mark: UInt32
    /// The policy's name for it, `other` (a mark the policy does not define) or `none` (0).
    public var name: String
    public var flows: Int
    public var originalBytes: UInt64
    public var originalPackets: UInt64
    public var replyBytes: UInt64
    public var replyPackets: UInt64

    public init(mark: UInt32, name: String, flows: Int = 0, originalBytes: UInt64 = 0, originalPackets: UInt64 = 0,
                replyBytes: UInt64 = 0, replyPackets: UInt64 = 0) {
        self.mark = mark; self.name = name; self.flows = flows
        self.originalBytes = originalBytes; self.originalPackets = originalPackets
        self.replyBytes = replyBytes; self.replyPackets = replyPackets
    }

    public var bytes: UInt64 { originalBytes &+ replyBytes }
    public var packets: UInt64 { originalPackets &+ replyPackets }

    mutating func add(_ f: FlowCounters) {
        flows += 1
        originalBytes &+= f.originalBytes; originalPackets &+= f.originalPackets
        replyBytes &+= f.replyBytes; replyPackets &+= f.replyPackets
    }

    mutating func add(_ t: MarkTotals) {
        flows += t.flows
        originalBytes &+= t.originalBytes; originalPackets &+= t.originalPackets
        replyBytes &+= t.replyBytes; replyPackets &+= t.replyPackets
    }
}

public enum MarkAccounting {
    /// The name of a masked mark under `policy`.
    public static func name(ofMasked mark: UInt32, in policy: PolicyConfig) -> String {
        if mark == 0 { return PolicyDecision.noneName }
        let mask = policy.conntrack.mask
        return policy.marks.first { $0.value & mask == mark }?.name ?? PolicyDecision.otherName
    }

    /// Sums per masked mark, by mark value.
    public static func totals(_ flows: [FlowCounters], policy: PolicyConfig) -> [MarkTotals] {
        let mask = policy.conntrack.mask
        var sums: [UInt32: MarkTotals] = [:]
        for f in flows {
            let m = f.mark & mask
            sums[m, default: MarkTotals(mark: m, name: name(ofMasked: m, in: policy))].add(f)
        }
        return sums.values.sorted { $0.mark < $1.mark }
    }

    /// Sums per name (every undefined mark folds into `other`): the bounded label set.
    public static func byName(_ totals: [MarkTotals]) -> [String: MarkTotals] {
        var out: [String: MarkTotals] = [:]
        for t in totals {
            out[t.name, default: MarkTotals(mark: t.mark, name: t.name)].add(t)
        }
        return out
    }

    /// A table for people.
    public static func table(_ totals: [MarkTotals]) -> String {
        var rows = [["MARK", "NAME", "FLOWS", "ORIG BYTES", "ORIG PKTS", "REPLY BYTES", "REPLY PKTS", "TOTAL BYTES"]]
        for t in totals {
            rows.append(["0x" + String(t.mark, radix: 16), t.name, "\(t.flows)", "\(t.originalBytes)",
                         "\(t.originalPackets)", "\(t.replyBytes)", "\(t.replyPackets)", "\(t.bytes)"])
        }
        return TextTable.render(rows, rightAligned: [2, 3, 4, 5, 6, 7])
    }
}
