#if canImport(Glibc)
import Glibc
#endif

/// A blocking HTTP/1.0 request on the session control socket (a UNIX socket).
enum ControlClient {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// The status and body of the answer.
    static func request(socket path: String, method: String, uri: String, timeoutSeconds: Int = 30) throws -> (status: Int, body: String) {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var tv = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else { throw Failure(description: "socket path too long: \(path)") }
        withUnsafeMutableBytes(of: &addr.sun_path) { p in
            for (i, b) in bytes.enumerated() { p[i] = b }
        }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard rc == 0 else {
            throw Failure(description: "cannot connect to the control socket \(path): \(String(cString: strerror(errno))) (is `markdns serve` running with sessions?)")
        }
        var req = Array("\(method) \(uri) HTTP/1.0\r\nHost: markdns\r\nContent-Length: 0\r\n\r\n".utf8)
        guard send(fd, &req, req.count, Int32(MSG_NOSIGNAL)) == req.count else {
            throw Failure(description: "cannot send to \(path): \(String(cString: strerror(errno)))")
        }
        var response: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = recv(fd, &buf, buf.count, 0)
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { break }
            response += buf[0..<n]
        }
        let sep: [UInt8] = [13, 10, 13, 10]
        guard let end = response.indices.first(where: { response[$0...].starts(with: sep) }) else {
            throw Failure(description: "no answer from \(path)")
        }
        let head = String(decoding: response[..<end], as: UTF8.self)
        let statusLine = head.split(whereSeparator: { $0 == "\r\n" || $0 == "\n" }).first ?? ""
        let parts = statusLine.split(separator: " ")
        guard parts.count >= 2, let status = Int(parts[1]) else { throw Failure(description: "bad answer from \(path): \(statusLine)") }
        return (status, String(decoding: response[(end + 4)...], as: UTF8.self))
    }
}
