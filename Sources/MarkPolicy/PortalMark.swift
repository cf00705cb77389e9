/// The mark the Captive Portal API (RFC 8908) reports for the client asking it, best
/// evidence first: the client's session (markdns set it); else the mark the kernel gave the
/// asking connection (its connmark, in our bits, when a `[[mark]]` has that value: this is
/// what the client's traffic really gets, whatever selected it); else the first `[[client]]`
/// rule matching the client's address, MAC or interface.
extension PolicyConfig {
    public func portalMark(session: String?, connmark: UInt32?, client: ClientIdentity) -> MarkRule? {
        if let session, let m = mark(named: session) { return m }
        if let connmark, connmark & conntrack.mask != 0, let m = mark(value: connmark & conntrack.mask) { return m }
        return clients.first { $0.matches(client) }.flatMap { mark(value: $0.mark) }
    }
}
