import MarkCore

/// One entry of a `[[client]]` rule's `match` list.
///
/// Syntax (one clear form each, no guessing):
/// - `192.168.111.0/24`, `fd00:111::/64`: an IPv4 or IPv6 network (host bits must be 0);
///   a bare address is a /32 or /128.
/// - `aa:bb:cc:dd:ee:ff`: a MAC address (any case), the client's link-layer source.
/// - `iface:wlan1`: the input interface; a trailing `*` matches a prefix (`iface:wlan*`).
public enum ClientSelector: Sendable, Hashable, CustomStringConvertible {
    case network(CIDR)
    case mac(MACAddress)
    case interface(InterfaceName)

    public static let interfacePrefix = "iface:"

    public enum ParseError: Error, Equatable, CustomStringConvertible {
        case badNetwork(String, String)
        case badMAC(String)
        case badInterface(String, String)
        case unknown(String)

        public var description: String {
            switch self {
            case let .badNetwork(s, why): return "'\(s)' is not a network: \(why)"
            case let .badMAC(s): return "'\(s)' is not a MAC address (write aa:bb:cc:dd:ee:ff)"
            case let .badInterface(s, why): return "'\(s)' is not an interface selector: \(why)"
            case let .unknown(s):
                return "'\(s)' is not an address, network, MAC address or interface"
                    + " (write interfaces as \"iface:\(s)\")"
            }
        }
    }

    public init(parsing text: String) throws(ParseError) {
        if text.hasPrefix(Self.interfacePrefix) {
            self = .interface(try InterfaceName(parsing: String(text.dropFirst(Self.interfacePrefix.count)), original: text))
        } else if let mac = MACAddress(text) {
            self = .mac(mac)
        } else if text.contains("/") || IPAddress(text) != nil {
            self = .network(try CIDR(parsing: text))
        } else if text.count == 17, text.filter({ $0 == ":" || $0 == "-" }).count == 5 {
            throw .badMAC(text)
        } else if text.contains(":") || text.allSatisfy({ $0.isNumber || $0 == "." }) {
            throw .badNetwork(text, "not an IPv4 or IPv6 address")
        } else {
            throw .unknown(text)
        }
    }

    public func matches(_ client: ClientIdentity) -> Bool {
        switch self {
        case .network(let n): return n.contains(client.address)
        case .mac(let m): return client.mac.map { $0 == m.bytes } ?? false
        case .interface(let i): return client.interface.map(i.matches) ?? false
        }
    }

    public var description: String {
        switch self {
        case .network(let n): return n.description
        case .mac(let m): return m.description
        case .interface(let i): return Self.interfacePrefix + i.description
        }
    }
}

/// An interface name, or a prefix when written with a trailing `*` (`wlan*`).
public struct InterfaceName: Sendable, Hashable, CustomStringConvertible {
    /// The name without the `*`.
    public let name: String
    public let isPrefix: Bool

    public init(parsing text: String, original: String? = nil) throws(ClientSelector.ParseError) {
        let orig = original ?? text
        let prefix = text.hasSuffix("*")
        let name = prefix ? String(text.dropLast()) : text
        // IFNAMSIZ is 16 with the NUL; the kernel refuses '/', ':' and whitespace.
        guard !name.isEmpty else { throw .badInterface(orig, "empty name") }
        guard name.utf8.count <= 15 else { throw .badInterface(orig, "longer than 15 characters") }
        guard name.unicodeScalars.allSatisfy({ $0.isASCII && ($0.properties.isAlphabetic
                || ("0"..."9").contains($0) || "-_.@".unicodeScalars.contains($0)) }) else {
            throw .badInterface(orig, "use letters, digits and - _ . @ (and a trailing * for a prefix)")
        }
        self.name = name; self.isPrefix = prefix
    }

    public func matches(_ interface: String) -> Bool {
        isPrefix ? interface.hasPrefix(name) : interface == name
    }

    public var description: String { isPrefix ? name + "*" : name }
}
