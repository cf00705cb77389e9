import MarkStats
import Threads

#if canImport(Glibc)
import Glibc
#endif

/// The query log (`--query-log FILE`): JSON lines written by a thread of its own.
///
/// The DNS loop only appends an event to a bounded queue under a lock. When the queue is
/// full (the disk, or a FIFO's reader, cannot keep up) the event is dropped and counted:
/// queries are never slowed by the log. `reopen()` (SIGUSR1) makes the writer close and
/// reopen the file before its next write, for logrotate.
public final class QueryLogWriter: @unchecked Sendable {
    public let path: String
    public let capacity: Int
    private let condition = Condition()
    private var queue: [QueryEvent] = []
    private var droppedCount = 0
    private var writtenCount = 0
    private var reopenRequested = false
    private var stopping = false
    private var stopped = false
    private var onError: @Sendable (String) -> Void
    /// Lines written together at most `flushInterval` seconds after the first is queued.
    private let batch: Int
    private let flushInterval: Double = 0.05

    /// Writer-thread state.
    private var fd: Int32 = -1
    private var lastError: String?

    public init(path: String, capacity: Int, onError: @escaping @Sendable (String) -> Void) {
        self.path = path
        self.capacity = max(1, capacity)
        self.batch = min(256, max(1, capacity / 2))
        self.onError = onError
        queue.reserveCapacity(self.capacity)
        NamedThread.start(name: "markdns-querylog") { [self] in run() }
    }

    /// Queues one line; never blocks beyond the lock.
    public func enqueue(_ event: QueryEvent) {
        condition.lock()
        if queue.count >= capacity || stopping {
            droppedCount += 1
        } else {
            queue.append(event)
            // The writer wakes by itself every `flushInterval`; a full batch wakes it early.
            // (A wake-up per line would cost a futex wake and a write per query.)
            if queue.count == batch { condition.signal() }
        }
        condition.unlock()
    }

    public func reopen() {
        condition.lock()
        reopenRequested = true
        condition.signal()
        condition.unlock()
    }

    public var dropped: Int { condition.withLock { droppedCount } }
    public var written: Int { condition.withLock { writtenCount } }

    /// Writes what is queued and stops the thread; gives up after `timeout` seconds (a
    /// writer stuck on a FIFO nobody reads must not hold up shutdown).
    public func stop(timeout: Double = 2) {
        condition.lock()
        stopping = true
        condition.broadcast()
        let deadline = Condition.now() + timeout
        while !stopped, condition.wait(until: deadline) {}
        condition.unlock()
    }

    private func run() {
        while true {
            condition.lock()
            while queue.count < batch && !reopenRequested && !stopping {
                if !condition.wait(until: Condition.now() + flushInterval) && !queue.isEmpty { break }
            }
            let batch = queue
            queue.removeAll(keepingCapacity: true)
            let reopening = reopenRequested
            reopenRequested = false
            let last = stopping && batch.isEmpty
            condition.unlock()

            if reopening, fd >= 0 { close(fd); fd = -1 }
            if last { break }
            if batch.isEmpty { continue }
            let ok = write(batch.map(\.jsonLine).joined())
            condition.withLock {
                if ok { writtenCount += batch.count } else { droppedCount += batch.count }
            }
        }
        if fd >= 0 { close(fd); fd = -1 }
        condition.withLock {
            stopped = true
            condition.broadcast()
        }
    }

    /// Opens the file if needed and writes `text` whole (blocking: this thread only).
    private func write(_ text: String) -> Bool {
        if fd < 0 {
            fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
            if fd < 0 {
                report("cannot open query log \(path): \(String(cString: strerror(errno))); dropping lines")
                return false
            }
            lastError = nil
        }
        var bytes = Array(text.utf8)
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeMutableBytes { Glibc.write(fd, $0.baseAddress! + done, $0.count - done) }
            if n < 0 {
                if errno == EINTR { continue }
                report("cannot write query log \(path): \(String(cString: strerror(errno))); reopening")
                close(fd); fd = -1
                return false
            }
            done += n
        }
        return true
    }

    /// Reports an error once until the log works again.
    private func report(_ message: String) {
        guard lastError != message else { return }
        lastError = message
        onError(message)
    }
}
