/// The 16 bytes of an IPv6 address, in network order, held inline (two words): no heap
/// allocation per address, as a `[UInt8]` cost for every datagram from an IPv6 client, and
/// equality and hashing of two words instead of an array.
public struct IPv6Bytes: Hashable, Sendable, RandomAccessCollection {
    /// The bytes as they lie in memory (not numeric values): `withUnsafeBytes` sees them
    /// in network order.
    private var storage: (UInt64, UInt64)

    /// From exactly 16 bytes (nil otherwise).
    public init?(_ bytes: some Collection<UInt8>) {
        guard bytes.count == 16 else { return nil }
        storage = (0, 0)
        Swift.withUnsafeMutableBytes(of: &storage) { $0.copyBytes(from: bytes) }
    }

    /// From a kernel address (`in6_addr`) or any other 16-byte value.
    public init<T>(raw value: T) {
        precondition(MemoryLayout<T>.size == 16, "an IPv6 address is 16 bytes")
        storage = (0, 0)
        Swift.withUnsafeMutableBytes(of: &storage) { dst in
            Swift.withUnsafeBytes(of: value) { dst.copyMemory(from: $0) }
        }
    }

    /// ::
    public static let zero = IPv6Bytes(raw: (UInt64(0), UInt64(0)))

    public var startIndex: Int { 0 }
    public var endIndex: Int { 16 }

    public subscript(i: Int) -> UInt8 {
        precondition(i >= 0 && i < 16, "IPv6 byte index out of range")
        return Swift.withUnsafeBytes(of: storage) { $0[i] }
    }

    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try Swift.withUnsafeBytes(of: storage) { try body($0) }
    }

    public static func == (a: IPv6Bytes, b: IPv6Bytes) -> Bool {
        a.storage.0 == b.storage.0 && a.storage.1 == b.storage.1
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(storage.0)
        hasher.combine(storage.1)
    }
}
