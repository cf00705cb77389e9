import CBatchIO
import MarkCore
import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// Receive buffers for up to `batch` datagrams read with one recvmmsg, with each one's
/// source address and control messages: the packet mark (SO_RCVMARK, Linux 5.19+) and the
/// interface it came in on (IP_PKTINFO / IPV6_PKTINFO). One per event loop is enough for
/// all its sockets: a batch is handled before the next is read.
final class DatagramReceiver {
    static let batch = 32
    /// Slot per datagram: a longer one is cut (and then answered FORMERR if a query).
    static let slotSize = 4096
    static let controlSize = 128

    struct Datagram {
        var bytes: UnsafeRawBufferPointer
        var source: Endpoint?
        /// IPv6 scope (interface) of a link-local source, to reply through the same link.
        var scope: UInt32 = 0
        /// nil when the kernel did not report one (no SO_RCVMARK).
        var mark: UInt32?
        var interfaceIndex: Int?
        /// Longer than `slotSize` (MSG_TRUNC): `bytes` is only its beginning.
        var truncated = false
    }

    /// What one read gave: how many datagrams, or the socket's pending error (a connected
    /// UDP socket reports ICMP unreachable as ECONNREFUSED on the next read).
    struct Result {
        var count: Int
        var error: Int32?
    }

    private let data: UnsafeMutableRawPointer
    private let names: UnsafeMutablePointer<sockaddr_storage>
    private let control: UnsafeMutableRawPointer
    private let iov: UnsafeMutablePointer<iovec>
    private let msgs: UnsafeMutablePointer<markdns_mmsghdr>

    init() {
        let n = Self.batch
        data = .allocate(byteCount: n * Self.slotSize, alignment: 16)
        names = .allocate(capacity: n)
        control = .allocate(byteCount: n * Self.controlSize, alignment: 16)
        iov = .allocate(capacity: n)
        msgs = .allocate(capacity: n)
        for i in 0..<n {
            iov[i] = iovec(iov_base: data + i * Self.slotSize, iov_len: Self.slotSize)
            reset(i)
        }
    }

    /// Makes message slot `i` ready for the kernel: recvmmsg writes the lengths and flags
    /// of the slots it fills, and only those are reset after a read (setting up all of a
    /// batch's headers per call cost ~500 instructions on a read of one datagram).
    private func reset(_ i: Int) {
        msgs[i] = markdns_mmsghdr(msg_hdr: msghdr(
            msg_name: UnsafeMutableRawPointer(names + i), msg_namelen: socklen_t(MemoryLayout<sockaddr_storage>.size),
            msg_iov: iov + i, msg_iovlen: 1,
            msg_control: control + i * Self.controlSize, msg_controllen: Self.controlSize, msg_flags: 0), msg_len: 0)
    }

    deinit {
        data.deallocate(); names.deallocate(); control.deallocate(); iov.deallocate(); msgs.deallocate()
    }

    /// Reads up to `batch` datagrams from `fd` (nonblocking) and hands each to `body`; the
    /// bytes are valid only during the call.
    func receive(_ fd: Int32, _ body: (Datagram) -> Void) -> Result {
        let n = Self.batch
        var got: Int32
        repeat { got = markdns_recvmmsg(fd, msgs, UInt32(n)) } while got < 0 && errno == EINTR
        guard got > 0 else {
            let e = errno
            reset(0)
            return Result(count: 0, error: got < 0 && e != EAGAIN && e != EWOULDBLOCK ? e : nil)
        }
        for i in 0..<Int(got) {
            let hdr = msgs[i].msg_hdr
            var datagram = Datagram(bytes: UnsafeRawBufferPointer(start: data + i * Self.slotSize,
                                                                  count: min(Int(msgs[i].msg_len), Self.slotSize)),
                                    source: hdr.msg_namelen > 0 ? Self.endpoint(names + i) : nil,
                                    scope: Self.scope(names + i))
            datagram.truncated = hdr.msg_flags & Int32(MSG_TRUNC) != 0 || Int(msgs[i].msg_len) > Self.slotSize
            Self.parseControl(hdr.msg_control, length: Int(hdr.msg_controllen), into: &datagram)
            body(datagram)
        }
        for i in 0..<Int(got) { reset(i) }
        return Result(count: Int(got), error: nil)
    }

