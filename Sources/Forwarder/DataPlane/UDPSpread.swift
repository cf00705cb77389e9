import Logging
import MarkCore
import NIOCore

/// The shell of `LoopSpread`: on the first loop, at most once a second and only while that
/// loop reads client datagrams (an idle forwarder runs nothing), it samples the CPU time of
/// every data-plane thread and, when the pure core says so, re-attaches the steering program
/// of each UDP listener group: all clients to the first loop, or spread by address over all
/// of them (`ClientSteering`). Queries in flight are unaffected: each loop keeps answering
/// its own from its own sockets.
final class UDPSpread {
    private var state: LoopSpread
    private let loops: [DataPlaneLoop]
    /// One listener of each SO_REUSEPORT group (any member sets the group's program).
    private let groups: [(fd: Int32, ipv6: Bool)]
    private let logger: Logger
    private var sampledAt: UInt64 = 0
    private var cpuAt: [UInt64]
    static let interval: UInt64 = 1_000_000_000

    init(loops: [DataPlaneLoop], groups: [(fd: Int32, ipv6: Bool)], logger: Logger) {
        self.loops = loops
        self.groups = groups
        self.logger = logger
        state = LoopSpread(loops: loops.count)
        cpuAt = loops.map { $0.cpuNanoseconds() }
        sampledAt = NIODeadline.now().uptimeNanoseconds
        steer(to: state.active)
    }

    /// After a batch of client datagrams on the first loop.
    func tick() {
        let now = NIODeadline.now().uptimeNanoseconds
        let elapsed = now &- sampledAt
        guard elapsed >= Self.interval else { return }
        let cpu = loops.map { $0.cpuNanoseconds() }
        // A long quiet gap is one interval of (almost) no load, not a measure of the present.
        let busy = zip(cpu, cpuAt).map { Double($0 &- $1) / Double(elapsed) }
        sampledAt = now
        cpuAt = cpu
        if let active = state.observe(busy: busy) {
            steer(to: active)
            let shares = busy.map { "\(Int(($0 * 100).rounded()))%" }.joined(separator: " ")
            logger.info("UDP clients now spread over \(active) of \(loops.count) event loop(s) (loop CPU \(shares))")
        }
    }

    private func steer(to active: Int) {
        for g in groups { ClientSteering.steer(fd: g.fd, ipv6: g.ipv6, loops: active, logger: logger) }
    }
}
