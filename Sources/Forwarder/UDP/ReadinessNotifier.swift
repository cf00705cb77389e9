import CBatchIO
import Logging
import NIOConcurrencyHelpers
import NIOCore
import Threads

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
    /// Whoever comes second of "stop requested" and "thread ended" closes the descriptors,
    /// so the epoll descriptor is never closed under a running `epoll_wait`.
    private let life = NIOLockedValueBox((stopRequested: false, ended: false))
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

    func start(name: String) {
        // Named from the thread itself so the kernel's name changes too (it is inherited
        // from the event loop thread that starts it, and would pass for one).
        NamedThread.start(name: name) { [self] in
            run()
            let close = life.withLockedValue { $0.ended = true; return $0.stopRequested }
            if close { closeDescriptors() }
        }
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

    /// Ends the thread; the epoll descriptor is closed once it has (the watched ones are
    /// the caller's). No `rearm` or `watch` after this.
    func stop() {
        let ended = life.withLockedValue { $0.stopRequested = true; return $0.ended }
        if ended {
            closeDescriptors()
        } else {
            var one: UInt64 = 1
            _ = write(stopFD, &one, 8)
        }
    }

    private func closeDescriptors() {
        close(stopFD)
        close(epollFD)
    }
}
