import CNetfilterConntrack
import MarkCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Connmark lookups through ctnetlink on one persistent, non-blocking netlink socket.
///
/// Not thread-safe by design: create one per event loop. Each lookup is one sendto and one
/// recvfrom on the kept socket (dnsmasq opens, queries and closes a socket per query).
public final class NetlinkMarkSource: MarkSource {
    private let ctx: UnsafeMutablePointer<markdns_ct>

    public struct OpenError: Error, CustomStringConvertible {
        public let errno: Int32
        public var description: String {
            "cannot open ctnetlink socket: \(String(cString: strerror(errno)))"
                + (errno == EPERM ? " (needs CAP_NET_ADMIN)" : "")
        }
    }

    public init() throws(OpenError) {
        guard let ctx = markdns_ct_open() else { throw OpenError(errno: errno) }
        self.ctx = ctx
    }

    deinit { markdns_ct_close(ctx) }

    public func lookup(_ flow: FlowTuple) -> MarkLookup {
        guard flow.isConsistent else { return .failed(EAFNOSUPPORT) }
        let (src, dst) = flow.replyTuple
        let family = src.address.isIPv6 ? AF_INET6 : AF_INET
        var mark: UInt32 = 0
        let rc = src.address.withUnsafeBytes { s in
            dst.address.withUnsafeBytes { d in
                markdns_ct_get_mark_by_reply(ctx, family, flow.proto.rawValue,
                                             s.baseAddress, d.baseAddress,
                                             src.port, dst.port, &mark)
            }
        }
        switch rc {
        case 1: return .found(mark)
        case 0: return .notFound
        default: return .failed(-rc)
        }
    }
}

/// Human text for an errno, for logs.
public func errnoDescription(_ e: Int32) -> String {
    "\(String(cString: strerror(e))) (errno \(e))"
}
