import CNetfilterConntrack
import MarkCore

#if canImport(Glibc)
import Glibc
#endif

/// Connmark changes of existing conntrack entries, in place (sessions): a dump of one
/// family and an IPCTNL_MSG_CT_NEW update without NLM_F_CREATE per entry of the client.
/// Blocking (sockets of its own): call it off any event loop.
public enum ConntrackUpdate {
    public struct UpdateError: Error, CustomStringConvertible {
        public let errno: Int32
        public var description: String {
            "cannot update connmarks: \(errnoDescription(errno))" + (errno == EPERM ? " (needs CAP_NET_ADMIN)" : "")
        }
    }

    /// Sets the bits `mask` of the connmark of every entry whose original source is
    /// `source` to `value & mask`, keeping the other bits. Returns how many were updated.
    @discardableResult
    public static func setMark(source: IPAddress, value: UInt32, mask: UInt32) throws(UpdateError) -> Int {
        let family = source.isIPv6 ? AF_INET6 : AF_INET
        let rc = source.withUnsafeBytes { markdns_ct_set_mark_by_source(family, $0.baseAddress, value, mask) }
        guard rc >= 0 else { throw UpdateError(errno: -rc) }
        return Int(rc)
    }
}
