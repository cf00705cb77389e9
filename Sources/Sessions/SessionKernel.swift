import MarkSessions

/// What the session service asks of the kernel. The daemon's implementation runs `nft -f -`
/// and ctnetlink; a test may record instead.
public protocol SessionKernel: AnyObject {
    /// Runs an nft script (session map elements) in one transaction; throws when nft fails.
    func nft(_ script: String) throws
    /// Our bits of the connmark of the client's existing conntrack entries, in place.
    /// Returns how many entries changed.
    func setConnmark(_ client: SessionClient, mark: UInt32, mask: UInt32) throws -> Int
}
