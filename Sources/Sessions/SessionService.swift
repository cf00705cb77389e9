import Logging
import MarkPolicy
import MarkSessions
import NIOConcurrencyHelpers

/// The shell around the session state machine: one lock, events in, the machine's actions
/// performed in order (store, kernel maps, connmarks, the DNS path). When the store or nft
/// fails, the machine and the store are put back as they were and the event is refused:
/// nothing has changed anywhere. Connmark updates come after both and are best effort
/// (their failures are logged and counted; the map element still marks new flows).
public final class SessionService: @unchecked Sendable {
    private let lock = NIOLock()
    private var machine: SessionStateMachine
    private var policy: PolicyConfig
    private let store: any SessionStore
    private let kernel: any SessionKernel
    private let logger: Logger
    private let clock: @Sendable () -> Int64
    /// Told of every mark change markdns makes itself (the DNS path's mark source).
    private let markChanged: @Sendable (SessionClient, UInt32) -> Void

    public struct Counters: Sendable, Equatable {
        public var logins = 0, logouts = 0, expiries = 0, applyFailures = 0, connmarksUpdated = 0
    }
    private var counters = Counters()

    public init(policy: PolicyConfig, store: any SessionStore, kernel: any SessionKernel, logger: Logger,
                clock: @escaping @Sendable () -> Int64,
                markChanged: @escaping @Sendable (SessionClient, UInt32) -> Void = { _, _ in }) {
        self.policy = policy
        self.machine = SessionStateMachine(rules: policy.sessionRules)
        self.store = store; self.kernel = kernel; self.logger = logger; self.clock = clock
        self.markChanged = markChanged
    }

    public enum Failure: Error, CustomStringConvertible {
        case refused(SessionError)
        case store(SessionStoreError)
        case kernel(String)
        public var description: String {
            switch self {
            case .refused(let e): return e.description
            case .store(let e): return e.description
            case .kernel(let s): return s
            }
        }
    }

    public var now: Int64 { clock() }

    public func login(_ l: SessionStateMachine.Login) -> Result<Session, Failure> {
        lock.withLock {
            let t = clock()
            var next = machine
            switch next.login(l, now: t) {
            case .failure(let e): return .failure(.refused(e))
            case .success(let actions):
                if let f = perform(actions, next: next) { return .failure(f) }
                counters.logins += 1
                let s = machine.session(of: l.client, at: t)!
                logger.notice("session login \(s.client) mark \(s.markName) (\(s.mark)) user \(s.user ?? "-") for \(SessionDuration.format(s.remaining(at: t)))")
                return .success(s)
            }
        }
    }

    public func logout(_ client: SessionClient) -> Result<Void, Failure> {
        lock.withLock {
            var next = machine
            switch next.logout(client, now: clock()) {
            case .failure(let e): return .failure(.refused(e))
            case .success(let actions):
                if let f = perform(actions, next: next) { return .failure(f) }
                counters.logouts += 1
                logger.notice("session logout \(client)")
                return .success(())
            }
        }
    }

    /// Sessions whose time is up: out of the store, their connmarks cleared. Run it once a
    /// second.
    public func expire() {
        lock.withLock {
            var next = machine
            let actions = next.expire(now: clock())
            guard !actions.isEmpty else { return }
            let n = actions.filter { if case .storeDelete = $0 { true } else { false } }.count
            // Expiry is not held up by the kernel: without the session sets (rules not
            // loaded) the records still end; the failure is logged and counted.
            if perform(actions, next: next, kernelRequired: false) == nil {
                counters.expiries += n
                logger.info("\(n) session(s) expired")
            }
        }
    }

