import DNSWire
import MarkPolicy

/// One address to add to (or refresh in) a `[[set]]` before an answer is released: the
/// set's base name (the shell picks `_v4` or `_v6` by the address length), the address
/// bytes (4 or 16) and the element timeout in seconds, max(TTL, timeout-min).
public struct SetFill: Sendable, Equatable, Hashable {
    public var set: String
    public var address: [UInt8]
    public var timeout: UInt32

    public init(set: String, address: [UInt8], timeout: UInt32) {
        self.set = set; self.address = address; self.timeout = timeout
    }

    public var isIPv6: Bool { address.count == 16 }

    /// Every address of `answer` on the CNAME chain from its question, for every target.
    public static func fills(_ targets: [SetTarget], answer: UnsafeRawBufferPointer) -> [SetFill] {
        guard !targets.isEmpty else { return [] }
        let addresses = AnswerAddresses.extract(answer)
        guard !addresses.isEmpty else { return [] }
        var out: [SetFill] = []
        out.reserveCapacity(targets.count * addresses.count)
        for t in targets {
            for a in addresses { out.append(SetFill(set: t.name, address: a.bytes, timeout: t.timeout(ttl: a.ttl))) }
        }
        return out
    }

    public static func fills(_ targets: [SetTarget], answer: [UInt8]) -> [SetFill] {
        guard !targets.isEmpty else { return [] }
        return answer.withUnsafeBytes { fills(targets, answer: $0) }
    }
}

/// What the shell counted of one set's writes.
public struct SetCounts: Sendable, Equatable {
    /// Elements written that this loop had not written within their timeout.
    public var added = 0
    /// Elements written again before their timeout ran out (timeout refreshed).
    public var refreshed = 0
    /// Elements the kernel refused (the set missing, say) or that could not be sent.
    public var failures = 0
    /// Answers released before the kernel acknowledged their elements (the deadline).
    public var deadlineMisses = 0

    public init() {}
}
