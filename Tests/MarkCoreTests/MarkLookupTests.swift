import Testing
import MarkCore

@Suite("MarkLookup and NoMarkReason")
struct MarkLookupTests {
    @Test func reasonStringsAreStableAndDistinct() {
        #expect(NoMarkReason.markZero.rawValue == "mark-zero")
        #expect(NoMarkReason.noEntry.rawValue == "no-conntrack-entry")
        #expect(NoMarkReason.lookupFailed.rawValue == "lookup-failed")
        #expect(NoMarkReason.noSource.rawValue == "no-mark-source")
        #expect(Set(NoMarkReason.allCases.map(\.rawValue)).count == NoMarkReason.allCases.count)
        #expect(NoMarkReason.allCases.count == 4)
    }

    @Test func lookupEquality() {
        #expect(MarkLookup.found(1) == .found(1))
        #expect(MarkLookup.found(1) != .found(2))
        #expect(MarkLookup.failed(1) != .failed(2))
        #expect(MarkLookup.found(0) != .notFound)
    }
}

@Suite("StaticMarkSource")
struct StaticMarkSourceTests {
    func flow(_ client: String, _ local: String = "10.0.0.1:53") throws -> FlowTuple {
        FlowTuple(proto: .udp, client: try Endpoint.parse(client), local: try Endpoint.parse(local))
    }

    @Test func looksUpByClientAddress() throws {
        let a = try #require(IPAddress("10.0.0.7"))
        let b = try #require(IPAddress("2001:db8::7"))
        let src = StaticMarkSource(marks: [a: 0x11, b: 0x22])
        #expect(src.lookup(try flow("10.0.0.7:1000")) == .found(0x11))
        // Port and local side do not matter.
        #expect(src.lookup(try flow("10.0.0.7:2000", "10.0.0.9:5353")) == .found(0x11))
        #expect(src.lookup(try flow("[2001:db8::7]:1000", "[::1]:53")) == .found(0x22))
        // Unknown clients get the fallback.
        #expect(src.lookup(try flow("10.0.0.8:1000")) == .notFound)
        // The local address is not a key.
        #expect(src.lookup(try flow("10.0.0.8:1000", "10.0.0.7:53")) == .notFound)
    }

    @Test func fallbackIsConfigurableAndMutable() throws {
        let src = StaticMarkSource(fallback: .failed(19))
        #expect(src.lookup(try flow("1.1.1.1:1")) == .failed(19))
        src.fallback = .found(5)
        #expect(src.lookup(try flow("1.1.1.1:1")) == .found(5))
        src.marks[try #require(IPAddress("1.1.1.1"))] = 9
        #expect(src.lookup(try flow("1.1.1.1:1")) == .found(9))
    }

    @Test func zeroMarkEntryIsFoundZero() throws {
        let src = StaticMarkSource(marks: [try #require(IPAddress("1.1.1.1")): 0], fallback: .found(3))
        let l = src.lookup(try flow("1.1.1.1:1"))
        #expect(l == .found(0))
    }

    @Test func usableThroughTheProtocol() throws {
        let src: any MarkSource = StaticMarkSource(marks: [try #require(IPAddress("::1")): 42])
        #expect(src.lookup(try flow("[::1]:5", "[::1]:53")) == .found(42))
    }
}
