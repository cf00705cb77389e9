import CBatchIO
import QueryCore

#if canImport(Glibc)
import Glibc
#endif

/// Upstream queries of one loop tick, sent together at its end: one sendmmsg per upstream
/// socket instead of one send per query. The bytes are copied (a query is small), with
/// the attempt's ID written into the copy.
final class UpstreamSendQueue {
    static let capacity = 32
    static let slotSize = DatagramReceiver.slotSize

    struct Entry {
        var socket: UpstreamUDPSocket
        var ref: AttemptRef
        var id: UInt16
    }

    private var entries: [Entry] = []
    private let data: UnsafeMutableRawPointer
    private let iov: UnsafeMutablePointer<iovec>
    private let msgs: UnsafeMutablePointer<markdns_mmsghdr>
    private var order: [Int] = []
    private var grouped: [Bool] = []

    var isFull: Bool { entries.count == Self.capacity }
    var isEmpty: Bool { entries.isEmpty }

    init() {
        data = .allocate(byteCount: Self.capacity * Self.slotSize, alignment: 16)
        iov = .allocate(capacity: Self.capacity)
        msgs = .allocate(capacity: Self.capacity)
        entries.reserveCapacity(Self.capacity)
        order.reserveCapacity(Self.capacity)
        grouped.reserveCapacity(Self.capacity)
    }

    deinit {
        data.deallocate(); iov.deallocate(); msgs.deallocate()
    }

    /// Queues `bytes` (a whole query, at least a header and at most `slotSize`; the caller
    /// sends longer ones itself, and checks `isFull` first) for `socket`, with ID `id`.
    func enqueue(_ bytes: [UInt8], id: UInt16, socket: UpstreamUDPSocket, ref: AttemptRef) {
        precondition(!isFull && bytes.count <= Self.slotSize && bytes.count >= 2)
        let slot = data + entries.count * Self.slotSize
        bytes.withUnsafeBytes { slot.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        slot.storeBytes(of: id.bigEndian, as: UInt16.self)
        iov[entries.count] = iovec(iov_base: slot, iov_len: bytes.count)
        entries.append(Entry(socket: socket, ref: ref, id: id))
    }

    /// Sends everything queued whose attempt `isCurrent` still (an attempt that failed
    /// over or was answered since it was queued is not sent), socket by socket in the
    /// order first queued; then `failed` gets each entry the kernel refused, with its
    /// errno. The queue is empty by then: a failure fails over and may queue the retry (or
    /// flush again) from inside `failed`.
    func flush(isCurrent: (Entry) -> Bool, failed: (Entry, Int32) -> Void) {
        guard !entries.isEmpty else { return }
        var refused: [(Entry, Int32)] = []
        // Entries grouped by socket, keeping each socket's own order.
        order.removeAll(keepingCapacity: true)
        grouped.removeAll(keepingCapacity: true)
        grouped.append(contentsOf: repeatElement(false, count: entries.count))
        for i in entries.indices where !isCurrent(entries[i]) { grouped[i] = true }
        for i in entries.indices where !grouped[i] {
            for j in i..<entries.count where !grouped[j] && entries[j].socket === entries[i].socket {
                order.append(j)
                grouped[j] = true
            }
        }
        var start = 0
        while start < order.count {
            let socket = entries[order[start]].socket
            var end = start
            while end < order.count && entries[order[end]].socket === socket {
                msgs[end] = markdns_mmsghdr(msg_hdr: msghdr(msg_name: nil, msg_namelen: 0, msg_iov: iov + order[end],
                                                            msg_iovlen: 1, msg_control: nil, msg_controllen: 0,
                                                            msg_flags: 0), msg_len: 0)
                end += 1
            }
            var next = start
            // A socket closed since (its queries failed over) must not be written: its
            // descriptor number may belong to another socket, of another mark, by now.
            while next < end && !socket.closed {
                let r = markdns_sendmmsg(socket.fd, msgs + next, UInt32(end - next))
                if r > 0 { next += Int(r); continue }
                let e = errno
                if e == EINTR { continue }
                refused.append((entries[order[next]], e))
                next += 1
            }
            start = end
        }
        entries.removeAll(keepingCapacity: true)
        for (entry, error) in refused { failed(entry, error) }
    }
}
