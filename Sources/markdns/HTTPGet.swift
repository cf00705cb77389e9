import MarkCore
import Observability

#if canImport(Glibc)
import Glibc
#endif

/// A minimal blocking HTTP/1.0 GET over loopback or a LAN (for `markdns top`).
enum HTTPGet {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// The body of a 200 response; anything else throws.
    static func fetch(_ endpoint: Endpoint, path: String, timeoutSeconds: Int = 5) throws -> [UInt8] {
        let v6 = endpoint.address.isIPv6
        let fd = socket(v6 ? AF_INET6 : AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var tv = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let rc = endpoint.withSockaddr { connect(fd, $0, $1) }
        guard rc == 0 else { throw Failure(description: "cannot connect to \(endpoint): \(String(cString: strerror(errno)))") }
        var request = Array("GET \(path) HTTP/1.0\r\nHost: \(endpoint)\r\n\r\n".utf8)
        guard send(fd, &request, request.count, 0) == request.count else {
            throw Failure(description: "cannot send to \(endpoint): \(String(cString: strerror(errno)))")
        }
        var response: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while response.count < 64 << 20 {
            let n = recv(fd, &buf, buf.count, 0)
            if n < 0 { throw Failure(description: "reading from \(endpoint): \(String(cString: strerror(errno)))") }
            if n == 0 { break }
            response += buf[0..<n]
        }
        return try body(of: response, from: endpoint)
    }

    static func body(of response: [UInt8], from endpoint: Endpoint) throws -> [UInt8] {
        let separator: [UInt8] = [13, 10, 13, 10]
        guard let end = (0...max(0, response.count - 4)).first(where: { Array(response[$0..<min($0 + 4, response.count)]) == separator }) else {
            throw Failure(description: "\(endpoint): not an HTTP response")
        }
        let status = String(decoding: response[..<end], as: UTF8.self).split(separator: "\r\n").first ?? ""
        guard status.split(separator: " ").dropFirst().first == "200" else {
            throw Failure(description: "\(endpoint): \(status)")
        }
        return Array(response[(end + 4)...])
    }
}
