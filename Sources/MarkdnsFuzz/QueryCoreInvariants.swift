import DNSWire
import MarkCore
import MarkPolicy
import QueryCore

/// The input through the query state machine: as a client's query (intake, arrival) and,
/// when it was forwarded, as the upstream's answer to it, then as a timeout. Whatever the
/// bytes, the client gets exactly one answer and nothing stays in flight.
enum QueryCoreInvariants {
    static let policy = PolicyEngine(PolicyConfig(
        conntrack: ConntrackConfig(onMissing: .unmarked),
        pools: [Pool(name: "default", servers: [Endpoint(address: .v4(127, 0, 0, 53), port: 53),
                                               Endpoint(address: .v4(127, 0, 0, 54), port: 53)])]))

    static func check(_ raw: UnsafeRawBufferPointer) {
        var core = QueryStateMachine(policy: policy, limits: QueryLimits())
        guard case .query(let message) = core.intake(raw, proto: .udp) else { return }
        let q = ArrivingQuery(message: message, proto: .udp, lookup: .found(0x10),
                              identity: ClientIdentity(address: .v4(192, 0, 2, 1)), handle: 7)
        guard case .start(let start) = core.queryArrived(q, bytes: raw, now: 10).action else { return }
        require(start.query.count <= raw.count, "the upstream copy grew")
        var answers = 0
        func count(_ r: AttemptResult) {
            switch r.action {
            case .ignored, .retry: return
            case .finish(let f):
                require(f.deliveries.count == 1 && f.deliveries[0].handle == 7, "not one delivery to the client")
                answers += 1
            }
        }
        // The input again as the upstream's answer (with its own ID as the one sent).
        let id = raw.count >= 2 ? UInt16(raw[0]) << 8 | UInt16(raw[1]) : 0
        count(core.answerArrived(start.ref, expectedID: id, bytes: raw, now: 10.1))
        // Whatever that did, the deadlines end the rest: retries time out in turn.
        var now = 10.1
        while core.transactionCount > 0 && now < 100 {
            now += 2
            while let ref = core.expiredAttempt(now: now) {
                count(core.attemptFailed(ref, outcome: .timeout, now: now))
            }
        }
        require(answers == 1, "answered \(answers) times")
        require(core.inFlight == 0 && core.transactionCount == 0, "left in flight")
    }
}
