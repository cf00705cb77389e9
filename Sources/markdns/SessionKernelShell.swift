import Conntrack
import MarkCore
import MarkSessions
import Sessions

#if canImport(Glibc)
import Glibc
#endif

/// The daemon's kernel side of sessions: `nft -f -` for the session maps (one transaction
/// per event), ctnetlink for the connmarks of existing flows. A MAC client's flows are those
/// of the IPv4 addresses the neighbour table (/proc/net/arp) gives it.
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

    /// IPv4 addresses of a MAC from /proc/net/arp ("IP HWtype Flags HWaddress Mask Device").
    static func neighbours(of mac: MACAddress) -> [IPAddress] {
        guard let text = try? PolicyLoading.readFile("/proc/net/arp") else { return [] }
        return ProcNetARP.parse(text).compactMap { $0.value == mac ? $0.key : nil }
    }
}
