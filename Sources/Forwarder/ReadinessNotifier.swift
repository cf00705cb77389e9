import CBatchIO
import Logging
import NIOConcurrencyHelpers
import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// Tells an event loop when raw sockets (ours, not NIO channels) have something to read.
///
/// NIO offers no way to watch a descriptor it does not own, and its datagram channel drops
/// the control messages we need (SO_RCVMARK's packet mark), so the UDP sockets of the fast
/// path are plain descriptors. A thread of our own waits on them with epoll, one-shot: a
/// ready descriptor is reported once (`onReady` runs on the loop with its token) and stays
/// quiet until the loop has drained it and calls `rearm`. Under load a wakeup covers a batch
/// of datagrams; the loop does all reads, writes and state changes itself.
final class ReadinessNotifier: @unchecked Sendable {
    private let epollFD: Int32
    private let stopFD: Int32
    private let loop: any EventLoop
    private let onReady: @Sendable ([Int]) -> Void
    private let logger: Logger
    private let thread = NIOLockedValueBox<Thread?>(nil)
    private static let stopToken: UInt64 = .max

    init(loop: any EventLoop, logger: Logger, onReady: @escaping @Sendable ([Int]) -> Void) throws {
        epollFD = markdns_epoll_create()
        guard epollFD >= 0 else { throw IOError(errnoCode: errno, reason: "epoll_create1") }
        stopFD = markdns_eventfd()
        guard stopFD >= 0 else {
            let e = errno
            close(epollFD)
            throw IOError(errnoCode: e, reason: "eventfd")
        }
        self.loop = loop
        self.logger = logger
        self.onReady = onReady
        _ = markdns_epoll_watch_always(epollFD, stopFD, Self.stopToken)
    }

    /// Starts watching `fd` (reported as `token`, which must not be `Int.max`).
    func watch(_ fd: Int32, token: Int) throws {
        guard markdns_epoll_watch(epollFD, fd, UInt64(token), 1) == 0 else {
            throw IOError(errnoCode: errno, reason: "epoll_ctl(ADD)")
        }
    }

    /// Reports `fd` again when it next has something to read (after the loop drained it).
    func rearm(_ fd: Int32, token: Int) {
        _ = markdns_epoll_watch(epollFD, fd, UInt64(token), 0)
    }

    /// Stops watching `fd` (before it is closed).
    func unwatch(_ fd: Int32) {
        _ = markdns_epoll_unwatch(epollFD, fd)
    }

    func start(name: String) throws {
        let t = Thread(name: name) { [self] in run() }
        try t.start()
        thread.withLockedValue { $0 = t }
    }

    private func run() {
        var tokens = [UInt64](repeating: 0, count: 64)
        var ready: [Int] = []
        while true {
            let n = tokens.withUnsafeMutableBufferPointer { markdns_epoll_wait(epollFD, $0.baseAddress, 64) }
            if n < 0 {
                let e = errno
                if e == EINTR { continue }  // glibc's setxid signal when root is dropped
                // Cannot happen with a valid epoll descriptor; the UDP path of this loop
                // would stop, so say so loudly.
                logger.critical("epoll_wait failed: \(errnoText(e)); UDP on this event loop stops")
                return
            }
            ready.removeAll(keepingCapacity: true)
            for i in 0..<Int(n) {
                let token = tokens[i]
                if token == Self.stopToken { return }
                ready.append(Int(token))
            }
            if !ready.isEmpty {
                let batch = ready
                let onReady = self.onReady
                loop.execute { onReady(batch) }
            }
        }
    }

    /// Ends the thread and closes the epoll descriptor (the watched ones are the caller's).
    func stop() {
        var one: UInt64 = 1
        _ = write(stopFD, &one, 8)
        let t = thread.withLockedValue { t -> Thread? in defer { t = nil }; return t }
        t?.join()
        close(stopFD)
        close(epollFD)
    }
}

/// A joinable thread (Foundation is not used by the daemon).
final class Thread: @unchecked Sendable {
    private var handle = pthread_t()
    private let body: () -> Void
    private let name: String

    init(name: String, _ body: @escaping () -> Void) {
        self.name = name
        self.body = body
    }

    func start() throws {
        let box = Unmanaged.passRetained(self)
        let rc = pthread_create(&handle, nil, { raw in
            let me = Unmanaged<Thread>.fromOpaque(raw!).takeRetainedValue()
            markdns_set_thread_name(String(me.name.prefix(15)))
            me.body()
            return nil
        }, box.toOpaque())
        if rc != 0 {
            box.release()
            throw IOError(errnoCode: rc, reason: "pthread_create")
        }
    }

    func join() {
        pthread_join(handle, nil)
    }
}
