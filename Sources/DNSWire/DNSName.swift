/// A domain name in uncompressed wire form (length-prefixed labels, ending with the root
/// label), as it was received: case is preserved. Equality and hashing ignore ASCII case
/// (RFC 4343), so `Example.COM` and `example.com` are the same name.
public struct DNSName: Sendable, CustomStringConvertible {
    /// Uncompressed wire bytes, including the final zero-length root label.
    public let wire: [UInt8]

    public static let maxWireLength = 255
    public static let maxLabelLength = 63
    /// Bound on compression pointers followed in one name. A legal name has at most 127
    /// labels, so a chain longer than that is a loop or an attack.
    static let maxPointerHops = 127

    public static let root = DNSName(uncheckedWire: [0])

    init(uncheckedWire: [UInt8]) { self.wire = uncheckedWire }

    /// Builds a name from dotted text ("www.example.com" or "www.example.com.").
    /// Returns nil for empty labels (other than the root), over-long labels or names.
    public init?(_ text: String) {
        var out: [UInt8] = []
        let trimmed = text.hasSuffix(".") ? String(text.dropLast()) : text
        if !trimmed.isEmpty {
            for label in trimmed.split(separator: ".", omittingEmptySubsequences: false) {
                let bytes = Array(label.utf8)
                guard !bytes.isEmpty, bytes.count <= DNSName.maxLabelLength else { return nil }
                out.append(UInt8(bytes.count)); out.append(contentsOf: bytes)
            }
        }
        out.append(0)
        guard out.count <= DNSName.maxWireLength else { return nil }
        self.wire = out
    }

    /// Dotted text; bytes outside printable ASCII and dots inside labels are escaped as \DDD.
    public var description: String {
        if wire == [0] { return "." }
        var s = ""
        var i = 0
        while i < wire.count, wire[i] != 0 {
            let len = Int(wire[i])
            for b in wire[(i + 1)...(i + len)] {
                if b > 0x20 && b < 0x7F && b != UInt8(ascii: ".") && b != UInt8(ascii: "\\") {
                    s.unicodeScalars.append(Unicode.Scalar(b))
                } else {
                    let d = String(b)
                    s += "\\" + String(repeating: "0", count: 3 - d.count) + d
                }
            }
            s += "."
            i += len + 1
        }
        return s
    }

    /// Reads a possibly compressed name at the reader's offset and leaves the reader just
    /// past the name's bytes at that position (not past pointer targets).
    /// The labels are gathered on the stack, then copied into an array of exactly the
    /// name's length: one allocation per name, whatever its length.
    static func read(from reader: inout WireReader) throws(DNSWireError) -> DNSName {
        // Fast path: a name without compression pointers (every question of a query, and
        // of an answer, since nothing before it can be pointed to) is copied as it lies.
        if let end = uncompressedEnd(reader.bytes, from: reader.offset) {
            let name = DNSName(uncheckedWire: Array(reader.bytes[reader.offset..<end]))
            reader.offset = end
            return name
        }
        let result = withUnsafeTemporaryAllocation(of: UInt8.self, capacity: maxWireLength) { buffer in
            Result { () throws(DNSWireError) -> DNSName in
                var count = 0
                // `walk` enforces maxWireLength, so the labels and the root byte fit.
                try walk(reader: &reader) { label in
                    UnsafeMutableRawBufferPointer(rebasing: UnsafeMutableRawBufferPointer(buffer)[count..<(count + label.count)])
                        .copyMemory(from: label)
                    count += label.count
                }
                buffer[count] = 0
                return DNSName(uncheckedWire: Array(buffer[0...count]))
            }
        }
        return try result.get()
    }

    /// The end (just past the root label) of a valid name at `start` that uses no
    /// compression pointer; nil for anything else (a pointer, a bad label, a name too
    /// long or cut off), which the general walk then reads or rejects.
    @inline(__always)
    static func uncompressedEnd(_ bytes: UnsafeRawBufferPointer, from start: Int) -> Int? {
        var pos = start
        let limit = min(bytes.count, start + maxWireLength)
        while pos < limit {
            let len = Int(bytes[pos])
            if len == 0 { return pos + 1 }
            guard len <= maxLabelLength else { return nil }
            pos += 1 + len
        }
        return nil
    }

    /// Validates a name without building it.
    static func skip(from reader: inout WireReader) throws(DNSWireError) {
        try walk(reader: &reader) { _ in }
    }

