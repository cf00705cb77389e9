import MarkCore
import MarkPolicy
import Testing
@testable import QueryCore

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
}
