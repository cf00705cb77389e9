import CNftnl
import QueryCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Writes `[[set]]` elements into `table inet markdns` over one persistent, non-blocking
/// netlink socket (libnftnl builds the messages, libmnl sends them). Not thread-safe by
/// design: one per event loop.
public final class NftSetSocket {
    public static let table = "markdns"
    private let ctx: UnsafeMutablePointer<markdns_nft>
    private var seq: UInt32
    private var buffer: [CChar]
    private var ackBuffer = [CChar](repeating: 0, count: 64 * 1024)

    public struct OpenError: Error, CustomStringConvertible {
        public let errno: Int32
        public var description: String {
            "cannot open the nftables netlink socket: \(String(cString: strerror(errno)))"
                + (errno == EPERM ? " (needs CAP_NET_ADMIN)" : "")
        }
    }

    public init() throws(OpenError) {
        guard let ctx = markdns_nft_open() else { throw OpenError(errno: errno) }
        self.ctx = ctx
        self.seq = UInt32(truncatingIfNeeded: getpid()) << 16
        self.buffer = [CChar](repeating: 0, count: Int(markdns_nft_batch_bound(UInt32(SetBatch.maxElements))))
    }

    deinit { markdns_nft_close(ctx) }

    /// The socket's descriptor (for the loop's epoll set).
    public var fd: Int32 { markdns_nft_fd(ctx) }

    /// A batch sent: its acks carry sequence numbers up to `lastSeq`.
    public struct Sent: Sendable, Equatable {
        public var firstSeq: UInt32
        public var lastSeq: UInt32
    }

    /// Encodes `write` as one batch and sends it. Returns the sequence range to wait for,
    /// or the errno of a failed encoding or send.
    public func send(_ write: SetWrite) -> Result<Sent, SendError> {
        let first = seq
        seq &+= UInt32(MARKDNS_NFT_MESSAGES) + 2
        if seq < first { seq = 1 }  // wrapped: never straddle 0
        let len = Self.encode(write, seq: first, into: &buffer)
        guard len > 0 else { return .failure(SendError(errno: errno)) }
        let rc = buffer.withUnsafeBufferPointer { markdns_nft_send(ctx, $0.baseAddress, Int(len)) }
        guard rc == 0 else { return .failure(SendError(errno: -rc)) }
        return .success(Sent(firstSeq: first, lastSeq: first &+ UInt32(MARKDNS_NFT_MESSAGES)))
    }

    public struct SendError: Error, Equatable { public let errno: Int32 }

    /// The batch of `write` with sequence numbers from `seq`, as the kernel gets it
    /// (exposed for the encoding tests). Returns its length (-1: see errno).
    public static func encode(_ write: SetWrite, seq: UInt32, into buffer: inout [CChar]) -> Int {
        let bound = Int(markdns_nft_batch_bound(UInt32(write.count)))
        if buffer.count < bound { buffer = [CChar](repeating: 0, count: bound) }
        let cap = buffer.count
        return write.keys.withUnsafeBufferPointer { keys in
            write.timeoutsMs.withUnsafeBufferPointer { timeouts in
                buffer.withUnsafeMutableBufferPointer { out in
                    Int(markdns_nft_encode(out.baseAddress, cap, seq, table, write.nftSet, keys.baseAddress,
                                           UInt32(write.keyLength), timeouts.baseAddress, UInt32(write.count)))
                }
            }
        }
    }

    /// One ack (error 0) or error of a message we sent.
    public struct Ack: Sendable, Equatable {
        public var seq: UInt32
        public var error: Int32
    }

    /// The acks queued now (none: nothing to read yet), or the errno of a failed read.
    public func readAcks() -> Result<[Ack], SendError> {
        var all: [Ack] = []
        var seqs = [UInt32](repeating: 0, count: 256)
        var errs = [Int32](repeating: 0, count: 256)
        while true {
            let cap = ackBuffer.count
            let n = ackBuffer.withUnsafeMutableBufferPointer { buf in
                markdns_nft_read_acks(ctx, buf.baseAddress, cap, &seqs, &errs, 256)
            }
            if n == -EAGAIN { return .success(all) }
            if n < 0 { return all.isEmpty ? .failure(SendError(errno: -n)) : .success(all) }
            for i in 0..<Int(n) { all.append(Ack(seq: seqs[i], error: errs[i])) }
        }
    }
}