    /// Validates a name and reports every byte range it reads through a compression
    /// pointer (labels, the root label, further pointers): bytes elsewhere in the message
    /// that a rewrite of those bytes would change the name of.
    static func skip(from reader: inout WireReader, visitingPointedTo visit: (Range<Int>) -> Void) throws(DNSWireError) {
        try walk(reader: &reader, visitPointedTo: visit) { _ in }
    }

    /// Walks the labels of a name, calling `body` with each label's wire bytes (length
    /// byte included). Enforces label and name length limits. Every compression pointer
    /// must point strictly before itself, and once a pointer is followed every later byte
    /// of the name must lie before that pointer: positions only ever move backwards across
    /// jumps, so loops are impossible and a name never reads bytes past where it started.
    /// A pointer into the 12-byte header is rejected: the header holds no names, and a name
    /// read from the ID would change whenever a forwarder rewrites the ID (found by fuzzing).
    private static func walk(reader: inout WireReader, visitPointedTo: (Range<Int>) -> Void = { _ in },
                             _ body: (UnsafeRawBufferPointer) -> Void) throws(DNSWireError) {
        let bytes = reader.bytes
        var pos = reader.offset
        var limit = bytes.count      // bytes of this name lie before `limit`
        var endAfterName: Int? = nil
        var wireLength = 1  // the root label
        var hops = 0
        while true {
            guard pos < limit else { throw endAfterName == nil ? .truncated : .badPointer }
            let len = bytes[pos]
            switch len & 0xC0 {
            case 0x00:
                if len == 0 {
                    if endAfterName != nil { visitPointedTo(pos..<(pos + 1)) }
                    reader.offset = endAfterName ?? (pos + 1)
                    return
                }
                let l = Int(len)
                guard pos + 1 + l <= limit else {
                    throw endAfterName == nil ? .truncated : .badPointer
                }
                wireLength += l + 1
                guard wireLength <= maxWireLength else { throw .nameTooLong }
                if endAfterName != nil { visitPointedTo(pos..<(pos + 1 + l)) }
                body(UnsafeRawBufferPointer(rebasing: bytes[pos..<(pos + 1 + l)]))
                pos += 1 + l
            case 0xC0:
                guard pos + 1 < limit else { throw endAfterName == nil ? .truncated : .badPointer }
                let target = Int(len & 0x3F) << 8 | Int(bytes[pos + 1])
                guard target >= DNSHeader.size, target < pos, hops < maxPointerHops else { throw .badPointer }
                if endAfterName != nil { visitPointedTo(pos..<(pos + 2)) }
                hops += 1
                if endAfterName == nil { endAfterName = pos + 2 }
                limit = pos
                pos = target
            default:
                throw .badLabel  // 0x40 (extended) and 0x80 (reserved) label types
            }
        }
    }
}

extension DNSName: Hashable {
    public static func == (lhs: DNSName, rhs: DNSName) -> Bool {
        lhs.wire.withUnsafeBytes { l in rhs.wire.withUnsafeBytes { r in equalIgnoringCase(l, r) } }
    }

    /// Whether two byte strings (such as uncompressed wire names) are equal ignoring
    /// ASCII case (RFC 4343).
    public static func equalIgnoringCase(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
        guard a.count == b.count else { return false }
        // Fast path: the same bytes, eight at a time (a follower or a cache lookup usually
        // asks in the same case); only a difference needs the byte-wise folded compare.
        var i = 0
        while i + 8 <= a.count,
              a.loadUnaligned(fromByteOffset: i, as: UInt64.self) == b.loadUnaligned(fromByteOffset: i, as: UInt64.self) {
            i += 8
        }
        for i in i..<a.count where asciiLower(a[i]) != asciiLower(b[i]) {
            return false
        }
        return true
    }

    /// Hashes the lower-cased bytes in one go (a stack copy; names are at most 255 bytes).
    public func hash(into hasher: inout Hasher) {
        wire.withUnsafeBufferPointer { w in
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: w.count) { lower in
                for i in 0..<w.count { lower[i] = asciiLower(w[i]) }
                hasher.combine(bytes: UnsafeRawBufferPointer(lower))
            }
        }
    }
}

@inline(__always)
func asciiLower(_ b: UInt8) -> UInt8 {
    (b >= 0x41 && b <= 0x5A) ? b | 0x20 : b
}
