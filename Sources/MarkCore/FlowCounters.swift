/// One conntrack entry's accounting as the kernel reports it (with
/// `net.netfilter.nf_conntrack_acct = 1`; without it the byte and packet counts are 0).
public struct FlowCounters: Sendable, Equatable {
    /// The entry's connmark, unmasked.
    public var mark: UInt32
    public var proto: UInt8
    public var originalBytes: UInt64
    public var originalPackets: UInt64
    public var replyBytes: UInt64
    public var replyPackets: UInt64

    public init(mark: UInt32, proto: UInt8 = 0, originalBytes: UInt64 = 0, originalPackets: UInt64 = 0,
                replyBytes: UInt64 = 0, replyPackets: UInt64 = 0) {
        self.mark = mark; self.proto = proto
        self.originalBytes = originalBytes; self.originalPackets = originalPackets
        self.replyBytes = replyBytes; self.replyPackets = replyPackets
    }
}
