import MarkCore
import MarkPolicy
import Testing
@testable import Forwarder

@Suite("ForwarderConfig")
struct ForwarderConfigTests {
    @Test func perEngineSharesSplitTheCacheAndOutstandingLimits() {
        var c = ForwarderConfig(listen: [], policy: PolicyEngine(ForwarderConfig.simplePolicy(upstreams: [], requireMark: false)))
        c.cacheSize = 10_001
        c.maxOutstanding = 4096
        c.maxOutstandingPerClient = 5
        let one = c.perEngine(threads: 1)
        #expect(one.cacheSize == 10_001 && one.maxOutstanding == 4096)
        let two = c.perEngine(threads: 2)
        #expect(two.cacheSize == 5_001 && two.maxOutstanding == 2048 && two.maxOutstandingPerClient == 3)
        c.cacheSize = 0
        #expect(c.perEngine(threads: 4).cacheSize == 0, "off stays off")
    }

    @Test func queryLimitsCarryTheFlags() {
        var c = ForwarderConfig(listen: [], policy: PolicyEngine(ForwarderConfig.simplePolicy(upstreams: [], requireMark: false)))
        c.upstreamTimeout = .milliseconds(700)
        c.queryTimeout = .seconds(3)
        c.serveStale = 9
        let l = c.queryLimits
        #expect(l.upstreamTimeout == 0.7 && l.queryTimeout == 3 && l.serveStale == 9 && l.cacheSize == c.cacheSize)
    }
}
