import MarkCore
import NIOCore

extension SocketAddress {
    /// The address as a MarkCore endpoint, without going through text. Nil for UNIX sockets.
    var endpoint: Endpoint? {
        switch self {
        case .v4(let a):
            var sin = a.address
            let port = UInt16(bigEndian: sin.sin_port)
            let b = withUnsafeBytes(of: &sin.sin_addr) { Array($0) }
            return Endpoint(address: .v4(b[0], b[1], b[2], b[3]), port: port)
        case .v6(let a):
            var sin6 = a.address
            let port = UInt16(bigEndian: sin6.sin6_port)
            let b = withUnsafeBytes(of: &sin6.sin6_addr) { Array($0) }
            return Endpoint(address: .v6(b), port: port)
        case .unixDomainSocket:
            return nil
        }
    }
}

extension Endpoint {
    var socketAddress: SocketAddress {
        // The text came from a parsed IPAddress, so this cannot fail.
        try! SocketAddress(ipAddress: address.description, port: Int(port))
    }
}
