import MarkCore

#if canImport(Glibc)
import Glibc
#endif

extension Endpoint {
    /// Calls `body` with this endpoint as a `sockaddr_in`/`sockaddr_in6` (for plain
    /// blocking sockets outside NIO: the start-up probe, `markdns top`).
    public func withSockaddr<R>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
        let bytes = address.bytes
        if address.isIPv6 {
            var sa = sockaddr_in6()
            sa.sin6_family = sa_family_t(AF_INET6)
            sa.sin6_port = port.bigEndian
            withUnsafeMutableBytes(of: &sa.sin6_addr) { $0.copyBytes(from: bytes) }
            return Self.call(&sa, body)
        }
        var sa = sockaddr_in()
        sa.sin_family = sa_family_t(AF_INET)
        sa.sin_port = port.bigEndian
        withUnsafeMutableBytes(of: &sa.sin_addr) { $0.copyBytes(from: bytes) }
        return Self.call(&sa, body)
    }

    private static func call<S, R>(_ sa: inout S, _ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
        withUnsafePointer(to: &sa) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<S>.size)) }
        }
    }
}
