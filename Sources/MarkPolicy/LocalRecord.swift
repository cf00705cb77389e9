import MarkCore

/// A resource record markdns answers from its own data (static records, hosts files).
public struct LocalRecord: Sendable, Hashable {
    /// Lower-case uncompressed wire name of the owner.
    public let owner: [UInt8]
    public let type: UInt16
    /// RDATA in wire form (names uncompressed).
    public let rdata: [UInt8]

    public init(owner: [UInt8], type: UInt16, rdata: [UInt8]) {
        self.owner = owner; self.type = type; self.rdata = rdata
    }

    public static let types: [String: UInt16] = ["A": 1, "NS": 2, "CNAME": 5, "PTR": 12, "MX": 15, "TXT": 16,
                                                 "AAAA": 28, "SRV": 33]
    public static let typeCNAME: UInt16 = 5
    public static let typePTR: UInt16 = 12

    /// Parses a record written as in a zone file, without TTL or class:
    /// `router.lan A 192.168.1.1`, `nas.lan CNAME router.lan`, `lan MX 10 mail.lan`,
    /// `_sip._udp.lan SRV 0 5 5060 pbx.lan`, `info.lan TXT "hello world"`.
    public static func parse(_ text: String) -> Result<LocalRecord, DomainName.NameError> {
        let fields = text.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        guard fields.count >= 3 else { return .failure(.init("'\(text)': expected NAME TYPE VALUE")) }
        guard let owner = DomainSet.wire(fromText: fields[0]), owner != [0],
              case .success = DomainName.normalize(fields[0]) else {
            return .failure(.init("'\(fields[0])' is not a domain name"))
        }
        guard let type = types[fields[1].uppercased()] else {
            return .failure(.init("type '\(fields[1])' is not supported (\(types.keys.sorted().joined(separator: ", ")))"))
        }
        let value = Array(fields[2...])
        func name(_ s: String) -> [UInt8]? {
            guard case .success = DomainName.normalize(s) else { return nil }
            return DomainSet.wire(fromText: s)
        }
        func u16(_ s: String) -> [UInt8]? { UInt16(s).map { [UInt8($0 >> 8), UInt8($0 & 0xFF)] } }
        let rdata: [UInt8]?
        switch type {
        case 1: rdata = value.count == 1 ? IPAddress(value[0]).flatMap { $0.isV4 ? $0.bytes : nil } : nil
        case 28: rdata = value.count == 1 ? IPAddress(value[0]).flatMap { $0.isV4 ? nil : $0.bytes } : nil
        case 2, 5, 12: rdata = value.count == 1 ? name(value[0]) : nil
        case 15:
            rdata = value.count == 2 ? u16(value[0]).flatMap { p in name(value[1]).map { p + $0 } } : nil
        case 33:
            if value.count == 4, let a = u16(value[0]), let b = u16(value[1]), let c = u16(value[2]), let n = name(value[3]) {
                rdata = a + b + c + n
            } else {
                rdata = nil
            }
        default:  // TXT: the rest of the line, quotes optional; one string per 255 bytes.
            var t = value.joined(separator: " ")
            if t.count >= 2, t.hasPrefix("\""), t.hasSuffix("\"") { t = String(t.dropFirst().dropLast()) }
            let bytes = Array(t.utf8)
            var out: [UInt8] = []
            var i = 0
            repeat {
                let chunk = bytes[i..<min(i + 255, bytes.count)]
                out.append(UInt8(chunk.count))
                out += chunk
                i += 255
            } while i < bytes.count
            rdata = out.count <= 4096 ? out : nil
        }
        guard let rdata else { return .failure(.init("'\(value.joined(separator: " "))' is not a valid \(fields[1].uppercased()) value")) }
        return .success(LocalRecord(owner: owner, type: type, rdata: rdata))
    }
}

extension IPAddress {
    var isV4: Bool { if case .v4 = self { true } else { false } }

    /// The reverse-lookup name (`4.3.2.1.in-addr.arpa`, nibbles under `ip6.arpa`).
    public var reverseName: String {
        switch self {
        case let .v4(a, b, c, d): return "\(d).\(c).\(b).\(a).in-addr.arpa"
        case let .v6(bytes):
            let digits = Array("0123456789abcdef")
            var labels: [String] = []
            for byte in bytes.reversed() {
                labels.append(String(digits[Int(byte & 0xF)]))
                labels.append(String(digits[Int(byte >> 4)]))
            }
            return labels.joined(separator: ".") + ".ip6.arpa"
        }
    }
}
