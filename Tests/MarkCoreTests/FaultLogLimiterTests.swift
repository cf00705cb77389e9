import MarkCore
import Testing

@Suite("FaultLogLimiter")
struct FaultLogLimiterTests {
    @Test("The first fault of a kind is logged, repeats within the interval are only counted")
    func limitsPerKind() {
        var limiter = FaultLogLimiter(interval: 10)
        #expect(limiter.admit("send", now: 100) == 0)
        #expect(limiter.admit("send", now: 101) == nil)
        #expect(limiter.admit("send", now: 109.9) == nil)
        // Another kind is independent.
        #expect(limiter.admit("accept", now: 105) == 0)
        // After the interval: logged, with the two suppressed since.
        #expect(limiter.admit("send", now: 110) == 2)
        #expect(limiter.admit("send", now: 115) == nil)
        #expect(limiter.admit("send", now: 200) == 1)
        #expect(limiter.admit("send", now: 300) == 0)
    }
}
