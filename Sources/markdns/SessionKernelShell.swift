import Conntrack
import MarkCore
import MarkSessions
import Sessions

#if canImport(Glibc)
import Glibc
#endif

/// The daemon's kernel side of sessions: `nft -f -` for the session maps (one transaction
/// per event), ctnetlink for the connmarks of existing flows. A MAC client's flows are those
/// of the IPv4 and IPv6 addresses the kernel's neighbour table gives it.
final class SessionKernelShell: SessionKernel {
    struct NftFailed: Error, CustomStringConvertible {
        let status: Int32
        var description: String { "nft exited with \(status)" }
    }

    func nft(_ script: String) throws {
        let status = try ExternalCommand.run("nft", ["-f", "-"], input: script)
        guard status == 0 else { throw NftFailed(status: status) }
    }

    func setConnmark(_ client: SessionClient, mark: UInt32, mask: UInt32) throws -> Int {
        switch client {
        case .address(let a):
            return try ConntrackUpdate.setMark(source: a, value: mark, mask: mask)
        case .mac(let m):
            var n = 0
            for a in Self.neighbours(of: m) { n += try ConntrackUpdate.setMark(source: a, value: mark, mask: mask) }
            return n
        }
    }

    /// The IPv4 and IPv6 addresses of a MAC in the kernel's neighbour table.
    static func neighbours(of mac: MACAddress) -> [IPAddress] {
        guard let entries = try? NeighbourDump.entries() else { return [] }
        return Neighbours.addresses(of: mac, in: entries)
    }
}
