/// The question of a message (RFC 1035 section 4.1.2).
public struct DNSQuestion: Hashable, Sendable, CustomStringConvertible {
    public var name: DNSName
    public var type: UInt16
    public var qclass: UInt16

    public init(name: DNSName, type: UInt16, qclass: UInt16 = 1) {
        self.name = name; self.type = type; self.qclass = qclass
    }

    public var description: String { "\(name) type\(type) class\(qclass)" }

    static func read(from reader: inout WireReader) throws(DNSWireError) -> DNSQuestion {
        let name = try DNSName.read(from: &reader)
        return DNSQuestion(name: name, type: try reader.u16(), qclass: try reader.u16())
    }

    /// Appends the question uncompressed.
    public func write(into out: inout [UInt8]) {
        out.append(contentsOf: name.wire)
        out.appendBE(type)
        out.appendBE(qclass)
    }
}

/// What the EDNS0 OPT pseudo-record of a message says (RFC 6891), and where its
/// UDP payload size field sits so a forwarder can rewrite it in place.
public struct EDNSInfo: Equatable, Sendable {
    /// Byte offset of the OPT record's CLASS field (the requestor's UDP payload size).
    public var payloadSizeOffset: Int
    public var payloadSize: UInt16
    public var version: UInt8
    public var dnssecOK: Bool
    /// Bytes of EDNS options (cookies, client subnet, ...) in the OPT record; 0 for none.
    public var optionsLength: Int = 0
}
