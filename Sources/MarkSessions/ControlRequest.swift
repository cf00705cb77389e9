/// The control API's requests (HTTP/1 on the control socket), parsed from method and URI.
/// Arguments travel in the query string (`POST /login?client=192.0.2.7&mark=guest&for=2h`),
/// so the daemon never parses JSON; answers are JSON (`JSONText`).
public enum ControlRequest: Sendable, Equatable {
    case login(client: SessionClient, mark: String, user: String?, duration: UInt32?)
    case logout(SessionClient)
    case list(text: Bool)
    case show(SessionClient)

    public struct Refusal: Error, Equatable, Sendable, CustomStringConvertible {
        /// HTTP status: 400 for a bad argument, 404 for an unknown path, 405 for a method.
        public let status: Int
        public let description: String
    }

    public static func parse(method: String, uri: String) -> Result<ControlRequest, Refusal> {
        let (path, query) = split(uri)
        func client(_ q: [String: String]) -> Result<SessionClient, Refusal> {
            guard let c = q["client"] else { return .failure(Refusal(status: 400, description: "client is required")) }
            return SessionClient.parse(c).mapError { Refusal(status: 400, description: $0.description) }
        }
        switch (method, path) {
        case ("POST", "/login"):
            guard let q = query else { return .failure(Refusal(status: 400, description: "bad query string")) }
            guard let mark = q["mark"] else { return .failure(Refusal(status: 400, description: "mark is required")) }
            var duration: UInt32? = nil
            if let d = q["for"] {
                switch SessionDuration.parse(d) {
                case .success(let s): duration = s
                case .failure(let e): return .failure(Refusal(status: 400, description: e.description))
                }
            }
            return client(q).map { .login(client: $0, mark: mark, user: q["user"], duration: duration) }
        case ("POST", "/logout"):
            guard let q = query else { return .failure(Refusal(status: 400, description: "bad query string")) }
            return client(q).map { .logout($0) }
        case ("GET", "/sessions"):
            return .success(.list(text: query?["format"] == "text"))
        case ("GET", "/session"):
            guard let q = query else { return .failure(Refusal(status: 400, description: "bad query string")) }
            return client(q).map { .show($0) }
        case (_, "/login"), (_, "/logout"), (_, "/sessions"), (_, "/session"):
            return .failure(Refusal(status: 405, description: "\(method) is not allowed on \(path)"))
        default:
            return .failure(Refusal(status: 404, description: "no such path: \(path)"))
        }
    }

    /// The URI of a request, its arguments percent-encoded.
    public static func uri(_ path: String, _ args: [(String, String?)]) -> String {
        let q = args.compactMap { k, v in v.map { "\(k)=\(percentEncode($0))" } }
        return q.isEmpty ? path : path + "?" + q.joined(separator: "&")
    }

    static func split(_ uri: String) -> (String, [String: String]?) {
        guard let i = uri.firstIndex(of: "?") else { return (uri, [:]) }
        var out: [String: String] = [:]
        for pair in uri[uri.index(after: i)...].split(separator: "&") {
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard kv.count == 2, let k = percentDecode(kv[0]), let v = percentDecode(kv[1]) else { return (String(uri[..<i]), nil) }
            out[k] = v
        }
        return (String(uri[..<i]), out)
    }

    static func percentEncode(_ s: String) -> String {
        var out = ""
        for b in s.utf8 {
            let c = Unicode.Scalar(b)
            if c.properties.isAlphabetic && b < 0x80 || (0x30...0x39).contains(b) || "-._~:".unicodeScalars.contains(c) {
                out.unicodeScalars.append(c)
            } else {
                let h = String(b, radix: 16, uppercase: true)
                out += "%" + (h.count == 1 ? "0" + h : h)
            }
        }
        return out
    }

    static func percentDecode(_ s: Substring) -> String? {
        var bytes: [UInt8] = []
        var u = s.utf8.makeIterator()
        while let b = u.next() {
            if b == UInt8(ascii: "%") {
                guard let h = u.next(), let l = u.next(), let v = UInt8(String(decoding: [h, l], as: UTF8.self), radix: 16) else { return nil }
                bytes.append(v)
            } else if b == UInt8(ascii: "+") {
                bytes.append(0x20)
            } else {
                bytes.append(b)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }
}

/// `markdns session list` as text: one line per session.
public enum SessionTable {
    /// `traffic`: per-user bytes and packets by client (range marks only).
    public static func render(_ list: [Session], now: Int64, traffic: [String: JSONText.Traffic] = [:]) -> String {
        guard !list.isEmpty else { return "no sessions\n" }
        var out = "CLIENT                                   MARK             VALUE       USER             REMAINING"
            + (traffic.isEmpty ? "" : "   BYTES        PACKETS") + "\n"
        for s in list {
            out += pad(s.client.description, 41) + pad(s.markName, 17) + pad(hex(s.mark), 12)
                + pad(s.user ?? "-", 17)
            if traffic.isEmpty { out += SessionDuration.format(s.remaining(at: now)) } else {
                let t = traffic[s.client.description]
                out += pad(SessionDuration.format(s.remaining(at: now)), 12) + pad(t.map { "\($0.bytes)" } ?? "-", 13) + (t.map { "\($0.packets)" } ?? "-")
            }
            out += "\n"
        }
        return out
    }

    private static func pad(_ s: String, _ n: Int) -> String {
        s.count >= n ? s + " " : s + String(repeating: " ", count: n - s.count)
    }
}
