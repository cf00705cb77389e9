import CBatchIO
import MarkCore
import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// A client-facing UDP socket read and written in batches (recvmmsg / sendmmsg) without
/// NIO's channel machinery, which cost about half of a forwarded query's user time and
/// cannot hand over the packet mark. Datagrams are read with the engine's
/// `DatagramReceiver` (source, packet mark, interface); replies are queued and leave
/// together when the loop tick ends (`flush`).
///
/// Used on one data-plane loop only (its engine's), which reports it readable.
final class RawUDPListener {
    static let batch = DatagramReceiver.batch
    static let slotSize = DatagramReceiver.slotSize

    let fd: Int32
    let local: Endpoint
    /// False on kernels without SO_RCVMARK: every mark comes from ctnetlink.
    let receivesMarks: Bool
    /// Replies that could not be sent (send buffer full, or an error for that client).
    private(set) var sendDrops = 0
    private(set) var isClosed = false

    private let outData: UnsafeMutableRawPointer
    private let outNames: UnsafeMutablePointer<sockaddr_storage>
    private let outIov: UnsafeMutablePointer<iovec>
    private let outMsgs: UnsafeMutablePointer<markdns_mmsghdr>
    private var queued = 0

    /// SO_RCVMARK (not in every libc's headers). Its control message is SO_MARK.
    static let soRcvMark: Int32 = 75

    /// Binds a nonblocking UDP socket to `local` (SO_REUSEPORT when several loops share it).
    init(local: Endpoint, reusePort: Bool) throws {
        let fd = try DatagramReceiver.udpSocket(for: local)
        func set(_ level: Int32, _ name: Int32, _ value: Int32) -> Bool {
            var v = value
            return setsockopt(fd, level, name, &v, socklen_t(MemoryLayout<Int32>.size)) == 0
        }
        _ = set(SOL_SOCKET, SO_REUSEADDR, 1)
        if reusePort { _ = set(SOL_SOCKET, SO_REUSEPORT, 1) }
        if local.address.isIPv6 {
            _ = set(Int32(IPPROTO_IPV6), IPV6_V6ONLY, 1)
            _ = set(Int32(IPPROTO_IPV6), IPV6_RECVPKTINFO, 1)
        } else {
            _ = set(Int32(IPPROTO_IP), IP_PKTINFO, 1)
        }
        receivesMarks = set(SOL_SOCKET, Self.soRcvMark, 1)
        if let e = DatagramReceiver.withSockAddr(local, { bind(fd, $0, $1) }) {
            Glibc.close(fd)
            throw IOError(errnoCode: e, reason: "bind")
        }
        self.fd = fd
        self.local = local
        let n = Self.batch
        outData = .allocate(byteCount: n * Self.slotSize, alignment: 16)
        outNames = .allocate(capacity: n)
        outIov = .allocate(capacity: n)
        outMsgs = .allocate(capacity: n)
        for i in 0..<n { outIov[i] = iovec(iov_base: outData + i * Self.slotSize, iov_len: 0) }
    }

    deinit {
        outData.deallocate(); outNames.deallocate(); outIov.deallocate(); outMsgs.deallocate()
    }

    func close() {
        guard !isClosed else { return }
        isClosed = true
        queued = 0
        Glibc.close(fd)
    }

    /// Reads up to a batch of queries into `receiver` and hands each to `body`. Returns how
    /// many were read (0: none waiting, or a transient error such as an ICMP error of an
    /// earlier reply).
    func receive(with receiver: DatagramReceiver, _ body: (DatagramReceiver.Datagram) -> Void) -> Int {
        guard !isClosed else { return 0 }
        return receiver.receive(fd, body).count
    }

    // MARK: - Sending

    /// Queues a reply of `count` bytes to `client`, written by `fill` straight into its
    /// send slot (sent by `flush`; a full queue is flushed first). A reply larger than a
    /// slot is sent at once from a temporary buffer.
    func enqueue(count: Int, to client: Endpoint, scope: UInt32, _ fill: (UnsafeMutableRawBufferPointer) -> Void) {
        guard !isClosed else { return }
        if count > Self.slotSize {
            withUnsafeTemporaryAllocation(byteCount: count, alignment: 8) { buf in
                fill(buf)
                sendNow(UnsafeRawBufferPointer(buf), to: client, scope: scope)
            }
            return
        }
        if queued == Self.batch { flush() }
        let i = queued
        fill(UnsafeMutableRawBufferPointer(start: outData + i * Self.slotSize, count: count))
        outIov[i].iov_len = count
        let length = DatagramReceiver.fill(&outNames[i], client, scope: scope)
        outMsgs[i] = markdns_mmsghdr(msg_hdr: msghdr(msg_name: UnsafeMutableRawPointer(outNames + i), msg_namelen: length,
                                                     msg_iov: outIov + i, msg_iovlen: 1, msg_control: nil,
                                                     msg_controllen: 0, msg_flags: 0), msg_len: 0)
        queued += 1
    }

    /// Sends every queued reply (sendmmsg). A reply the kernel refuses is dropped and
    /// counted; a full send buffer drops the rest of the batch.
    func flush() {
        var sent = 0
        while sent < queued {
            let r = markdns_sendmmsg(fd, outMsgs + sent, UInt32(queued - sent))
            if r > 0 {
                sent += Int(r)
            } else if errno == EINTR {
                continue
            } else if errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS {
                sendDrops += queued - sent
                break
            } else {
                sendDrops += 1  // this client's reply (e.g. EPERM from a rule); the rest go on
                sent += 1
            }
        }
        queued = 0
    }

    private func sendNow(_ buf: UnsafeRawBufferPointer, to client: Endpoint, scope: UInt32) {
        let failed = DatagramReceiver.withSockAddr(client, scope: scope) { sa, len in
            sendto(fd, buf.baseAddress, buf.count, 0, sa, len) < 0 ? -1 : 0
        }
        if failed != nil { sendDrops += 1 }
    }
}