    /// Start-up, SIGHUP: every stored session under `policy`, pruned, written back to the
    /// kernel maps and connmarks.
    public func reapply(_ policy: PolicyConfig) -> Result<Int, Failure> {
        lock.withLock {
            let stored: [Session]
            do throws(SessionStoreError) { stored = try store.load() } catch { counters.applyFailures += 1; return .failure(.store(error)) }
            let before = (self.policy, machine)
            self.policy = policy
            var next = machine
            let actions = next.reapply(stored: stored, rules: policy.sessionRules, now: clock())
            let rows = Dictionary(stored.map { ($0.client, $0) }, uniquingKeysWith: { a, _ in a })
            switch perform(actions, next: next, previousRows: rows) {
            case nil:
                return .success(machine.sessions.count)
            case .kernel(let why)?:
                // The database stays the truth (it was put back as loaded): keep its sessions,
                // so that `markdns rules --apply`, which writes them into the kernel, makes
                // both agree, and expiries still clear connmarks.
                machine = next
                return .failure(.kernel(why))
            case let f?:
                (self.policy, machine) = before
                return .failure(f)
            }
        }
    }

    public func live() -> [Session] { lock.withLock { machine.live(at: clock()) } }
    public func session(of c: SessionClient) -> Session? { lock.withLock { machine.session(of: c, at: clock()) } }
    public var snapshot: Counters { lock.withLock { counters } }
    public var currentPolicy: PolicyConfig { lock.withLock { policy } }

    /// Performs `actions` (already applied to `next`); on success `next` becomes the machine.
    /// Called with the lock held.
    /// `previousRows`: the store's rows before the actions (default: the machine's sessions),
    /// put back when nft fails.
    /// `kernelRequired` false: an nft failure is logged and counted, and the rest goes on.
    private func perform(_ actions: [SessionAction], next: SessionStateMachine,
                         previousRows: [SessionClient: Session]? = nil, kernelRequired: Bool = true) -> Failure? {
        let previous = previousRows ?? machine.sessions
        do throws(SessionStoreError) {
            try store.perform(actions)
        } catch {
            counters.applyFailures += 1
            logger.error("session not applied: \(error)")
            return .store(error)
        }
        let (sets, maps) = Self.declaredMaps(policy)
        let script = SessionMaps.script(actions, sets: sets, maps: maps)
        if !script.isEmpty {
            do {
                try kernel.nft(script)
            } catch where !kernelRequired {
                counters.applyFailures += 1
                logger.warning("session sets not updated: nft failed: \(error)")
            } catch {
                counters.applyFailures += 1
                // Put the store back: the rows the actions touched, as they were.
                let touched = Set(actions.compactMap { a -> SessionClient? in
                    switch a {
                    case .storePut(let s): return s.client
                    case .storeDelete(let c): return c
                    default: return nil
                    }
                })
                let restore = touched.compactMap { previous[$0] }
                let remove = touched.filter { previous[$0] == nil }
                do { try store.commit(put: restore, delete: Array(remove)) } catch {
                    logger.error("session store not restored after an nft failure: \(error)")
                }
                logger.error("session not applied: nft failed: \(error)")
                return .kernel("nft failed: \(error) (is `markdns rules --apply` loaded?)")
            }
        }
        machine = next
        for a in actions {
            switch a {
            case let .connmark(client, mark, mask):
                do {
                    counters.connmarksUpdated += try kernel.setConnmark(client, mark: mark, mask: mask)
                } catch {
                    counters.applyFailures += 1
                    logger.warning("connmarks of \(client) not updated: \(error)")
                }
            case let .markChanged(client, mark):
                markChanged(client, mark)
            default:
                continue
            }
        }
        return nil
    }

    /// The session sets (single-value marks) and maps (range marks) `markdns rules` declares.
    public static func declaredMaps(_ policy: PolicyConfig) -> (sets: [String], maps: [String]) {
        var sets: [String] = [], maps: [String] = []
        for m in policy.marks where m.sessions {
            for f in SessionClient.Family.allCases {
                let n = SessionMaps.name(mark: m.name, family: f)
                if m.range == nil { sets.append(n) } else { maps.append(n) }
            }
        }
        return (sets, maps)
    }
}
