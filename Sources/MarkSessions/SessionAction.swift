/// One element of a session map in `table inet markdns`: `session_MARK_v4` and friends.
/// Sets for single-value marks; maps to the mark value for range marks.
public struct KernelElement: Sendable, Equatable {
    public var set: String
    public var client: SessionClient
    /// The map value (range marks); nil for a set element.
    public var value: UInt32?
    /// Seconds until the kernel drops the element by itself.
    public var timeout: UInt32

    public init(set: String, client: SessionClient, value: UInt32?, timeout: UInt32) {
        self.set = set; self.client = client; self.value = value; self.timeout = timeout
    }
}

/// What the shell does for an event, in order. The store comes first: when it fails, the
/// shell stops and nothing else has changed.
public enum SessionAction: Sendable, Equatable {
    /// Write (insert or replace) the session in the store.
    case storePut(Session)
    /// Remove the client's session from the store.
    case storeDelete(SessionClient)
    /// Remove the client's element from a session map (it is there: expired elements are
    /// never deleted, the kernel has dropped them).
    case kernelDelete(set: String, client: SessionClient)
    /// Add the element with its timeout.
    case kernelAdd(KernelElement)
    /// Empty every session map and fill them with these elements, in one transaction.
    case kernelReplaceAll([KernelElement])
    /// Set our bits (`mask`) of the connmark of the client's existing conntrack entries to
    /// `mark`, in place. 0 clears them: the next packet is marked by the static selectors.
    case connmark(client: SessionClient, mark: UInt32, mask: UInt32)
    /// The DNS path: the client's next query has this mark (0: the static one).
    case markChanged(client: SessionClient, mark: UInt32)
}

/// Names of the session maps; `markdns rules` declares them, the shell fills them.
public enum SessionMaps {
    public static func name(mark: String, family: SessionClient.Family) -> String {
        "session_\(mark)_\(family.rawValue)"
    }

    public static func nftType(_ f: SessionClient.Family) -> String {
        switch f {
        case .v4: return "ipv4_addr"
        case .v6: return "ipv6_addr"
        case .mac: return "ether_addr"
        }
    }

    /// The nft selector expression of a family's key.
    public static func selector(_ f: SessionClient.Family) -> String {
        switch f {
        case .v4: return "ip saddr"
        case .v6: return "ip6 saddr"
        case .mac: return "ether saddr"
        }
    }

    /// The element as nft writes it: `10.0.0.5 timeout 3600s`, `... : 0x1001`.
    public static func elementText(_ e: KernelElement) -> String {
        "\(e.client) timeout \(e.timeout)s" + (e.value.map { " : \(hex($0))" } ?? "")
    }

    /// An nft script (`nft -f -`) for kernel actions: deletes and adds in one transaction.
    /// `sets` and `maps`: every declared session set and map (for `kernelReplaceAll`).
    public static func script(_ actions: [SessionAction], sets: [String], maps: [String],
                              table: String = "inet markdns") -> String {
        var lines: [String] = []
        for a in actions {
            switch a {
            case let .kernelDelete(set, client):
                lines.append("delete element \(table) \(set) { \(client) }")
            case let .kernelAdd(e):
                lines.append("add element \(table) \(e.set) { \(elementText(e)) }")
            case let .kernelReplaceAll(elements):
                for m in sets { lines.append("flush set \(table) \(m)") }
                for m in maps { lines.append("flush map \(table) \(m)") }
                for e in elements { lines.append("add element \(table) \(e.set) { \(elementText(e)) }") }
            default:
                continue
            }
        }
        return lines.isEmpty ? "" : lines.joined(separator: "\n") + "\n"
    }
}
