import Testing
import DNSWire

@Suite("edns-tcp-keepalive in answers: read, and cut out")
struct EDNSKeepaliveTests {
    /// An answer to `www. A` with one A record and an OPT record carrying `options`.
    func answer(options: [UInt8]) -> [UInt8] {
        var m: [UInt8] = [0x12, 0x34, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 1, 3, 0x77, 0x77, 0x77, 0, 0, 1, 0, 1]
        m += [0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1]
        m += [0, 0, 41, 0x10, 0, 0, 0, 0, 0, UInt8(options.count >> 8), UInt8(options.count & 0xFF)] + options
        return m
    }

    func timeout(_ m: [UInt8]) -> Double? { m.withUnsafeBytes { EDNSKeepalive.timeout(inAnswer: $0) } }

    @Test func found() {
        #expect(timeout(answer(options: [0, 11, 0, 2, 0x01, 0x2C])) == 30, "300 units of 100 ms")
        #expect(timeout(answer(options: [0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8, 0, 11, 0, 2, 0, 0])) == 0,
                "after a cookie; 0: close when idle")
    }

    /// `remove(fromAnswer:)` on a copy: the bytes it leaves.
    func removed(_ m: [UInt8]) -> [UInt8] {
        var copy = m
        let length = copy.withUnsafeMutableBytes { EDNSKeepalive.remove(fromAnswer: $0) }
        return Array(copy.prefix(length))
    }

    @Test func cutOut() throws {
        let keepalive: [UInt8] = [0, 11, 0, 2, 0x01, 0x2C], cookie: [UInt8] = [0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8]
        #expect(removed(answer(options: keepalive)) == answer(options: []))
        #expect(removed(answer(options: cookie + keepalive)) == answer(options: cookie))
        #expect(removed(answer(options: keepalive + cookie)) == answer(options: cookie), "the rest moved down")
        #expect(removed(answer(options: [0, 11, 0, 0] + cookie)) == answer(options: cookie), "any length")
        let cut = removed(answer(options: cookie + keepalive))
        #expect(try DNSMessage.parse(cut).edns?.optionsLength == cookie.count)
        #expect(timeout(cut) == nil)
    }

    @Test func leftInPlace() {
        for m in [answer(options: []), answer(options: [0, 10, 0, 2, 1, 2])] {
            #expect(removed(m) == m, "no keepalive option")
        }
        var notLast = answer(options: [0, 11, 0, 2, 0x01, 0x2C])
        notLast[11] = 2  // ARCOUNT 2: another record after the OPT one
        notLast += [0, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 2]
        #expect(removed(notLast) == notLast, "the OPT record does not end the message")
        let whole = answer(options: [0, 11, 0, 2, 0x01, 0x2C])
        for n in 0..<whole.count {
            #expect(removed(Array(whole.prefix(n))) == Array(whole.prefix(n)), "cut to \(n) bytes")
        }
        var overrun = whole
        overrun[overrun.count - 3] = 3  // the option's length past the RDATA
        #expect(removed(overrun) == overrun)
    }

    @Test func absentOrBroken() {
        #expect(timeout(answer(options: [])) == nil)
        #expect(timeout(answer(options: [0, 11, 0, 0])) == nil, "the empty form is for queries")
        var cut = answer(options: [0, 11, 0, 2, 0x01, 0x2C])
        cut.removeLast(8)
        #expect(timeout(cut) == nil)
        #expect(timeout([1, 2, 3]) == nil)
    }
}
