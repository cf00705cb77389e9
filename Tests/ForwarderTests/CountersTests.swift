import MarkCore
import MarkPolicy
import Testing
@testable import Forwarder

@Suite("Counters")
struct CountersTests {
    @Test func everyCountIsSummedAcrossLoops() {
        let ints = Mirror(reflecting: Counters()).children.filter { $0.value is Int }
        #expect(ints.count == Counters.countFields.count, "a new Int counter is missing from countFields")
        var a = Counters(), b = Counters()
        for (i, field) in Counters.countFields.enumerated() {
            a[keyPath: field] = i
            b[keyPath: field] = 100
        }
        a.localAnswers = ["local": 1]
        b.localAnswers = ["local": 2, "blocked": 3]
        a.unmarked = [.noEntry: 4]
        b.unmarked = [.noEntry: 1, .lookupFailed: 2]
        a.add(b)
        for (i, field) in Counters.countFields.enumerated() { #expect(a[keyPath: field] == i + 100) }
        #expect(a.localAnswers == ["local": 3, "blocked": 3])
        #expect(a.unmarked == [.noEntry: 5, .lookupFailed: 2])
    }

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
}
