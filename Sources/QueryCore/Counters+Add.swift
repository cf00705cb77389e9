extension Counters {
    /// Every plain count, for summing the counters of several event loops. A unit test
    /// checks that no `Int` field is missing from this list.
    static var countFields: [WritableKeyPath<Counters, Int>] { [
        \.queriesUDP, \.queriesTCP, \.answered, \.servfail, \.refused, \.formerr, \.notimp,
        \.badVersion, \.droppedMalformed, \.overload, \.marked, \.selectorMarked, \.reloads, \.cacheHits,
        \.staleServed, \.coalesced, \.upstreamSent, \.upstreamTimeouts, \.upstreamErrors,
        \.upstreamUnusable, \.upstreamRetries, \.truncatedRelayed, \.unmatchedAnswers,
        \.mismatchedAnswers, \.portQuarantineRebinds, \.tcpRejected, \.acceptErrors, \.idleSocketsClosed,
        \.packetMarks, \.packetMarksVerified, \.packetMarkMismatches, \.packetMarkSuspects, \.replyDrops,
    ] }

    /// Adds another loop's counters to these.
    public mutating func add(_ other: Counters) {
        for field in Self.countFields { self[keyPath: field] += other[keyPath: field] }
        localAnswers.merge(other.localAnswers, uniquingKeysWith: +)
        unmarked.merge(other.unmarked, uniquingKeysWith: +)
        sets.merge(other.sets) { a, b in
            var s = a
            s.added += b.added; s.refreshed += b.refreshed; s.failures += b.failures; s.deadlineMisses += b.deadlineMisses
            return s
        }
    }
}
