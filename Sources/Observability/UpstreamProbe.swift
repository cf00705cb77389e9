import Dispatch
import Logging
import MarkCore
import MarkStats

#if canImport(Glibc)
import Glibc
#endif

/// Start-up health: one query (`. NS`, UDP, unmarked) to each upstream, in the
/// background; each answers or not within `timeout`, and the result is logged.
public enum UpstreamProbe {
    public enum Result: Equatable, Sendable {
        case answered(rcode: UInt8, seconds: Double)
        case failed(String)
    }

    public static func start(_ upstreams: [Endpoint], timeout: Double = 2, logger: Logger) {
        for upstream in Set(upstreams).sorted(by: { $0.description < $1.description }) {
            DispatchQueue.global().async {
                switch probe(upstream, timeout: timeout) {
                case .answered(let rcode, let s):
                    logger.info("upstream \(upstream) reachable: answered the probe (\(QueryEvent.rcodeName(rcode))) in \(Int(s * 1000)) ms")
                case .failed(let why):
                    logger.warning("upstream \(upstream) did not answer the start-up probe: \(why)")
                }
            }
        }
    }

    /// Blocking: call it off any event loop.
    public static func probe(_ upstream: Endpoint, timeout: Double) -> Result {
        let v6 = upstream.address.isIPv6
        let fd = socket(v6 ? AF_INET6 : AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return .failed(String(cString: strerror(errno))) }
        defer { close(fd) }
        let connected = upstream.withSockaddr { connect(fd, $0, $1) }
        guard connected == 0 else { return .failed(String(cString: strerror(errno))) }
        let id = UInt16.random(in: 0...UInt16.max)
        // Header: ID, RD, one question; then the root name, type NS, class IN.
        var query: [UInt8] = [UInt8(id >> 8), UInt8(id & 0xFF), 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 1]
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        let start = Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
        guard send(fd, &query, query.count, 0) == query.count else { return .failed(String(cString: strerror(errno))) }
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            clock_gettime(CLOCK_MONOTONIC, &ts)
            let now = Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
            let left = timeout - (now - start)
            guard left > 0 else { return .failed("no answer within \(Int(timeout * 1000)) ms") }
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&pfd, 1, Int32(left * 1000) + 1)
            if ready < 0 && errno == EINTR { continue }
            guard ready > 0 else { continue }
            let n = recv(fd, &buf, buf.count, 0)
            if n < 0 { return .failed(String(cString: strerror(errno))) }
            if n >= 12, buf[0] == query[0], buf[1] == query[1], buf[2] & 0x80 != 0 {
                return .answered(rcode: buf[3] & 0x0F, seconds: now - start)
            }
        }
    }
}
