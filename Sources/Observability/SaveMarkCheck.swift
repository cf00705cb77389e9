import Conntrack
import Dispatch
import Forwarder
import Logging
import MarkCore
import NIOConcurrencyHelpers

/// Is the OUTPUT `save-mark` rule for our own flows in place? Without it the mark
/// markdns puts on an upstream socket (SO_MARK) never reaches the upstream flow's
/// connmark, so answers are not restored to it and accounting loses DNS.
///
/// Checked once, from the outcome rather than from the ruleset: after the first answered
/// upstream UDP query sent with a non-zero SO_MARK, that flow's conntrack entry is looked
/// up by its tuple (off the DNS loop, on a socket of its own) and its connmark compared.
public final class SaveMarkCheck: @unchecked Sendable {
    public enum Verdict: Equatable, Sendable {
        case present(UInt32)
        case absent(socketMark: UInt32, connmark: UInt32)
        case unknown(String)
    }

    private let lock = NIOLock()
    private var started = false
    private let logger: Logger
    private let queue = DispatchQueue(label: "markdns.savemark")
    private let report: @Sendable (Verdict) -> Void

    public init(logger: Logger, report: @escaping @Sendable (Verdict) -> Void = { _ in }) {
        self.logger = logger
        self.report = report
    }

    func consider(_ a: UpstreamAttempt) {
        guard a.outcome == .answered, a.mark != 0, a.proto == .udp, let local = a.local else { return }
        let first = lock.withLock {
            defer { started = true }
            return !started
        }
        guard first else { return }
        // Our flow's original tuple is local -> upstream; the lookup takes the reply tuple
        // (upstream -> local), which `FlowTuple(client: local, local: upstream)` gives.
        let flow = FlowTuple(proto: .udp, client: local, local: a.upstream)
        queue.async { [logger, report] in
            let verdict = Self.check(flow, socketMark: a.mark)
            switch verdict {
            case .present(let m):
                logger.info("save-mark for our own flows: present (upstream flow \(local) -> \(a.upstream) has connmark 0x\(String(m, radix: 16)))")
            case .absent(let s, let c):
                logger.warning("save-mark for our own flows seems absent: upstream flow \(local) -> \(a.upstream) was sent with SO_MARK 0x\(String(s, radix: 16)) but has connmark 0x\(String(c, radix: 16)); answers will not be restored to the mark and accounting misses DNS (load the output chain of conf/nftables.conf)")
            case .unknown(let why):
                logger.notice("save-mark check for our own flows: \(why)")
            }
            report(verdict)
        }
    }

    static func check(_ flow: FlowTuple, socketMark: UInt32) -> Verdict {
        let source: NetlinkMarkSource
        do { source = try NetlinkMarkSource() } catch { return .unknown("\(error)") }
        switch source.lookup(flow) {
        case .found(let m) where m == 0 || m & socketMark != socketMark:
            return .absent(socketMark: socketMark, connmark: m)
        case .found(let m): return .present(m)
        case .notFound: return .unknown("no conntrack entry for upstream flow \(flow.client) -> \(flow.local)")
        case .failed(let e): return .unknown("lookup failed: \(errnoDescription(e))")
        }
    }
}
