import MarkSessions

/// Where sessions are kept across restarts. One implementation today (a SQLite file on the
/// gateway); a store shared by several gateways implements the same three calls.
/// Not thread-safe: the session service calls it under its lock.
public protocol SessionStore: AnyObject {
    /// Every stored session, live or not (the state machine prunes).
    func load() throws(SessionStoreError) -> [Session]
    /// Writes and removes in one transaction: all or nothing.
    func commit(put: [Session], delete: [SessionClient]) throws(SessionStoreError)
}

public struct SessionStoreError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ d: String) { description = d }
}

extension SessionStore {
    /// The store part of a state machine's actions.
    public func perform(_ actions: [SessionAction]) throws(SessionStoreError) {
        var put: [Session] = [], delete: [SessionClient] = []
        for a in actions {
            switch a {
            case .storePut(let s): put.append(s); delete.removeAll { $0 == s.client }
            case .storeDelete(let c): delete.append(c); put.removeAll { $0.client == c }
            default: continue
            }
        }
        guard !put.isEmpty || !delete.isEmpty else { return }
        try commit(put: put, delete: delete)
    }
}
