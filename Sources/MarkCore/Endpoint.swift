/// An address and port, written `1.2.3.4:53` or `[::1]:53` (the port may be left out
/// where a default applies).
public struct Endpoint: Hashable, Sendable, CustomStringConvertible {
    public var address: IPAddress
    public var port: UInt16

    public init(address: IPAddress, port: UInt16) {
        self.address = address; self.port = port
    }

    public enum ParseError: Error, Equatable, CustomStringConvertible {
        case badAddress(String)
        case badPort(String)
        case missingBracket(String)

        public var description: String {
            switch self {
            case .badAddress(let s): return "'\(s)' is not an IPv4 or IPv6 address"
            case .badPort(let s): return "'\(s)' is not a port number (1-65535)"
            case .missingBracket(let s): return "'\(s)': write IPv6 with a port as [ADDR]:PORT"
            }
        }
    }

    /// Parses `ADDR:PORT`, `[V6]:PORT`, `ADDR` or a bare IPv6 literal (with `defaultPort`).
    public static func parse(_ text: String, defaultPort: UInt16? = nil) throws(ParseError) -> Endpoint {
        var host = text
        var portText: String? = nil
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { throw .missingBracket(text) }
            host = String(text[text.index(after: text.startIndex)..<close])
            let rest = text[text.index(after: close)...]
            if !rest.isEmpty {
                guard rest.hasPrefix(":") else { throw .badPort(String(rest)) }
                portText = String(rest.dropFirst())
            }
        } else if text.filter({ $0 == ":" }).count == 1 {
            let parts = text.split(separator: ":", omittingEmptySubsequences: false)
            host = String(parts[0]); portText = String(parts[1])
        }
        guard let address = IPAddress(host) else { throw .badAddress(host) }
        let port: UInt16
        if let portText {
            guard let p = UInt16(portText), p > 0 else { throw .badPort(portText) }
            port = p
        } else if let defaultPort {
            port = defaultPort
        } else {
            throw .badPort("")
        }
        return Endpoint(address: address, port: port)
    }

    public var description: String {
        address.isIPv6 ? "[\(address)]:\(port)" : "\(address):\(port)"
    }
}
