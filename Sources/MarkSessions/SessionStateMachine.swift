/// The sessions of one gateway: events in (login, logout, expiry, re-apply), actions out
/// (store, kernel maps, connmarks, the DNS path). A value: the shell keeps the machine as it
/// was before an event and puts it back when an action fails, so a failed event changes
/// nothing.
public struct SessionStateMachine: Sendable {
    public private(set) var rules: SessionRules
    public private(set) var sessions: [SessionClient: Session] = [:]

    public init(rules: SessionRules) { self.rules = rules }

    public struct Login: Sendable, Equatable {
        public var client: SessionClient
        public var mark: String
        public var user: String?
        /// Seconds; nil: the mark's `session-timeout`.
        public var duration: UInt32?
        public init(client: SessionClient, mark: String, user: String? = nil, duration: UInt32? = nil) {
            self.client = client; self.mark = mark; self.user = user; self.duration = duration
        }
    }

    /// The live sessions, sorted by client.
    public func live(at now: Int64) -> [Session] {
        sessions.values.filter { $0.isLive(at: now) }.sorted { $0.client < $1.client }
    }

    public func session(of client: SessionClient, at now: Int64) -> Session? {
        sessions[client].flatMap { $0.isLive(at: now) ? $0 : nil }
    }

    public mutating func login(_ l: Login, now: Int64) -> Result<[SessionAction], SessionError> {
        guard let m = rules.mark(named: l.mark) else {
            if rules.otherMarks.contains(l.mark) { return .failure(.sessionsNotAllowed(l.mark)) }
            return .failure(.unknownMark(l.mark, known: rules.marks.map(\.name)))
        }
        if let u = l.user, !SessionError.isValidUser(u) { return .failure(.badUser(u)) }
        let value: UInt32
        if let range = m.range {
            guard let user = l.user else { return .failure(.userRequired(m.name)) }
            guard let v = RangeAllocation.value(for: user, mark: m.name, range: range,
                                                live: sessions.values.filter { $0.client != l.client && $0.isLive(at: now) }) else {
                return .failure(.rangeExhausted(m.name, range))
            }
            value = v
        } else {
            value = m.value
        }
        // Validated: from here on the event happens.
        var actions = expire(now: now)
        let seconds = l.duration ?? m.timeout
        let session = Session(client: l.client, markName: m.name, mark: value, user: l.user,
                              started: now, expires: now + Int64(seconds))
        actions.append(.storePut(session))
        // nft's `add element` leaves an existing element (and its timeout) alone: delete first.
        if let old = sessions[l.client] {
            actions.append(.kernelDelete(set: SessionMaps.name(mark: old.markName, family: l.client.family), client: l.client))
        }
        actions.append(.kernelAdd(element(session, now: now)))
        actions.append(.connmark(client: l.client, mark: value, mask: rules.mask))
        actions.append(.markChanged(client: l.client, mark: value))
        sessions[l.client] = session
        return .success(actions)
    }

    public mutating func logout(_ client: SessionClient, now: Int64) -> Result<[SessionAction], SessionError> {
        guard session(of: client, at: now) != nil else { return .failure(.noSession(client)) }
        var actions = expire(now: now)
        let old = sessions.removeValue(forKey: client)!
        actions += [.storeDelete(client),
                    .kernelDelete(set: SessionMaps.name(mark: old.markName, family: client.family), client: client),
                    .connmark(client: client, mark: 0, mask: rules.mask),
                    .markChanged(client: client, mark: 0)]
        return .success(actions)
    }

    /// Sessions past their end: out of the store and the kernel, their connmarks cleared.
    /// The kernel's element may outlive the record by up to a second (its timeout runs from
    /// the add, the record's in whole seconds), or be gone already: it is added (a no-op when
    /// present) and deleted in one transaction, which holds either way.
    public mutating func expire(now: Int64) -> [SessionAction] {
        var actions: [SessionAction] = []
        for s in sessions.values.sorted(by: { $0.client < $1.client }) where !s.isLive(at: now) {
            sessions[s.client] = nil
            actions += [.storeDelete(s.client),
                        .kernelAdd(element(s, now: now)),
                        .kernelDelete(set: SessionMaps.name(mark: s.markName, family: s.client.family), client: s.client),
                        .connmark(client: s.client, mark: 0, mask: rules.mask),
                        .markChanged(client: s.client, mark: 0)]
        }
        return actions
    }

    /// Start-up, reload, `rules --apply`: the stored sessions under (possibly new) rules.
    /// Expired ones and those whose mark is gone or no longer allows sessions are pruned;
    /// a range session whose value left its mark's range gets a new value. The kernel maps
    /// are refilled in one transaction and every live client's connmark is set again.
    public mutating func reapply(stored: [Session], rules newRules: SessionRules, now: Int64) -> [SessionAction] {
        rules = newRules
        sessions = [:]
        var actions: [SessionAction] = []
        var kept: [Session] = []
        for var s in stored.sorted(by: { $0.client < $1.client }) {
            guard s.isLive(at: now), let m = rules.mark(named: s.markName) else {
                actions += [.storeDelete(s.client), .connmark(client: s.client, mark: 0, mask: rules.mask)]
                continue
            }
            if let range = m.range {
                let fits = range.contains(s.mark) && s.user != nil
                if !fits {
                    guard let user = s.user, let v = RangeAllocation.value(for: user, mark: m.name, range: range, live: kept) else {
                        actions += [.storeDelete(s.client), .connmark(client: s.client, mark: 0, mask: rules.mask)]
                        continue
                    }
                    s.mark = v
                    actions.append(.storePut(s))
                }
            } else if s.mark != m.value {
                s.mark = m.value
                actions.append(.storePut(s))
            }
            kept.append(s)
            sessions[s.client] = s
        }
        actions.append(.kernelReplaceAll(kept.map { element($0, now: now) }))
        for s in kept {
            actions += [.connmark(client: s.client, mark: s.mark, mask: rules.mask), .markChanged(client: s.client, mark: s.mark)]
        }
        return actions
    }

    private func element(_ s: Session, now: Int64) -> KernelElement {
        let isRange = rules.mark(named: s.markName)?.range != nil
        return KernelElement(set: SessionMaps.name(mark: s.markName, family: s.client.family), client: s.client,
                             value: isRange ? s.mark : nil, timeout: max(1, s.remaining(at: now)))
    }
}

/// Per-user values of a range mark.
public enum RangeAllocation {
    /// The user's value while it has a live session of this mark (on any client), else the
    /// lowest value no live session of the mark holds; nil when all are taken.
    public static func value(for user: String, mark: String, range: MarkRange, live: some Sequence<Session>) -> UInt32? {
        var taken = Set<UInt32>()
        for s in live where s.markName == mark && range.contains(s.mark) {
            if s.user == user { return s.mark }
            taken.insert(s.mark)
        }
        guard UInt64(taken.count) < range.count else { return nil }
        var v = range.lower
        while taken.contains(v) { v += 1 }
        return v
    }
}
