import Logging
import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// Steers each client address to one event loop: a classic BPF program on the listeners'
/// SO_REUSEPORT group picks the socket by the client's source address modulo the number of
/// loops. Without it the kernel hashes the 4-tuple, and a stub resolver that uses a new
/// source port per query would meet a different cache, coalescing table and per-client
/// limit on every query. The program runs on the payload, so the address is read through
/// the network-header offset (SKF_NET_OFF).
enum ClientSteering {
    struct SockFilter { var code: UInt16; var jt: UInt8; var jf: UInt8; var k: UInt32 }
    struct SockFprog: @unchecked Sendable { var len: UInt16; var filter: UnsafeMutablePointer<SockFilter> }

    static let soAttachReuseportCBPF: Int32 = 51
    /// SKF_NET_OFF (-0x100000) as the unsigned `k` of a load.
    static let netOffset: UInt32 = 0xFFF0_0000

    /// The program: A = last 32 bits of the source address; A %= loops; return A.
    static func program(ipv6: Bool, loops: Int) -> [SockFilter] {
        let sourceOffset: UInt32 = ipv6 ? 8 + 12 : 12
        return [
            SockFilter(code: 0x20, jt: 0, jf: 0, k: netOffset + sourceOffset),  // ld [net + src]
            SockFilter(code: 0x94, jt: 0, jf: 0, k: UInt32(loops)),              // mod #loops
            SockFilter(code: 0x16, jt: 0, jf: 0, k: 0),                         // ret a
        ]
    }

    /// Attaches the program to the group `channel` belongs to (once per group). On failure
    /// the kernel's 4-tuple hash stays: still correct, only less cache-friendly.
    static func attach(to channel: any Channel, ipv6: Bool, loops: Int, logger: Logger) {
        guard let provider = channel as? any SocketOptionProvider else { return }
        attach(ipv6: ipv6, loops: loops, logger: logger) { prog in
            try provider.unsafeSetSocketOption(level: SocketOptionLevel(SOL_SOCKET),
                                               name: SocketOptionName(soAttachReuseportCBPF), value: prog).wait()
        }
    }

    /// The same for a raw socket of ours.
    static func attach(fd: Int32, ipv6: Bool, loops: Int, logger: Logger) {
        guard loops > 1 else { return }
        steer(fd: fd, ipv6: ipv6, loops: loops, logger: logger)
    }

    /// Re-attaches the program of a group of several sockets for `loops` of them (1: every
    /// client to the first socket, that is the first loop's). `UDPSpread` decides.
    static func steer(fd: Int32, ipv6: Bool, loops: Int, logger: Logger) {
        attach(ipv6: ipv6, loops: loops, logger: logger, minimum: 1) { prog in
            var prog = prog
            guard setsockopt(fd, SOL_SOCKET, soAttachReuseportCBPF, &prog, socklen_t(MemoryLayout<SockFprog>.size)) == 0 else {
                throw IOError(errnoCode: errno, reason: "setsockopt")
            }
        }
    }

    private static func attach(ipv6: Bool, loops: Int, logger: Logger, minimum: Int = 2, _ set: (SockFprog) throws -> Void) {
        guard loops >= minimum else { return }
        let filters = program(ipv6: ipv6, loops: loops)
        let buffer = UnsafeMutablePointer<SockFilter>.allocate(capacity: filters.count)
        buffer.initialize(from: filters, count: filters.count)
        defer { buffer.deallocate() }
        do {
            try set(SockFprog(len: UInt16(filters.count), filter: buffer))
        } catch {
            logger.warning("cannot steer clients to event loops by address (SO_ATTACH_REUSEPORT_CBPF: \(error)); the kernel's per-flow hash is used")
        }
    }
}
