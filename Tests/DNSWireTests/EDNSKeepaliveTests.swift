import Testing
import DNSWire

@Suite("edns-tcp-keepalive in answers")
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

    @Test func absentOrBroken() {
        #expect(timeout(answer(options: [])) == nil)
        #expect(timeout(answer(options: [0, 11, 0, 0])) == nil, "the empty form is for queries")
        var cut = answer(options: [0, 11, 0, 2, 0x01, 0x2C])
        cut.removeLast(8)
        #expect(timeout(cut) == nil)
        #expect(timeout([1, 2, 3]) == nil)
    }
}
