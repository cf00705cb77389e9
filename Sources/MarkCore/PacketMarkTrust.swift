/// Whether a query's own packet mark (read with SO_RCVMARK) may stand in for its flow's
/// connmark, which otherwise costs a ctnetlink round trip per query.
///
/// The packet mark equals the connmark only when the ruleset restores it before the query
/// reaches us (`meta mark set ct mark`, `CONNMARK --restore-mark`) and nothing changes either
/// afterwards. That is checked, not assumed: nonzero packet marks are compared with the
/// ctnetlink answer for the first `warmup` queries; after that a packet mark is used only
/// for a (mark, incoming interface) pair that has itself matched a lookup (a restore rule
/// may cover one interface while another carries some other mark of the same value), and
/// one query in `sampleEvery` is still compared. A disagreement makes the loop suspicious:
/// every marked query is then compared, and a second disagreement before an agreement turns
/// the shortcut off (ctnetlink for every query) until `reset` (policy reload). One
/// disagreement alone is the race of a connmark change (a session login, say) with a query
/// whose packet mark was restored just before it: the next query of that flow agrees again.
/// A ruleset that does not restore disagrees on every marked query.
///
/// Marks are compared in the policy's bits (`mask`) only: those alone select the policy and
/// reach the upstream socket, and other mark users (multi-WAN, QoS) may set other bits on
/// packets. A packet mark of 0 always goes to ctnetlink: without the restore rule
/// every packet mark is 0, and 0 cannot tell "unmarked" from "not restored". The lookup's
/// answer is the one used whenever a lookup is made.
///
/// Pure state, one per event loop.
public struct PacketMarkTrust: Sendable {
    public enum Mode: String, Sendable, CaseIterable {
        /// Use packet marks once verified against ctnetlink (default).
        case auto
        /// ctnetlink for every query (packet marks ignored).
        case conntrack
    }

    public enum State: Equatable, Sendable {
        /// Comparing; `agreed` nonzero packet marks have matched their connmark so far.
        case verifying(agreed: Int)
        /// Packet marks are used; one query in `sampleEvery` is still compared.
        case trusted
        /// A packet mark disagreed with its connmark: ctnetlink for every query.
        case distrusted
    }

    /// What to do for one query.
    public enum Step: Equatable, Sendable {
        /// Use this packet mark as the flow's connmark; no lookup.
        case usePacket(UInt32)
        /// Look the connmark up; when `verify` is set, report the result with `verified`.
        case lookup(verify: UInt32?)
    }

    /// What a comparison showed.
    public enum Verdict: Equatable, Sendable {
        case agreed
        /// A first disagreement: the next comparison decides (the lookup's mark is used).
        case suspect
        /// Nothing learned (the lookup failed).
        case inconclusive
        /// Packet mark and connmark differ; `first` on the comparison that turned trust off.
        case mismatch(first: Bool)
    }

    /// A packet mark as it arrived: its value and the interface it came in on.
    public struct Key: Hashable, Sendable {
        public var mark: UInt32
        public var interface: Int
        public init(mark: UInt32, interface: Int) { self.mark = mark; self.interface = interface }
    }

    public let mode: Mode
    public let mask: UInt32
    public let warmup: Int
    public let sampleEvery: Int
    /// At most this many verified pairs are kept (then the set starts over).
    public let maxVerified: Int
    public private(set) var state: State
    private var turn = 0
    private var verifiedKeys: Set<Key> = []
    /// A disagreement is waiting for the next comparison.
    public private(set) var suspicious = false

    public init(mode: Mode = .auto, mask: UInt32 = 0xffff_ffff, warmup: Int = 64, sampleEvery: Int = 256,
                maxVerified: Int = 4096) {
        precondition(warmup > 0 && sampleEvery > 0 && maxVerified > 0)
        self.mode = mode
        self.mask = mask
        self.warmup = warmup
        self.sampleEvery = sampleEvery
        self.maxVerified = maxVerified
        self.state = mode == .auto ? .verifying(agreed: 0) : .distrusted
    }

    /// The step for a query whose packet mark is `packetMark` (nil: none was received,
    /// e.g. TCP or a kernel without SO_RCVMARK), arrived on `interface` (0: unknown).
    public mutating func step(packetMark: UInt32?, interface: Int = 0) -> Step {
        guard let packetMark else { return .lookup(verify: nil) }
        switch state {
        case .distrusted:
            return .lookup(verify: nil)
        case .verifying:
            return .lookup(verify: packetMark)
        case .trusted:
            if suspicious { return .lookup(verify: packetMark) }
            if packetMark & mask == 0 { return .lookup(verify: packetMark) }
            guard verifiedKeys.contains(Key(mark: packetMark, interface: interface)) else {
                return .lookup(verify: packetMark)
            }
            turn &+= 1
            if turn % sampleEvery == 0 { return .lookup(verify: packetMark) }
            return .usePacket(packetMark)
        }
    }

    /// Compares a query's packet mark (arrived on `interface`) with what ctnetlink said
    /// about its flow.
    public mutating func verified(packetMark: UInt32, interface: Int = 0, lookup: MarkLookup) -> Verdict {
        let agrees: Bool
        switch lookup {
        case .failed: return .inconclusive
        case .found(let connmark): agrees = (connmark ^ packetMark) & mask == 0
        // No entry: only an unmarked packet agrees (a marked one got its mark elsewhere).
        case .notFound: agrees = packetMark & mask == 0
        }
        guard agrees else {
            if state != .distrusted && !suspicious {
                suspicious = true
                return .suspect
            }
            let first = state != .distrusted
            state = .distrusted
            suspicious = false
            return .mismatch(first: first)
        }
        // Only marks with our bits count towards trust: they show the restore rule at work.
        guard packetMark & mask != 0 else { return .agreed }
        suspicious = false
        if verifiedKeys.count >= maxVerified { verifiedKeys.removeAll() }
        verifiedKeys.insert(Key(mark: packetMark, interface: interface))
        if case .verifying(let agreed) = state {
            state = agreed + 1 >= warmup ? .trusted : .verifying(agreed: agreed + 1)
        }
        return .agreed
    }

    /// Back to verifying (after a policy reload: the ruleset may have changed with it).
    public mutating func reset() {
        state = mode == .auto ? .verifying(agreed: 0) : .distrusted
        turn = 0
        suspicious = false
        verifiedKeys.removeAll()
    }
}
