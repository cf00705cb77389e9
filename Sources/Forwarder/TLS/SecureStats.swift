import NIOConcurrencyHelpers

/// Counters of the encrypted upstreams, by upstream as written (`tls://...`), summed over
/// every engine; read by the metrics on scrape.
public final class SecureStats: Sendable {
    public struct Upstream: Sendable, Equatable {
        public var handshakes = 0
        public var connectionsOpened = 0
        public var connectionsOpen = 0
        /// Queries sent, and of them those sent on a connection that had carried queries.
        public var queries = 0
        public var reusedQueries = 0
        /// Queries re-sent on a new connection after the server closed the one they were on.
        public var resent = 0
        public var idleClosed = 0
        /// Failed or lost connections by `TLSFailure.Cause` raw value.
        public var failures: [String: Int] = [:]
        public init() {}
    }

    private let box = NIOLockedValueBox<[String: Upstream]>([:])

    public init() {}

    /// The causes that are certificate or handshake failures (`reason="tls"`).
    public static let tlsCauses: Set<String> = Set(TLSFailure.Cause.allCases.filter(\.isTLS).map(\.rawValue))

    func update(_ upstream: String, _ body: (inout Upstream) -> Void) {
        box.withLockedValue { body(&$0[upstream, default: Upstream()]) }
    }

    public var snapshot: [String: Upstream] { box.withLockedValue { $0 } }
}
