/// A bounds-checked cursor over untrusted bytes. Every read checks the end first.
struct WireReader {
    let bytes: UnsafeRawBufferPointer
    var offset: Int

    init(_ bytes: UnsafeRawBufferPointer, offset: Int = 0) {
        self.bytes = bytes
        self.offset = offset
    }

    var remaining: Int { bytes.count - offset }

    mutating func u8() throws(DNSWireError) -> UInt8 {
        guard offset < bytes.count else { throw .truncated }
        defer { offset += 1 }
        return bytes[offset]
    }

    mutating func u16() throws(DNSWireError) -> UInt16 {
        guard bytes.count - offset >= 2 else { throw .truncated }
        defer { offset += 2 }
        return UInt16(bytes[offset]) << 8 | UInt16(bytes[offset + 1])
    }

    mutating func u32() throws(DNSWireError) -> UInt32 {
        let hi = try u16()
        let lo = try u16()
        return UInt32(hi) << 16 | UInt32(lo)
    }

    mutating func skip(_ n: Int) throws(DNSWireError) {
        guard n >= 0, bytes.count - offset >= n else { throw .truncated }
        offset += n
    }

    mutating func header() throws(DNSWireError) -> DNSHeader {
        guard bytes.count - offset >= DNSHeader.size else { throw .truncatedHeader }
        return DNSHeader(id: try u16(), flags: try u16(), qdcount: try u16(),
                         ancount: try u16(), nscount: try u16(), arcount: try u16())
    }
}
