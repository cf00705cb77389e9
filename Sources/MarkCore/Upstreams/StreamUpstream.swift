/// An upstream reached over a pooled stream connection: `tls://ADDR[:PORT][#NAME]` (DNS over
/// TLS, RFC 7858), `https://ADDR[:PORT][/PATH][#NAME]` (DNS over HTTPS, RFC 8484, over
/// HTTP/2), or `.tcp`, the TCP side of a plain `ADDR[:PORT]` upstream (RFC 7766: queries
/// pipelined on persistent connections; never written in a config, it has no scheme there).
/// For the encrypted ones, what its pool says about trust: the certificate must carry
/// `serverName` (sent as SNI and as `:authority`), or the address itself when there is none;
/// it is verified against `caFile` or the system store, and must match one of `pins` when
/// there are any.
public struct StreamUpstream: Hashable, Sendable, CustomStringConvertible {
    public enum Kind: Hashable, Sendable {
        case tls
        case https(path: String)
        /// Plain DNS over TCP (no TLS), for a plain upstream's TCP attempts.
        case tcp
    }

    /// How DoH queries are sent: POST of `application/dns-message` (the default) or GET
    /// with `?dns=BASE64URL`.
    public enum Method: String, Hashable, Sendable, CaseIterable {
        case post, get
    }

    public var kind: Kind
    public var endpoint: Endpoint
    public var serverName: String?
    /// PEM file of trusted CAs; nil: the system store (`/etc/ssl/certs`).
    public var caFile: String?
    /// SHA-256 digests of acceptable SubjectPublicKeyInfos (empty: no pinning).
    public var pins: [[UInt8]] = []
    public var method: Method = .post
    /// Connections per (mark, upstream) at most.
    public var maxConnections: Int = StreamUpstream.defaultMaxConnections
    public static let defaultMaxConnections = 2

    public init(kind: Kind, endpoint: Endpoint, serverName: String? = nil) {
        self.kind = kind; self.endpoint = endpoint; self.serverName = serverName
    }

    public var isHTTPS: Bool { if case .https = kind { return true } else { return false } }
    /// DoT or DoH (not `.tcp`): only these carry queries the network must not see.
    public var isEncrypted: Bool { if case .tcp = kind { return false } else { return true } }

    /// As it would be written in the config (the query log and metrics name it so).
    public var description: String {
        let scheme: String
        switch kind {
        case .tls: scheme = "tls"
        case .https: scheme = "https"
        case .tcp: scheme = "tcp"
        }
        var s = "\(scheme)://\(endpoint)"
        if case .https(let path) = kind, path != "/dns-query" { s += path }
        if let serverName { s += "#\(serverName)" }
        return s
    }

    /// The `:authority` of DoH requests: the name, else the address (with a port that is
    /// not 443).
    public var authority: String {
        let host = serverName ?? (endpoint.address.isIPv6 ? "[\(endpoint.address)]" : "\(endpoint.address)")
        return endpoint.port == 443 ? host : "\(host):\(endpoint.port)"
    }
}

/// One entry of `--upstream` or a pool's `servers`: plain DNS (`ADDR[:PORT]`, UDP and TCP
/// as the client asked) or an encrypted upstream.
public enum UpstreamAddress: Hashable, Sendable, CustomStringConvertible {
    case plain(Endpoint)
    case secure(StreamUpstream)

    public var endpoint: Endpoint {
        switch self {
        case .plain(let e): return e
        case .secure(let s): return s.endpoint
        }
    }

    public var description: String {
        switch self {
        case .plain(let e): return e.description
        case .secure(let s): return s.description
        }
    }

    public enum ParseError: Error, Equatable, CustomStringConvertible {
        case endpoint(Endpoint.ParseError)
        case badScheme(String)
        case badName(String)
        case badPath(String)
        case nameWithoutTLS(String)

        public var description: String {
            switch self {
            case .endpoint(let e): return e.description
            case .badScheme(let s): return "'\(s)' is not a known scheme: write ADDR[:PORT], tls://ADDR[:PORT][#NAME] or https://ADDR[:PORT][/PATH][#NAME]"
            case .badName(let s): return "'\(s)' is not a host name for the certificate (letters, digits, '-', '.'; at most 253 characters)"
            case .badPath(let s): return "'\(s)' is not an HTTP path (it starts with '/', no spaces, '?' or '#')"
            case .nameWithoutTLS(let s): return "'\(s)': #NAME is only for tls:// and https:// upstreams"
            }
        }
    }

    /// Parses `ADDR[:PORT]` (port 53), `tls://ADDR[:PORT][#NAME]` (853) or
    /// `https://ADDR[:PORT][/PATH][#NAME]` (443, `/dns-query`). The address is a literal:
    /// markdns resolves no names to find its upstreams.
    public static func parse(_ text: String) throws(ParseError) -> UpstreamAddress {
        var rest = Substring(text)
        let scheme: String?
        if let colon = rest.firstIndex(of: ":"), rest[colon...].hasPrefix("://") {
            scheme = String(rest[..<colon]).lowercased()
            rest = rest[rest.index(colon, offsetBy: 3)...]
        } else {
            scheme = nil
        }
        var name: String? = nil
        if let hash = rest.firstIndex(of: "#") {
            name = String(rest[rest.index(after: hash)...])
            rest = rest[..<hash]
        }
        if let name, !Self.isHostName(name) { throw .badName(name) }
        var path = "/dns-query"
        if scheme == "https", let slash = Self.pathStart(rest) {
            path = String(rest[slash...])
            rest = rest[..<slash]
            guard !path.contains(where: { $0 == " " || $0 == "?" || $0 == "%" || $0.asciiValue == nil }) else {
                throw .badPath(path)
            }
        }
        let port: UInt16
        switch scheme {
        case nil:
            guard name == nil else { throw .nameWithoutTLS(text) }
            port = 53
        case "tls": port = 853
        case "https": port = 443
        default: throw .badScheme(scheme ?? "")
        }
        let endpoint: Endpoint
        do { endpoint = try Endpoint.parse(String(rest), defaultPort: port) } catch { throw .endpoint(error) }
        switch scheme {
        case "tls": return .secure(StreamUpstream(kind: .tls, endpoint: endpoint, serverName: name))
        case "https": return .secure(StreamUpstream(kind: .https(path: path), endpoint: endpoint, serverName: name))
        default: return .plain(endpoint)
        }
    }

    /// Where the path starts: the first '/' after the address (a bracketed IPv6 literal may
    /// not contain one; a bare one has no port, so no '/' either).
    private static func pathStart(_ s: Substring) -> Substring.Index? {
        if s.hasPrefix("["), let close = s.firstIndex(of: "]") { return s[close...].firstIndex(of: "/") }
        return s.firstIndex(of: "/")
    }

    /// A DNS host name as a certificate carries it (RFC 1123 labels); no IP literals.
    public static func isHostName(_ s: String) -> Bool {
        let labels = s.split(separator: ".", omittingEmptySubsequences: false)
        guard !s.isEmpty, s.utf8.count <= 253, IPAddress(s) == nil else { return false }
        return labels.allSatisfy { label in
            !label.isEmpty && label.utf8.count <= 63 && !label.hasPrefix("-") && !label.hasSuffix("-")
                && label.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x7A) || $0 == 0x2D }
        }
    }
}
