import CRtnetlink
import MarkCore

#if canImport(Glibc)
import Glibc
#endif

/// The kernel's neighbour table, IPv4 and IPv6, from one rtnetlink RTM_GETNEIGH dump
/// (libmnl). Which entries count is MarkCore's `Neighbours`.
public enum NeighbourDump {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// Every entry with a link-layer address.
    public static func entries() throws(Failure) -> [Neighbour] {
        var raw: UnsafeMutablePointer<markdns_neigh>? = nil
        let n = markdns_neigh_dump(&raw)
        guard n >= 0 else { throw Failure(description: "neighbour table dump (rtnetlink): \(String(cString: strerror(-n)))") }
        defer { free(raw) }
        guard let raw else { return [] }
        return UnsafeBufferPointer(start: raw, count: Int(n)).compactMap { e in
            var e = e
            let addr = withUnsafeBytes(of: &e.addr) { Array($0) }
            let mac = withUnsafeBytes(of: &e.lladdr) { Array($0) }
            let family = Int32(e.family)
            guard let ip = IPAddress(bytes: family == AF_INET ? Array(addr.prefix(4)) : family == AF_INET6 ? addr : []),
                  let m = MACAddress(bytes: mac) else { return nil }
            return Neighbour(address: ip, mac: m, state: e.state)
        }
    }
}