    /// Packet mark and incoming interface from the control messages (cmsghdr: size_t
    /// length, int level, int type, data at the next 8-byte boundary).
    static func parseControl(_ control: UnsafeMutableRawPointer?, length: Int, into d: inout Datagram) {
        guard let control else { return }
        let header = MemoryLayout<Int>.size + 8
        var offset = 0
        while offset + header <= length {
            let len = control.loadUnaligned(fromByteOffset: offset, as: Int.self)
            guard len >= header, offset + len <= length else { return }
            let level = control.loadUnaligned(fromByteOffset: offset + MemoryLayout<Int>.size, as: Int32.self)
            let type = control.loadUnaligned(fromByteOffset: offset + MemoryLayout<Int>.size + 4, as: Int32.self)
            let data = offset + header
            switch (level, type) {
            case (SOL_SOCKET, SO_MARK) where len >= header + 4:
                d.mark = control.loadUnaligned(fromByteOffset: data, as: UInt32.self)
            case (Int32(IPPROTO_IP), IP_PKTINFO) where len >= header + 4:
                d.interfaceIndex = Int(control.loadUnaligned(fromByteOffset: data, as: Int32.self))
            case (Int32(IPPROTO_IPV6), IPV6_PKTINFO) where len >= header + 20:
                d.interfaceIndex = Int(control.loadUnaligned(fromByteOffset: data + 16, as: Int32.self))
            default:
                break
            }
            offset += (len + 7) & ~7
        }
    }

    static func endpoint(_ storage: UnsafePointer<sockaddr_storage>) -> Endpoint? {
        let raw = UnsafeRawPointer(storage)
        switch Int32(storage.pointee.ss_family) {
        case AF_INET:
            return Endpoint(raw.load(as: sockaddr_in.self))
        case AF_INET6:
            return Endpoint(raw.load(as: sockaddr_in6.self))
        default:
            return nil
        }
    }

    /// The local address a socket is bound to (getsockname), nil on failure (errno set).
    static func localEndpoint(of fd: Int32) -> Endpoint? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let rc = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard rc == 0 else { return nil }
        return withUnsafePointer(to: &storage) { endpoint($0) }
    }

    /// The IPv6 scope id of a received address (0 for IPv4 or none).
    static func scope(_ storage: UnsafePointer<sockaddr_storage>) -> UInt32 {
        guard Int32(storage.pointee.ss_family) == AF_INET6 else { return 0 }
        return UnsafeRawPointer(storage).load(as: sockaddr_in6.self).sin6_scope_id
    }

    /// Writes `e` (with IPv6 `scope`) as a sockaddr into `storage`; returns its length.
    @discardableResult
    static func fill(_ storage: inout sockaddr_storage, _ e: Endpoint, scope: UInt32 = 0) -> socklen_t {
        withUnsafeMutablePointer(to: &storage) { p in
            let raw = UnsafeMutableRawPointer(p)
            switch e.address {
            case .v4(let a, let b, let c, let d):
                var sin = sockaddr_in()
                sin.sin_family = sa_family_t(AF_INET)
                sin.sin_port = e.port.bigEndian
                withUnsafeMutableBytes(of: &sin.sin_addr) { $0[0] = a; $0[1] = b; $0[2] = c; $0[3] = d }
                raw.storeBytes(of: sin, as: sockaddr_in.self)
                return socklen_t(MemoryLayout<sockaddr_in>.size)
            case .v6(let bytes):
                var sin6 = sockaddr_in6()
                sin6.sin6_family = sa_family_t(AF_INET6)
                sin6.sin6_port = e.port.bigEndian
                sin6.sin6_scope_id = scope
                withUnsafeMutableBytes(of: &sin6.sin6_addr) { dst in
                    for i in 0..<min(16, bytes.count) { dst[i] = bytes[i] }
                }
                raw.storeBytes(of: sin6, as: sockaddr_in6.self)
                return socklen_t(MemoryLayout<sockaddr_in6>.size)
            }
        }
    }

    /// A nonblocking, close-on-exec UDP socket of `e`'s family.
    static func udpSocket(for e: Endpoint) throws -> Int32 {
        let family = e.address.isIPv6 ? AF_INET6 : AF_INET
        let fd = socket(family, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw IOError(errnoCode: errno, reason: "socket") }
        return fd
    }

    /// bind(2) or connect(2) to `e`; the errno on failure.
    static func withSockAddr(_ e: Endpoint, scope: UInt32 = 0,
                             _ body: (UnsafePointer<sockaddr>, socklen_t) -> Int32) -> Int32? {
        var storage = sockaddr_storage()
        let length = fill(&storage, e, scope: scope)
        let rc = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, length) }
        }
        return rc == 0 ? nil : errno
    }
}
