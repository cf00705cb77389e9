import CBatchIO
import Dispatch
import HeapModule
import Logging
import NIOConcurrencyHelpers
import NIOCore
import Synchronization
import Threads

#if canImport(Glibc)
import Glibc
#endif

/// One data-plane thread: it waits on its own epoll set, and the thread that learns a UDP
/// socket is readable is the thread that reads it, decides and answers. No hop to another
/// thread on the UDP path: a query costs one wake-up, not two.
///
/// It is an `EventLoop`, so the engine keeps NIO's vocabulary (`execute`, promises,
/// `NIOLoopBound`, scheduled tasks and callbacks) and the NIO threads that own TCP
/// connections reach it like any other loop. Its timers are a deadline heap that sets the
/// `epoll_wait` timeout; an idle loop sleeps until its next timer, with nothing spinning.
///
/// Work from other threads (`execute` off the loop) goes through a locked queue and wakes
/// the thread with an eventfd only when that queue was empty; an atomic flag tells the loop
/// whether to take the lock at all, so a tick with no remote work takes none. Work from the
/// loop itself costs no syscall and runs before the next wait; the end-of-tick flush is a
/// hook registered once (`onTickEnd`) and requested with a flag (`requestTickEnd`): no
/// closure, allocation or job per tick.
///
/// Once the thread has ended (shutdown), a job still submitted runs at once on the
/// submitting thread, one at a time, as if on the loop: a future completed there, or a
/// `submit(...).wait()` from a metrics thread, must not wait for ever.
final class DataPlaneLoop: EventLoop, @unchecked Sendable {
    typealias Job = @Sendable () -> Void
    /// Called on the loop with the token of each descriptor that is readable (level
    /// triggered: a descriptor left with data is reported again by the next wait).
    typealias ReadyHandler = (Int) -> Void

    let name: String
    private let logger: Logger
    let epollFD: Int32
    private let wakeFD: Int32
    private static let wakeToken = UInt64.max

    /// The loop's own thread, set by that thread before `start` returns and never again.
    private var thread = pthread_t()
    private var started = false
    /// After the thread ended: set, and the thread running a job in its stead (0: none).
    let ended = Atomic<Bool>(false)
    private let afterlifeRunner = Atomic<UInt>(0)
    private let afterlife = NIOLock()
    /// Set (under the lock) when `shared` holds jobs or a state change for the loop.
    private let remotePending = Atomic<Bool>(false)

    // Touched by the loop thread only.
    private var jobs: [Job] = []
    private var timers = Heap<TimerKey>()
    private var timerJobs: [UInt64: TimerJob] = [:]
    private var readyHandler: ReadyHandler?
    private var tickEndHandler: (() -> Void)?
    private var tickEndRequested = false
    /// The owner's one deadline (uptime ns, `.max`: none) and what runs when it is due:
    /// the engine's attempt timer, set again at every query at router loads, costs no
    /// scheduled task, promise or heap entry.
    private var ownerDeadline = UInt64.max
    private var deadlineHandler: (() -> Void)?
    /// Stream sockets the loop drives for their own channels (`DataPlaneLoop+Streams`), by
    /// token, and those that asked to write at the end of this tick.
    var streamSources: [UInt64: any LoopStreamSource] = [:]
    var nextStreamToken = DataPlaneLoop.firstStreamToken
    var streamFlushes: [any LoopStreamSource] = []
    static let firstStreamToken: UInt64 = 1 << 62

    private enum State { case running, stopping, ended }
    private struct Shared {
        var jobs: [Job] = []
        var state = State.running
        var nextTimerID: UInt64 = 0
        var onEnd: [(DispatchQueue, @Sendable ((any Error)?) -> Void)] = []
    }
    private let shared = NIOLockedValueBox(Shared())

    /// A scheduled task, and how to fail its promise if the loop ends first.
    private struct TimerJob {
        var run: Job
        var abandon: Job
    }

