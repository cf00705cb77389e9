import MarkCore

/// What the forwarder counted. Owned by the engine (one event loop), read at shutdown and
/// by tests through the stats log line.
public struct Counters: Sendable, Equatable {
    public var queriesUDP = 0
    public var queriesTCP = 0
    /// EDNS queries of a version other than 0, answered BADVERS (RFC 6891 6.1.3).
    public var badVersion = 0
    public var answered = 0
    public var servfail = 0
    public var refused = 0
    public var formerr = 0
    public var notimp = 0
    public var droppedMalformed = 0
    public var overload = 0
    public var marked = 0
    /// Marks taken from the query's own packet mark (SO_RCVMARK), no ctnetlink lookup.
    public var packetMarks = 0
    /// Packet marks compared with ctnetlink and found equal / different.
    public var packetMarksVerified = 0
    public var packetMarkMismatches = 0
    /// Single disagreements excused as a connmark change racing the query.
    public var packetMarkSuspects = 0
    /// No kernel mark; the mark came from the policy's client selectors.
    public var selectorMarked = 0
    /// Answered by the policy itself, by reason (walled-garden, blocked).
    public var localAnswers: [String: Int] = [:]
    public var reloads = 0
    public var cacheHits = 0
    /// Expired answers served because every upstream failed (serve-stale, RFC 8767).
    public var staleServed = 0
    /// Queries answered from another client's identical query in flight (same view, mark).
    public var coalesced = 0
    public var unmarked: [NoMarkReason: Int] = [:]
    public var upstreamSent = 0
    public var upstreamTimeouts = 0
    public var upstreamErrors = 0
    public var upstreamUnusable = 0
    /// Attempts of a second round (servers that timed out, tried again within the deadline).
    public var upstreamRetries = 0
    public var truncatedRelayed = 0
    /// Answers on an upstream socket whose ID matches nothing in flight (late or forged).
    public var unmatchedAnswers = 0
    /// Answers whose ID matched but whose question did not (forged or broken).
    public var mismatchedAnswers = 0
    public var portQuarantineRebinds = 0
    public var tcpRejected = 0
    /// accept() failures of the TCP listeners (descriptors or memory exhausted).
    public var acceptErrors = 0
    public var idleSocketsClosed = 0
    /// UDP replies the kernel would not take (client socket buffer full, a rule refusing).
    public var replyDrops = 0
    /// `[[set]]` writes, by set name (counted by the shell).
    public var sets: [String: SetCounts] = [:]

    public init() {}

    public var summary: String {
        let um = NoMarkReason.allCases.map { "\($0.rawValue)=\(unmarked[$0, default: 0])" }
            .joined(separator: " ")
        return "queries_udp=\(queriesUDP) queries_tcp=\(queriesTCP) answered=\(answered) "
            + "servfail=\(servfail) refused=\(refused) formerr=\(formerr) notimp=\(notimp) badvers=\(badVersion) "
            + "dropped=\(droppedMalformed) overload=\(overload) marked=\(marked) "
            + "selector_marked=\(selectorMarked) packet_marks=\(packetMarks) packet_marks_verified=\(packetMarksVerified) "
            + "packet_mark_mismatches=\(packetMarkMismatches) packet_mark_suspects=\(packetMarkSuspects) \(um) "
            + "walled_garden=\(localAnswers["walled-garden", default: 0]) blocked=\(localAnswers["blocked", default: 0]) "
            + "local=\(localAnswers["local", default: 0]) private_reverse=\(localAnswers["private-reverse", default: 0]) "
            + "reloads=\(reloads) cache_hits=\(cacheHits) stale_served=\(staleServed) coalesced=\(coalesced) "
            + "upstream_sent=\(upstreamSent) upstream_timeouts=\(upstreamTimeouts) "
            + "upstream_errors=\(upstreamErrors) upstream_unusable=\(upstreamUnusable) "
            + "upstream_retries=\(upstreamRetries) "
            + "truncated=\(truncatedRelayed) unmatched=\(unmatchedAnswers) "
            + "mismatched=\(mismatchedAnswers) port_rebinds=\(portQuarantineRebinds) "
            + "tcp_rejected=\(tcpRejected) accept_errors=\(acceptErrors) idle_sockets_closed=\(idleSocketsClosed) reply_drops=\(replyDrops)"
            + " set_added=\(sets.values.reduce(0) { $0 + $1.added }) set_refreshed=\(sets.values.reduce(0) { $0 + $1.refreshed })"
            + " set_failures=\(sets.values.reduce(0) { $0 + $1.failures }) set_deadline_misses=\(sets.values.reduce(0) { $0 + $1.deadlineMisses })"
    }
}
