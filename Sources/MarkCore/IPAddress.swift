#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// An IPv4 or IPv6 address as raw network-order bytes.
public enum IPAddress: Hashable, Sendable, CustomStringConvertible {
    case v4(UInt8, UInt8, UInt8, UInt8)
    case v6(IPv6Bytes)

    /// Parses dotted-quad IPv4 or RFC 4291 IPv6 text (no brackets, no zone).
    public init?(_ text: String) {
        if text.contains(":") {
            var a = in6_addr()
            guard inet_pton(AF_INET6, text, &a) == 1 else { return nil }
            self = .v6(IPv6Bytes(raw: a))
        } else {
            var a = in_addr()
            guard inet_pton(AF_INET, text, &a) == 1 else { return nil }
            let b = Swift.withUnsafeBytes(of: &a) { Array($0) }
            self = .v4(b[0], b[1], b[2], b[3])
        }
    }

    public init?(bytes: [UInt8]) {
        switch bytes.count {
        case 4: self = .v4(bytes[0], bytes[1], bytes[2], bytes[3])
        case 16: self = .v6(IPv6Bytes(bytes)!)
        default: return nil
        }
    }

    /// The address bytes, without building an array (v4: a stack tuple).
    @inlinable
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        switch self {
        case let .v4(a, b, c, d):
            let t = (a, b, c, d)
            return try Swift.withUnsafeBytes(of: t) { try body($0) }
        case let .v6(bytes):
            return try bytes.withUnsafeBytes { try body($0) }
        }
    }

    public var bytes: [UInt8] {
        switch self {
        case let .v4(a, b, c, d): return [a, b, c, d]
        case let .v6(b): return Array(b)
        }
    }

    /// One word for an IPv4 address, two for IPv6 (the two never compare equal, so no
    /// case tag is needed). The synthesized hash fed the tag and each of four bytes to
    /// the hasher apart: an address is hashed several times per query (per-client limits,
    /// upstream health, the upstream socket pool).
    public func hash(into hasher: inout Hasher) {
        switch self {
        case let .v4(a, b, c, d):
            hasher.combine(UInt32(a) << 24 | UInt32(b) << 16 | UInt32(c) << 8 | UInt32(d))
        case let .v6(bytes):
            hasher.combine(bytes)
        }
    }

    public var isIPv6: Bool { if case .v6 = self { return true } else { return false } }

    /// True for 0.0.0.0 and ::.
    public var isUnspecified: Bool { bytes.allSatisfy { $0 == 0 } }

    public var description: String {
        switch self {
        case let .v4(a, b, c, d): return "\(a).\(b).\(c).\(d)"
        case let .v6(b):
            var a = in6_addr()
            withUnsafeMutableBytes(of: &a) { $0.copyBytes(from: b) }
            var buf = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
            guard inet_ntop(AF_INET6, &a, &buf, socklen_t(buf.count)) != nil else { return "?" }
            return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
    }
}
