extension [UInt8] {
    /// Appends `v` in network byte order.
    @inline(__always)
    mutating func appendBE(_ v: UInt16) {
        append(UInt8(v >> 8)); append(UInt8(v & 0xFF))
    }

    @inline(__always)
    mutating func appendBE(_ v: UInt32) {
        appendBE(UInt16(v >> 16)); appendBE(UInt16(v & 0xFFFF))
    }
}