    struct TimerKey: Comparable {
        var deadline: UInt64
        var id: UInt64
        static func < (a: TimerKey, b: TimerKey) -> Bool {
            (a.deadline, a.id) < (b.deadline, b.id)
        }
    }

    init(name: String, logger: Logger) throws {
        epollFD = markdns_epoll_create()
        guard epollFD >= 0 else { throw IOError(errnoCode: errno, reason: "epoll_create1") }
        wakeFD = markdns_eventfd()
        guard wakeFD >= 0 else {
            let e = errno
            Glibc.close(epollFD)
            throw IOError(errnoCode: e, reason: "eventfd")
        }
        self.name = name
        self.logger = logger
        _ = markdns_epoll_watch(epollFD, wakeFD, Self.wakeToken)
    }

    /// Starts the thread (named `name`, as the kernel shows it) and returns once it runs.
    func start() {
        let running = DispatchSemaphore(value: 0)
        NamedThread.start(name: name) { [self] in
            thread = pthread_self()
            started = true
            running.signal()
            run()
        }
        running.wait()
    }

    /// CPU time the loop's thread has used, in nanoseconds (any thread may ask; 0 before
    /// the thread runs).
    func cpuNanoseconds() -> UInt64 {
        guard started else { return 0 }
        var clock = clockid_t()
        guard pthread_getcpuclockid(thread, &clock) == 0 else { return 0 }
        var ts = timespec()
        guard clock_gettime(clock, &ts) == 0 else { return 0 }
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    /// Who reads the loop's readable descriptors (set on the loop, before the first watch).
    func onReady(_ handler: @escaping ReadyHandler) {
        preconditionInEventLoop()
        readyHandler = handler
    }

    /// What runs once at the end of a tick in which `requestTickEnd` was called (the
    /// batched writes). Set on the loop, once.
    func onTickEnd(_ handler: @escaping () -> Void) {
        preconditionInEventLoop()
        tickEndHandler = handler
    }

    /// Makes the tick-end hook run before the loop next waits. On the loop.
    @inline(__always)
    func requestTickEnd() {
        tickEndRequested = true
    }

    /// What runs on the loop when the deadline of `setDeadline` is due. Set on the loop, once.
    func onDeadline(_ handler: @escaping () -> Void) {
        preconditionInEventLoop()
        deadlineHandler = handler
    }

    /// Sets the owner's one deadline (uptime nanoseconds, as `NIODeadline`), replacing the
    /// one before; `.max` clears it. The handler runs once when it is due. On the loop.
    /// False once the loop has ended: no deadline will ever be due.
    @inline(__always)
    func setDeadline(_ uptimeNanoseconds: UInt64) -> Bool {
        ownerDeadline = uptimeNanoseconds
        return !ended.load(ordering: .relaxed)
    }

    /// Starts watching `fd`, reported as `token` (not `UInt64.max`). On the loop.
    func watch(_ fd: Int32, token: Int) throws {
        guard markdns_epoll_watch(epollFD, fd, UInt64(token)) == 0 else {
            throw IOError(errnoCode: errno, reason: "epoll_ctl(ADD)")
        }
    }

    /// Stops watching `fd` (closing it does too). On the loop.
    func unwatch(_ fd: Int32) {
        _ = markdns_epoll_unwatch(epollFD, fd)
    }

    // MARK: - EventLoop

    var inEventLoop: Bool {
        guard started else { return false }
        // (A thread id is reused once its thread has ended: compared only while it runs.)
        if !ended.load(ordering: .acquiring) { return pthread_equal(thread, pthread_self()) != 0 }
        return afterlifeRunner.load(ordering: .relaxed) == UInt(pthread_self())
    }

    func execute(_ task: @escaping @Sendable () -> Void) {
        if inEventLoop {
            jobs.append(task)
            return
        }
        if ended.load(ordering: .acquiring) {
            runAfterEnd(task)
            return
        }
        let accepted = shared.withLockedValue { s -> Bool in
            guard s.state != .ended else { return false }
            s.jobs.append(task)
            if s.jobs.count == 1 {
                remotePending.store(true, ordering: .releasing)
                // First job since the loop last took them: wake it (under the lock, so the
                // descriptor cannot be closed by the ending thread in between).
                var one: UInt64 = 1
                _ = write(wakeFD, &one, 8)
            }
            return true
        }
        if !accepted { runAfterEnd(task) }
    }

    /// Runs `task` on the calling thread, the loop's stand-in while it runs (the loop has
    /// ended), with whatever it queues.
    private func runAfterEnd(_ task: @escaping Job) {
        afterlife.withLock {
            afterlifeRunner.store(UInt(pthread_self()), ordering: .relaxed)
            jobs.append(task)
            while !jobs.isEmpty || tickEndRequested { runJobs(); runTickEnd() }
            afterlifeRunner.store(0, ordering: .relaxed)
        }
    }

    /// Like the default, but a loop that has ended fails the future instead of running
    /// the task.
    func submit<T>(_ task: @escaping @Sendable () throws -> T) -> EventLoopFuture<T> {
        if ended.load(ordering: .acquiring) { return makeFailedFuture(EventLoopError.shutdown) }
        let promise = makePromise(of: T.self)
        execute {
            do { promise.assumeIsolatedUnsafeUnchecked().succeed(try task()) } catch { promise.fail(error) }
        }
        return promise.futureResult
    }

    func scheduleTask<T>(deadline: NIODeadline, _ task: @escaping @Sendable () throws -> T) -> Scheduled<T> {
        let promise = makePromise(of: T.self)
        if ended.load(ordering: .acquiring) {
            promise.fail(EventLoopError.shutdown)
            return Scheduled(promise: promise, cancellationTask: {})
        }
        let id = shared.withLockedValue { s -> UInt64 in
            s.nextTimerID += 1
            return s.nextTimerID
        }
        let job = TimerJob(run: {
            do { promise.assumeIsolatedUnsafeUnchecked().succeed(try task()) } catch { promise.fail(error) }
        }, abandon: { promise.fail(EventLoopError.shutdown) })
        let key = TimerKey(deadline: deadline.uptimeNanoseconds, id: id)
        if inEventLoop { insertTimer(key, job) } else { execute { self.insertTimer(key, job) } }
        return Scheduled(promise: promise, cancellationTask: {
            if self.inEventLoop { self.timerJobs[id] = nil } else { self.execute { self.timerJobs[id] = nil } }
        })
    }

    func scheduleTask<T>(in delay: TimeAmount, _ task: @escaping @Sendable () throws -> T) -> Scheduled<T> {
        scheduleTask(deadline: .now() + delay, task)
    }

    func shutdownGracefully(queue: DispatchQueue, _ callback: @escaping @Sendable ((any Error)?) -> Void) {
        let endedAlready = shared.withLockedValue { s -> Bool in
            if s.state == .ended { return true }
            s.onEnd.append((queue, callback))
            if s.state == .running {
                s.state = .stopping
                remotePending.store(true, ordering: .releasing)
                var one: UInt64 = 1
                _ = write(wakeFD, &one, 8)
            }
            return false
        }
        if endedAlready { queue.async { callback(nil) } }
    }

    // MARK: - The loop

    private func insertTimer(_ key: TimerKey, _ job: TimerJob) {
        timers.insert(key)
        timerJobs[key.id] = job
    }

    private func run() {
        var tokens = [UInt64](repeating: 0, count: 64)
        var flags = [UInt8](repeating: 0, count: 64)
        var stopping = false
        while !stopping {
            if remotePending.load(ordering: .acquiring) {
                shared.withLockedValue { s in
                    remotePending.store(false, ordering: .relaxed)
                    if !s.jobs.isEmpty {
                        jobs.append(contentsOf: s.jobs)
                        s.jobs.removeAll(keepingCapacity: true)
                    }
                    stopping = s.state != .running
                }
            }
            runJobs()
            let timeout = runDueTimers()
            runTickEnd()
            if stopping { break }
            let wait = jobs.isEmpty && !tickEndRequested ? timeout : 0
            let n = tokens.withUnsafeMutableBufferPointer { t in
                flags.withUnsafeMutableBufferPointer { markdns_epoll_wait(epollFD, t.baseAddress, $0.baseAddress, 64, wait) }
            }
            if n < 0 {
                let e = errno
                if e == EINTR { continue }  // glibc's setxid signal when root is dropped
                // Cannot happen with a valid epoll descriptor: the UDP path of this loop
                // would stop, so say so loudly.
                logger.critical("\(name): epoll_wait failed: \(errnoText(e)); this loop stops")
                break
            }
            for i in 0..<Int(n) {
                if tokens[i] == Self.wakeToken {
                    var count: UInt64 = 0
                    _ = read(wakeFD, &count, 8)
                } else if tokens[i] >= Self.firstStreamToken {
                    streamSources[tokens[i]]?.streamReady(flags[i])
                } else {
                    readyHandler?(Int(tokens[i]))
                }
            }
        }
        finish()
    }

    /// Runs the jobs queued so far; those they queue run after the next wait (timeout 0),
    /// so a job that keeps requeueing itself cannot starve the sockets.
    private func runJobs() {
        guard !jobs.isEmpty else { return }
        let batch = jobs
        jobs.removeAll(keepingCapacity: true)
        for job in batch { job() }
    }

    private func runTickEnd() {
        guard tickEndRequested else { return }
        tickEndRequested = false
        tickEndHandler?()
        if !streamFlushes.isEmpty {
            let due = streamFlushes
            streamFlushes.removeAll(keepingCapacity: true)
            for source in due { source.streamTickEnd() }
        }
    }

    /// Runs the owner's deadline and every timer that is due; returns the `epoll_wait`
    /// timeout until the next one (milliseconds rounded up, so the loop never wakes just
    /// before it; -1: none). One clock read per tick and no lookup while nothing is due: a
    /// cancelled timer leaves the heap when its deadline comes (one wake-up at most).
    private func runDueTimers() -> Int32 {
        guard ownerDeadline != .max || !timers.isEmpty else { return -1 }
        let now = NIODeadline.now().uptimeNanoseconds
        if ownerDeadline <= now {
            ownerDeadline = .max
            deadlineHandler?()  // may set the next one
        }
        while let first = timers.min, first.deadline <= now {
            _ = timers.removeMin()
            timerJobs.removeValue(forKey: first.id)?.run()  // nil: cancelled
        }
        let next = min(ownerDeadline, timers.min?.deadline ?? .max)
        if next == .max { return -1 }
        if next <= now { return 0 }
        return Int32(min((next - now + 999_999) / 1_000_000, UInt64(Int32.max)))
    }

    /// The loop has stopped: what was queued runs once more, timers are cancelled, the
    /// descriptors close and the shutdown callbacks run.
    private func finish() {
        let (remote, callbacks) = shared.withLockedValue { s in
            s.state = .ended
            defer { s.jobs = []; s.onEnd = [] }
            return (s.jobs, s.onEnd)
        }
        afterlife.withLock {
            jobs.append(contentsOf: remote)
            while !jobs.isEmpty || tickEndRequested { runJobs(); runTickEnd() }
            // Timers still pending fail their promises (as NIO's loops do at shutdown).
            let pending = timerJobs.values
            timerJobs.removeAll()
            timers = Heap()
            for job in pending { job.abandon() }
            Glibc.close(wakeFD)
            Glibc.close(epollFD)
            // From here on other threads run what they submit themselves.
            ended.store(true, ordering: .releasing)
        }
        for (queue, callback) in callbacks { queue.async { callback(nil) } }
    }
}
