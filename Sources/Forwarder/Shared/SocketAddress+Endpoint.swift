import MarkCore
import NIOCore

#if canImport(Glibc)
import Glibc
#endif

extension SocketAddress {
    /// The address as a MarkCore endpoint, without going through text. Nil for UNIX sockets.
    var endpoint: Endpoint? {
        switch self {
        case .v4(let a):
            return Endpoint(a.address)
        case .v6(let a):
            return Endpoint(a.address)
        case .unixDomainSocket:
            return nil
        }
    }
}

extension Endpoint {
    /// From a kernel socket address (NIO's, or one recvmmsg filled in).
    init(_ sin: sockaddr_in) {
        let a = withUnsafeBytes(of: sin.sin_addr) { ($0[0], $0[1], $0[2], $0[3]) }  // network order
        self.init(address: .v4(a.0, a.1, a.2, a.3), port: UInt16(bigEndian: sin.sin_port))
    }

    init(_ sin6: sockaddr_in6) {
        self.init(address: .v6(IPv6Bytes(raw: sin6.sin6_addr)), port: UInt16(bigEndian: sin6.sin6_port))
    }

    var socketAddress: SocketAddress {
        // The text came from a parsed IPAddress, so this cannot fail.
        try! SocketAddress(ipAddress: address.description, port: Int(port))
    }
}
