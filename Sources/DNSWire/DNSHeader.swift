/// The fixed 12-byte DNS header (RFC 1035 section 4.1.1).
public struct DNSHeader: Equatable, Sendable {
    public var id: UInt16
    public var flags: UInt16
    public var qdcount: UInt16
    public var ancount: UInt16
    public var nscount: UInt16
    public var arcount: UInt16

    public static let size = 12

    public init(id: UInt16, flags: UInt16, qdcount: UInt16 = 0, ancount: UInt16 = 0,
                nscount: UInt16 = 0, arcount: UInt16 = 0) {
        self.id = id; self.flags = flags; self.qdcount = qdcount
        self.ancount = ancount; self.nscount = nscount; self.arcount = arcount
    }

    public var isResponse: Bool { flags & 0x8000 != 0 }
    public var opcode: UInt8 { UInt8((flags >> 11) & 0x0F) }
    public var isTruncated: Bool { flags & 0x0200 != 0 }
    public var recursionDesired: Bool { flags & 0x0100 != 0 }
    public var rcode: UInt8 { UInt8(flags & 0x000F) }
    /// CD: the client does its own DNSSEC validation (RFC 4035).
    public var checkingDisabled: Bool { flags & 0x0010 != 0 }

    /// Appends the header in network byte order.
    public func write(into out: inout [UInt8]) {
        out.appendBE(id); out.appendBE(flags); out.appendBE(qdcount)
        out.appendBE(ancount); out.appendBE(nscount); out.appendBE(arcount)
    }
}

/// Response codes used by the forwarder (RFC 1035, RFC 6895).
public enum DNSRcode: UInt8, Sendable {
    case noError = 0, formErr = 1, servFail = 2, nxDomain = 3, notImp = 4, refused = 5
}

public enum DNSOpcode {
    public static let query: UInt8 = 0
}

public enum DNSType {
    public static let a: UInt16 = 1
    public static let ns: UInt16 = 2
    public static let soa: UInt16 = 6
    public static let ptr: UInt16 = 12
    public static let aaaa: UInt16 = 28
    public static let opt: UInt16 = 41
}
