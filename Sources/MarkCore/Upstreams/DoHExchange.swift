/// DNS over HTTPS (RFC 8484) as data: the HTTP/2 request for a query and what a response
/// means. The shell turns the headers into an HTTP/2 HEADERS frame and back.
public enum DoHExchange {
    public static let mediaType = "application/dns-message"

    public struct Request: Equatable, Sendable {
        /// Pseudo-headers first, in the order HTTP/2 requires them before the others.
        public var headers: [(String, String)]
        /// The DNS message for POST; empty for GET.
        public var body: [UInt8]

        public static func == (a: Request, b: Request) -> Bool {
            a.body == b.body && a.headers.map(\.0) == b.headers.map(\.0) && a.headers.map(\.1) == b.headers.map(\.1)
        }
    }

    /// The request for `query` (its ID already 0, RFC 8484 4.1, so answers are cacheable).
    public static func request(for query: [UInt8], upstream: StreamUpstream) -> Request {
        let path: String
        if case .https(let p) = upstream.kind { path = p } else { path = "/dns-query" }
        switch upstream.method {
        case .post:
            return Request(headers: [(":method", "POST"), (":scheme", "https"), (":authority", upstream.authority),
                                     (":path", path), ("accept", mediaType), ("content-type", mediaType),
                                     ("content-length", String(query.count))],
                           body: query)
        case .get:
            let sep = path.contains("?") ? "&" : "?"
            return Request(headers: [(":method", "GET"), (":scheme", "https"), (":authority", upstream.authority),
                                     (":path", path + sep + "dns=" + Base64URL.encode(query)),
                                     ("accept", mediaType)],
                           body: [])
        }
    }

    public enum Outcome: Equatable, Sendable {
        /// A DNS message to check like any other answer.
        case answer([UInt8])
        /// Not a DNS answer: a status other than 2xx, another media type, an empty or
        /// oversized body. The attempt fails over.
        case httpError(String)
    }

    /// What a response (its `:status`, `content-type` and body) means.
    public static func outcome(status: String?, contentType: String?, body: [UInt8]) -> Outcome {
        guard let status, status.count == 3, status.hasPrefix("2") else { return .httpError("HTTP status \(status ?? "none")") }
        let type = contentType.map { $0.split(separator: ";").first.map(String.init) ?? "" }?
            .trimmingASCIISpaces().lowercased()
        guard type == mediaType else { return .httpError("content-type \(contentType ?? "none"), not \(mediaType)") }
        guard body.count >= 12, body.count <= 65535 else { return .httpError("a body of \(body.count) bytes is no DNS message") }
        return .answer(body)
    }
}

extension String {
    func trimmingASCIISpaces() -> String {
        var s = Substring(self)
        while s.first == " " || s.first == "\t" { s = s.dropFirst() }
        while s.last == " " || s.last == "\t" { s = s.dropLast() }
        return String(s)
    }
}
