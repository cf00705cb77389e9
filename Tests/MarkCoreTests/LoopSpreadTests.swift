import MarkCore
import Testing

@Suite("UDP loop spread")
struct LoopSpreadTests {
    @Test("starts on one loop, spreads as soon as that loop is busy, gathers after three quiet intervals")
    func hysteresis() {
        var s = LoopSpread(loops: 2)
        #expect(s.active == 1)
        #expect(s.observe(busy: [0.45, 0]) == nil, "a gateway's load stays on one loop")
        #expect(s.observe(busy: [0.71, 0]) == 2)
        #expect(s.active == 2)
        // Spread: half the load each; well below the spread threshold but above gathering.
        #expect(s.observe(busy: [0.30, 0.30]) == nil)
        #expect(s.observe(busy: [0.10, 0.10]) == nil)
        #expect(s.observe(busy: [0.10, 0.10]) == nil)
        #expect(s.observe(busy: [0.20, 0.11]) == nil, "a busier interval restarts the count")
        #expect(s.observe(busy: [0.10, 0.10]) == nil)
        #expect(s.observe(busy: [0.10, 0.10]) == nil)
        #expect(s.observe(busy: [0.01, 0.00]) == 1)
        #expect(s.active == 1)
    }

    @Test("one loop, or a sample of the wrong size, changes nothing")
    func degenerate() {
        var one = LoopSpread(loops: 1)
        #expect(one.observe(busy: [0.99]) == nil)
        #expect(one.active == 1)
        var two = LoopSpread(loops: 2)
        #expect(two.observe(busy: [0.9]) == nil)
        #expect(two.active == 1)
    }
}
