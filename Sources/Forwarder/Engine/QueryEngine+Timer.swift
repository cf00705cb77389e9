import NIOCore
import QueryCore

/// One timer per loop for every upstream attempt: the core keeps the deadlines, the
/// timer is set to the earliest one and, when it fires, every attempt whose time is up
/// fails over. An idle loop has no timer at all.
extension QueryEngine: NIOScheduledCallbackHandler {
    /// Makes sure the timer fires at `at` at the latest.
    func armTimer(at: Double) {
        timer?.cancel()
        timer = nil
        timerAt = at
        do {
            timer = try loop.assumeIsolated().scheduleCallback(at: Monotonic.deadline(at), handler: self)
        } catch {
            // The loop is shutting down: no attempt can time out any more, so fail every
            // one now rather than leave its clients waiting for ever.
            timerAt = .infinity
            logger.warning("cannot schedule the attempt timer: \(error); failing the attempts in flight")
            expireAttempts(upTo: .infinity)
        }
    }

    func handleScheduledCallback(eventLoop: some EventLoop) {
        timer = nil
        timerAt = .infinity
        expireAttempts(upTo: now)
        if let next = core.nextDeadline(), next < timerAt { armTimer(at: next) }
    }

    private func expireAttempts(upTo time: Double) {
        while let ref = core.expiredAttempt(now: time) { fail(ref, .timeout) }
    }
}
