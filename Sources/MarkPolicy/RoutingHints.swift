/// `ip rule` lines for the policy's routing hints (`[[mark]] table = N`): packets and
/// upstream sockets carrying the mark (in the masked bits) use routing table N, for
/// multi-WAN "source in, source out" designs. Not nftables: run them once per boot.
public enum RoutingHints {
    /// `ip rule add fwmark MARK/MASK table N` and its `ip -6` twin, per hinted mark, in
    /// mark order. With `delete`, the matching `ip rule del` lines.
    public static func commands(_ config: PolicyConfig, delete: Bool = false) -> [String] {
        let verb = delete ? "del" : "add"
        let mask = hex(config.conntrack.mask)
        let marks = config.routing.sorted { $0.key < $1.key }.flatMap { mark, table in
            ["ip", "ip -6"].map { "\($0) rule \(verb) fwmark \(hex(mark))/\(mask) table \(table)" }
        }
        // `[[set]] route-mark = R, table = N`: packets carrying the route bits use table N.
        let sets = config.sets.compactMap { s in s.routeMark.flatMap { r in s.table.map { (r, $0) } } }
            .flatMap { r, table in
                ["ip", "ip -6"].map { "\($0) rule \(verb) fwmark \(hex(r))/\(hex(r)) table \(table)" }
            }
        return marks + sets
    }
}
