/// `edns-tcp-keepalive` (RFC 7828): asked for in queries on stream connections, and read
/// from answers: how long the server will keep an idle connection open. A server sends it
/// only in answer to a query over TCP that carried it (3.2.2, 3.3.1).
public enum EDNSKeepalive {
    public static let optionCode: UInt16 = 11
    /// Bytes the empty option adds to a query: code and length, no value.
    public static let requestSize = 4

    /// The server's idle timeout in seconds (the option counts units of 100 ms), nil when
    /// the answer carries no such option (or cannot be walked).
    public static func timeout(inAnswer bytes: UnsafeRawBufferPointer) -> Double? {
        guard let opt = optRecord(in: bytes),
              let value = try? option(optionCode, in: bytes, rdata: opt.rdata), value.count == 2
        else { return nil }
        return Double(Int(bytes[value.lowerBound]) << 8 | Int(bytes[value.lowerBound + 1])) / 10
    }

    /// Cuts the (first) keepalive option out of an answer in place, when its OPT record
    /// ends the message, and fixes RDLENGTH; returns the answer's new length (unchanged
    /// when there is no option or it cannot be cut). The option is about the connection it
    /// came on: a forwarder does not pass it on to its clients (RFC 7828 3.2.2: never over
    /// UDP, and over TCP only in answer to a client that asked, with its own timeout).
    public static func remove(fromAnswer bytes: UnsafeMutableRawBufferPointer) -> Int {
        let view = UnsafeRawBufferPointer(bytes)
        guard let opt = optRecord(in: view), opt.rdata.upperBound == bytes.count,
              let value = try? option(optionCode, in: view, rdata: opt.rdata), let base = bytes.baseAddress
        else { return bytes.count }
        let start = value.lowerBound - 4
        let cut = value.upperBound - start
        (base + start).copyMemory(from: base + value.upperBound, byteCount: bytes.count - value.upperBound)
        let rdlength = opt.rdata.count - cut
        bytes[opt.rdlengthOffset] = UInt8(rdlength >> 8)
        bytes[opt.rdlengthOffset + 1] = UInt8(rdlength & 0xFF)
        return bytes.count - cut
    }

    /// Where to ask for keepalive in `query`: the offset of its OPT record's RDLENGTH when
    /// that record ends the message and has no keepalive option yet, so the empty option
    /// (code 11, length 0) can go on the end. Nil leaves the query as it is: no OPT record
    /// (none is ever added: EDNS is the client's choice), an OPT record before other
    /// records or trailing bytes, the option already there, options that do not tile the
    /// RDATA, bytes that do not walk, or no room left in a TCP length prefix.
    public static func requestOffset(inQuery query: UnsafeRawBufferPointer) -> Int? {
        // A message that fits a TCP length prefix after the option has an RDLENGTH that fits too.
        guard query.count + requestSize <= 0xFFFF, let opt = optRecord(in: query), opt.isLast,
              opt.rdata.upperBound == query.count
        else { return nil }
        do throws(DNSWireError) {
            return try option(optionCode, in: query, rdata: opt.rdata) == nil ? opt.rdlengthOffset : nil
        } catch {
            return nil
        }
    }

    /// Copies `query` into `out` with the empty keepalive option appended when
    /// `requestOffset(inQuery:)` finds room for it, unchanged otherwise. Returns the bytes
    /// written: `query.count + requestSize` or `query.count`. `out` holds at least
    /// `query.count + requestSize` bytes.
    public static func copyRequesting(_ query: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer) -> Int {
        precondition(out.count >= query.count + requestSize)
        out.copyMemory(from: query)
        guard let at = requestOffset(inQuery: query) else { return query.count }
        let rdlength = (Int(query[at]) << 8 | Int(query[at + 1])) + requestSize
        out[at] = UInt8(rdlength >> 8)
        out[at + 1] = UInt8(rdlength & 0xFF)
        let end = query.count
        out[end] = UInt8(optionCode >> 8)
        out[end + 1] = UInt8(optionCode & 0xFF)
        out[end + 2] = 0
        out[end + 3] = 0
        return end + requestSize
    }

    /// An OPT record: where its RDLENGTH and RDATA sit, and whether it is the last record.
    struct OPTRecord {
        var rdlengthOffset: Int
        var rdata: Range<Int>
        var isLast: Bool
    }

    /// The first OPT record of the additional section, walked with the parser's reader and
    /// name walk; nil without one or when the records before it do not walk.
    static func optRecord(in bytes: UnsafeRawBufferPointer) -> OPTRecord? {
        var r = WireReader(bytes)
        do throws(DNSWireError) {
            let header = try r.header()
            for _ in 0..<header.qdcount {
                try DNSName.skip(from: &r)
                try r.skip(4)
            }
            let additionalStart = Int(header.ancount) + Int(header.nscount)
            let count = additionalStart + Int(header.arcount)
            for i in 0..<count {
                try DNSName.skip(from: &r)
                let type = try r.u16()
                try r.skip(6)  // class, TTL
                let rdlengthOffset = r.offset
                let rdlength = Int(try r.u16())
                let rdataStart = r.offset
                try r.skip(rdlength)
                if i >= additionalStart, type == DNSType.opt {
                    return OPTRecord(rdlengthOffset: rdlengthOffset, rdata: rdataStart..<r.offset, isLast: i == count - 1)
                }
            }
            return nil
        } catch {
            return nil
        }
    }

    /// The value of the first option `code` in an OPT record's RDATA, nil when absent;
    /// throws when the options overrun the RDATA.
    static func option(_ code: UInt16, in bytes: UnsafeRawBufferPointer, rdata: Range<Int>)
        throws(DNSWireError) -> Range<Int>? {
        var r = WireReader(UnsafeRawBufferPointer(rebasing: bytes[..<rdata.upperBound]), offset: rdata.lowerBound)
        while r.remaining > 0 {
            let c = try r.u16()
            let length = Int(try r.u16())
            let start = r.offset
            try r.skip(length)
            if c == code { return start..<r.offset }
        }
        return nil
    }
}
