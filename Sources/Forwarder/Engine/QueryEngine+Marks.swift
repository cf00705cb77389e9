import MarkCore
import QueryCore

/// Where a query's mark comes from: its packet mark once trusted (`PacketMarkTrust`),
/// otherwise a ctnetlink lookup of its flow.
extension QueryEngine {
    /// The client flow's mark: the query's own packet mark when it is trusted to equal the
    /// connmark (see `PacketMarkTrust`), otherwise a ctnetlink lookup; every lookup made
    /// with a packet mark at hand checks it.
    func resolveMark(_ flow: FlowTuple, packetMark: UInt32?, interfaceIndex: Int?) -> MarkLookup? {
        guard markSource != nil else { return nil }
        let interface = interfaceIndex ?? 0
        switch markTrust.step(packetMark: packetMark, interface: interface) {
        case .usePacket(let mark):
            core.counters.packetMarks += 1
            return .found(mark)
        case .lookup(let verify):
            let result = lookupMark(flow)
            guard let verify, let result else { return result }
            let before = markTrust.state
            switch markTrust.verified(packetMark: verify, interface: interface, lookup: result) {
            case .agreed:
                core.counters.packetMarksVerified += 1
                if before != .trusted && markTrust.state == .trusted {
                    logger.info("packet marks match connmarks (\(markTrust.warmup) compared): using packet marks (SO_RCVMARK) instead of ctnetlink lookups; 1 query in \(markTrust.sampleEvery) is still compared")
                }
            case .mismatch(let first):
                core.counters.packetMarkMismatches += 1
                if first {
                    let connmark: String
                    switch result {
                    case .found(let m): connmark = hex(m)
                    case .notFound: connmark = "none (no conntrack entry)"
                    case .failed: connmark = "?"
                    }
                    logger.warning("packet mark \(hex(verify)) differs from connmark \(connmark) of \(flow): the ruleset does not restore the connmark onto packets before they reach markdns (meta mark set ct mark / CONNMARK --restore-mark), or changes it afterwards; looking every connmark up with ctnetlink until the next reload")
                }
            case .suspect:
                // Once is a connmark change racing this query (sessions make that routine);
                // the lookup's mark is used and the next marked query is compared.
                core.counters.packetMarkSuspects += 1
            case .inconclusive:
                break
            }
            return result
        }
    }

    /// The client flow's mark, timed and reported when observed.
    func lookupMark(_ flow: FlowTuple) -> MarkLookup? {
        guard let markSource else { return nil }
        guard let observer, observer.observesQueries else { return markSource.lookup(flow) }
        let start = Monotonic.seconds
        let result = markSource.lookup(flow)
        observer.conntrackLookup(seconds: Monotonic.seconds - start, result: result)
        return result
    }

}
