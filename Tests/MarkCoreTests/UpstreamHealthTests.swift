import MarkCore
import Testing

@Suite("UpstreamHealth")
struct UpstreamHealthTests {
    let a = try! Endpoint.parse("192.0.2.1:53"), b = try! Endpoint.parse("192.0.2.2:53")
    let c = try! Endpoint.parse("[2001:db8::3]:53")

    @Test func healthyServersKeepTheirOrder() {
        let h = UpstreamHealth()
        #expect(h.order([a, b, c], now: 0) == [a, b, c])
    }

    @Test func backsOffAfterThresholdFailuresInARow() {
        var h = UpstreamHealth(threshold: 3, initialBackoff: 1, maxBackoff: 60)
        h.failure(a, now: 10); h.failure(a, now: 10)
        #expect(!h.isDown(a, now: 10), "two failures are not enough")
        h.failure(a, now: 10)
        #expect(h.isDown(a, now: 10.5))
        #expect(h.order([a, b, c], now: 10.5) == [b, c, a], "down servers go last, never vanish")
        #expect(!h.isDown(a, now: 11.01), "back after the backoff")
    }

    @Test func backoffDoublesUpToTheMaximum() {
        var h = UpstreamHealth(threshold: 1, initialBackoff: 1, maxBackoff: 4)
        var now = 0.0
        var seen: [Double] = []
        for _ in 0..<5 {
            h.failure(a, now: now)
            var t = now
            while h.isDown(a, now: t) { t += 0.25 }
            seen.append(t - now)
            now = t
        }
        #expect(seen == [1, 2, 4, 4, 4])
    }

    @Test func oneSuccessResets() {
        var h = UpstreamHealth(threshold: 1, initialBackoff: 5)
        h.failure(a, now: 0)
        #expect(h.isDown(a, now: 1))
        h.success(a)
        #expect(!h.isDown(a, now: 1))
        h.failure(a, now: 2)
        #expect(h.isDown(a, now: 6.9) && !h.isDown(a, now: 7.1), "backoff restarts from the initial value")
    }

    @Test func failuresInterruptedBySuccessDoNotAccumulate() {
        var h = UpstreamHealth(threshold: 3)
        h.failure(b, now: 0); h.failure(b, now: 0); h.success(b); h.failure(b, now: 0)
        #expect(!h.isDown(b, now: 0))
    }
}
