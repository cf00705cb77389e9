import Glibc
import MarkCore
import QueryCore
import Testing
@testable import Forwarder

/// The upstream send queue on real loopback sockets (no root needed): stale entries are
/// not sent, and a refused send may refill the queue from inside its own flush.
@Suite("Upstream send queue")
struct UpstreamSendQueueTests {
    /// A bound UDP socket on 127.0.0.1 and its port.
    func receiver() throws -> (fd: Int32, port: UInt16) {
        let fd = try DatagramReceiver.udpSocket(for: Endpoint(address: .v4(127, 0, 0, 1), port: 0))
        #expect(DatagramReceiver.withSockAddr(Endpoint(address: .v4(127, 0, 0, 1), port: 0), { bind(fd, $0, $1) }) == nil)
        return (fd, try #require(DatagramReceiver.localEndpoint(of: fd)).port)
    }

    func socket(to port: UInt16, token: Int) throws -> UpstreamUDPSocket {
        let upstream = Endpoint(address: .v4(127, 0, 0, 1), port: port)
        let fd = try DatagramReceiver.udpSocket(for: upstream)
        #expect(DatagramReceiver.withSockAddr(upstream, { connect(fd, $0, $1) }) == nil)
        return UpstreamUDPSocket(fd: fd, token: token, pool: UpstreamUDPPool(key: .init(mark: 0, upstream: upstream)),
                                 local: DatagramReceiver.localEndpoint(of: fd))
    }

    func ref(_ i: Int) -> AttemptRef { AttemptRef(txn: TxnID(index: Int32(i), generation: 0), attempt: 1) }

    func drain(_ fd: Int32) -> [UInt16] {
        var ids: [UInt16] = []
        var buf = [UInt8](repeating: 0, count: 512)
        while true {
            let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if n < 2 { return ids }
            ids.append(UInt16(buf[0]) << 8 | UInt16(buf[1]))
        }
    }

    @Test func entriesWhoseAttemptMovedOnAreNotSentAndIDsAreWritten() throws {
        let (rfd, port) = try receiver()
        defer { close(rfd) }
        let s = try socket(to: port, token: 1)
        defer { close(s.fd) }
        let queue = UpstreamSendQueue()
        for i in 0..<6 { queue.enqueue([0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0], id: UInt16(100 + i), socket: s, ref: ref(i)) }
        var refused = 0
        queue.flush(isCurrent: { $0.id % 2 == 0 }, failed: { _, _ in refused += 1 })
        #expect(queue.isEmpty && refused == 0)
        usleep(20_000)
        #expect(drain(rfd) == [100, 102, 104])
    }

    @Test func aRefusedSendMayRefillTheQueueFromInsideTheFlush() throws {
        // A port nobody listens on: the first send draws ICMP unreachable, the next send
        // on the socket reports ECONNREFUSED.
        let (closed, port) = try receiver()
        close(closed)
        let s = try socket(to: port, token: 1)
        defer { close(s.fd) }
        let (rfd, goodPort) = try receiver()
        defer { close(rfd) }
        let good = try socket(to: goodPort, token: 2)
        defer { close(good.fd) }
        let query: [UInt8] = [0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]
        _ = query.withUnsafeBytes { send(s.fd, $0.baseAddress, $0.count, 0) }
        usleep(20_000)
        let queue = UpstreamSendQueue()
        for i in 0..<UpstreamSendQueue.capacity { queue.enqueue(query, id: UInt16(i), socket: s, ref: ref(i)) }
        #expect(queue.isFull)
        var failures: [Int32] = []
        queue.flush(isCurrent: { _ in true }, failed: { entry, error in
            failures.append(error)
            // Fail over: every retry goes into the queue being flushed, until it is full.
            for i in 0..<UpstreamSendQueue.capacity where !queue.isFull {
                queue.enqueue(query, id: UInt16(1000 + i), socket: good, ref: ref(i))
            }
        })
        #expect(failures.first == ECONNREFUSED)
        #expect(queue.isFull, "refilled from inside the flush")
        queue.flush(isCurrent: { _ in true }, failed: { _, _ in Issue.record("the good upstream refused") })
        usleep(20_000)
        #expect(drain(rfd).count == UpstreamSendQueue.capacity)
    }
}
