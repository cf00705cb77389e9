/// `edns-tcp-keepalive` (RFC 7828) in an answer: how long the server will keep an idle
/// connection open.
public enum EDNSKeepalive {
    public static let optionCode: UInt16 = 11

    /// The server's idle timeout in seconds (the option counts units of 100 ms), nil when
    /// the answer carries no such option (or cannot be walked).
    public static func timeout(inAnswer bytes: UnsafeRawBufferPointer) -> Double? {
        guard bytes.count >= 12 else { return nil }
        func u16(_ i: Int) -> Int? { i + 1 < bytes.count ? Int(bytes[i]) << 8 | Int(bytes[i + 1]) : nil }
        func skipName(_ i: Int) -> Int? {
            var i = i
            while i < bytes.count {
                let len = Int(bytes[i])
                if len == 0 { return i + 1 }
                if len & 0xC0 == 0xC0 { return i + 2 }
                guard len & 0xC0 == 0 else { return nil }
                i += 1 + len
            }
            return nil
        }
        guard let qd = u16(4), let an = u16(6), let ns = u16(8), let ar = u16(10) else { return nil }
        var i = 12
        for _ in 0..<qd {
            guard let n = skipName(i) else { return nil }
            i = n + 4
        }
        for r in 0..<(an + ns + ar) {
            guard let n = skipName(i), let type = u16(n), let rdlength = u16(n + 8) else { return nil }
            let rdata = n + 10
            guard rdata + rdlength <= bytes.count else { return nil }
            if r >= an + ns, type == 41 {
                var o = rdata
                while o + 4 <= rdata + rdlength, let code = u16(o), let len = u16(o + 2) {
                    if code == Int(optionCode), len == 2, let units = u16(o + 4) { return Double(units) / 10 }
                    o += 4 + len
                }
                return nil
            }
            i = rdata + rdlength
        }
        return nil
    }
}
