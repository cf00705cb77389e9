@_exported import TestSupport
import DNSWire

// Hand-rolled wire encoding helpers. They deliberately do not use any DNSWire writer, so
// the tests check the parser against an independent encoding.

func be16(_ v: UInt16) -> [UInt8] { [UInt8(v >> 8), UInt8(v & 0xFF)] }
func be32(_ v: UInt32) -> [UInt8] { be16(UInt16(v >> 16)) + be16(UInt16(v & 0xFFFF)) }

/// Uncompressed wire name from labels (root label appended).
func wireName(_ labels: [String]) -> [UInt8] {
    var out: [UInt8] = []
    for l in labels {
        let b = Array(l.utf8)
        out.append(UInt8(b.count)); out += b
    }
    out.append(0)
    return out
}

func wireName(_ labels: String...) -> [UInt8] { wireName(labels) }

/// A label of `n` copies of `c`.
func label(_ n: Int, _ c: Character = "a") -> String { String(repeating: c, count: n) }

func pointer(_ offset: Int) -> [UInt8] {
    precondition(offset < 0x4000)
    return [0xC0 | UInt8(offset >> 8), UInt8(offset & 0xFF)]
}

func headerBytes(id: UInt16 = 0x1234, flags: UInt16 = 0x0100, qd: UInt16 = 1,
                 an: UInt16 = 0, ns: UInt16 = 0, ar: UInt16 = 0) -> [UInt8] {
    be16(id) + be16(flags) + be16(qd) + be16(an) + be16(ns) + be16(ar)
}

func questionBytes(_ name: [UInt8], type: UInt16 = 1, qclass: UInt16 = 1) -> [UInt8] {
    name + be16(type) + be16(qclass)
}

func rrBytes(owner: [UInt8], type: UInt16, rrclass: UInt16 = 1, ttl: UInt32 = 300,
             rdata: [UInt8]) -> [UInt8] {
    owner + be16(type) + be16(rrclass) + be32(ttl) + be16(UInt16(rdata.count)) + rdata
}

/// An OPT pseudo-RR. TTL = extended rcode (8) | version (8) | DO (1) | Z (15).
func optBytes(payload: UInt16 = 4096, extRcode: UInt8 = 0, version: UInt8 = 0,
              flags: UInt16 = 0, owner: [UInt8] = [0], rdata: [UInt8] = []) -> [UInt8] {
    let ttl = UInt32(extRcode) << 24 | UInt32(version) << 16 | UInt32(flags)
    return rrBytes(owner: owner, type: 41, rrclass: payload, ttl: ttl, rdata: rdata)
}

/// A plain query for `labels` (one question, optional OPT in the additional section).
func makeQuery(id: UInt16 = 0x1234, flags: UInt16 = 0x0100, labels: [String],
               type: UInt16 = 1, qclass: UInt16 = 1, opt: [UInt8]? = nil) -> [UInt8] {
    headerBytes(id: id, flags: flags, qd: 1, ar: opt == nil ? 0 : 1)
        + questionBytes(wireName(labels), type: type, qclass: qclass)
        + (opt ?? [])
}

/// A response exercising every section and compression pointers into the question, into
/// rdata and chained through other pointers. Returns the bytes and a few offsets.
struct CompressedResponse {
    var bytes: [UInt8] = []
    var questionEnd = 0
    var optClassOffset = 0

    init() {
        var b = headerBytes(id: 0xBEEF, flags: 0x8180, qd: 1, an: 2, ns: 1, ar: 2)
        let qname = b.count                                    // 12
        b += questionBytes(wireName("www", "Example", "com"), type: 1)
        questionEnd = b.count                                  // 33
        let exampleCom = qname + 4                             // "Example.com" inside qname

        // Answer 1: www.Example.com CNAME web.Example.com (rdata compressed).
        b += pointer(qname) + be16(5) + be16(1) + be32(300)
        let cnameTarget = b.count + 2                          // after rdlength
        let cnameRdata = wireName(["web"]).dropLast() + pointer(exampleCom)
        b += be16(UInt16(cnameRdata.count)) + cnameRdata
        // Answer 2: web.Example.com A 192.0.2.1, owner points into the CNAME rdata.
        b += rrBytes(owner: pointer(cnameTarget), type: 1, rdata: [192, 0, 2, 1])
        // Authority: Example.com NS ns1.Example.com.
        b += pointer(exampleCom) + be16(2) + be16(1) + be32(3600)
        let nsTarget = b.count + 2
        let nsRdata = wireName(["ns1"]).dropLast() + pointer(exampleCom)
        b += be16(UInt16(nsRdata.count)) + nsRdata
        // Additional: ns1.Example.com AAAA (owner points at the NS rdata), then OPT.
        b += rrBytes(owner: pointer(nsTarget), type: 28,
                     rdata: [0x20, 0x01, 0x0d, 0xb8] + Array(repeating: 0, count: 11) + [1])
        optClassOffset = b.count + 3
        b += optBytes(payload: 1232, version: 0, flags: 0x8000)
        bytes = b
    }
}

/// The error `DNSMessage.parse` throws, or nil when it succeeds.
func parseError(_ bytes: [UInt8]) -> DNSWireError? {
    do {
        _ = try DNSMessage.parse(bytes)
        return nil
    } catch {
        return error
    }
}

/// Parses labels out of an uncompressed wire name, checking its structure.
func labelsOf(_ wire: [UInt8]) -> [[UInt8]]? {
    var out: [[UInt8]] = []
    var i = 0
    while i < wire.count {
        let len = Int(wire[i])
        if len == 0 { return i == wire.count - 1 ? out : nil }
        guard len <= 63, i + 1 + len <= wire.count else { return nil }
        out.append(Array(wire[(i + 1)...(i + len)]))
        i += 1 + len
    }
    return nil
}
