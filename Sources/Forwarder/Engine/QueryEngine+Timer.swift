import NIOCore
import QueryCore

/// One timer per loop for every upstream attempt: the core keeps the deadlines, the
/// loop's one owner deadline (`DataPlaneLoop.setDeadline`) is set to the earliest one and,
/// when it is due, every attempt whose time is up fails over. An idle loop has no deadline
/// at all. Setting it is a store: no scheduled task per query.
extension QueryEngine {
    /// Makes sure the timer fires at `at` at the latest.
    func armTimer(at: Double) {
        timerAt = at
        guard loop.setDeadline(Monotonic.deadline(at).uptimeNanoseconds) else {
            // The loop has ended: no attempt can time out any more, so fail every one now
            // rather than leave its clients waiting for ever.
            timerAt = .infinity
            logger.warning("cannot set the attempt timer: the loop has ended; failing the attempts in flight")
            expireAttempts(upTo: .infinity)
            return
        }
    }

    /// The loop's deadline is due (the handler given to `DataPlaneLoop.onDeadline`).
    func timerFired() {
        timerAt = .infinity
        expireAttempts(upTo: now)
        if let next = core.nextDeadline(), next < timerAt { armTimer(at: next) }
    }

    private func expireAttempts(upTo time: Double) {
        while let ref = core.expiredAttempt(now: time) { fail(ref, .timeout) }
    }
}
