import CNetfilterConntrack
import MarkCore

#if canImport(Glibc)
import Glibc
#endif

/// The whole conntrack table of this network namespace, read through ctnetlink (a dump on
/// a socket of its own, blocking: call it off any event loop).
public enum ConntrackDump {
    public struct DumpError: Error, CustomStringConvertible {
        public let errno: Int32
        public var description: String {
            "cannot dump the conntrack table: \(errnoDescription(errno))"
                + (errno == EPERM ? " (needs CAP_NET_ADMIN)" : "")
        }
    }

    private final class Sink {
        var flows: [FlowCounters] = []
    }

    public static func flows() throws(DumpError) -> [FlowCounters] {
        let sink = Sink()
        let rc = withExtendedLifetime(sink) {
            markdns_ct_dump({ entry, arg in
                guard let entry, let arg else { return }
                let sink = Unmanaged<Sink>.fromOpaque(arg).takeUnretainedValue()
                let e = entry.pointee
                sink.flows.append(FlowCounters(mark: e.mark, proto: e.l4proto,
                                               originalBytes: e.orig_bytes, originalPackets: e.orig_packets,
                                               replyBytes: e.reply_bytes, replyPackets: e.reply_packets))
            }, Unmanaged.passUnretained(sink).toOpaque())
        }
        guard rc >= 0 else { throw DumpError(errno: -rc) }
        return sink.flows
    }

    /// `net.netfilter.nf_conntrack_acct` of this namespace: true/false, nil when unreadable.
    public static func accountingEnabled() -> Bool? {
        let fd = open("/proc/sys/net/netfilter/nf_conntrack_acct", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var byte: UInt8 = 0
        guard read(fd, &byte, 1) == 1 else { return nil }
        return byte != UInt8(ascii: "0")
    }

    /// Turns byte and packet accounting on for flows created from now on.
    public static func enableAccounting() -> Bool {
        let fd = open("/proc/sys/net/netfilter/nf_conntrack_acct", O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var byte = UInt8(ascii: "1")
        return write(fd, &byte, 1) == 1
    }
}
