import Testing
import MarkCore

@Suite("Packet mark trust")
struct PacketMarkTrustTests {
    /// Runs `n` queries with packet mark `mark` whose lookups say `connmark`; returns the steps.
    func run(_ t: inout PacketMarkTrust, _ n: Int, mark: UInt32, connmark: MarkLookup) -> [PacketMarkTrust.Step] {
        (0..<n).map { _ in
            let step = t.step(packetMark: mark)
            if case .lookup(let verify?) = step { _ = t.verified(packetMark: verify, lookup: connmark) }
            return step
        }
    }

    @Test func verifiesBeforeTrustingThenSamples() {
        var t = PacketMarkTrust(mode: .auto, warmup: 4, sampleEvery: 8)
        let warm = run(&t, 4, mark: 0x10, connmark: .found(0x10))
        #expect(warm.allSatisfy { $0 == .lookup(verify: 0x10) })
        #expect(t.state == .trusted)
        let next = run(&t, 16, mark: 0x10, connmark: .found(0x10))
        #expect(next.filter { $0 == .usePacket(0x10) }.count == 14)
        #expect(next.filter { $0 == .lookup(verify: 0x10) }.count == 2, "one in 8 still compared")
    }

    @Test func eachMarkAndInterfaceIsVerifiedBeforeItsPacketMarkIsUsed() {
        var t = PacketMarkTrust(mode: .auto, warmup: 2, sampleEvery: 1000)
        for _ in 0..<2 {
            #expect(t.step(packetMark: 0x10, interface: 2) == .lookup(verify: 0x10))
            _ = t.verified(packetMark: 0x10, interface: 2, lookup: .found(0x10))
        }
        #expect(t.state == .trusted)
        #expect(t.step(packetMark: 0x10, interface: 2) == .usePacket(0x10))
        // The same value on another interface (another rule may have set it), or another
        // value: looked up first.
        #expect(t.step(packetMark: 0x10, interface: 3) == .lookup(verify: 0x10))
        #expect(t.step(packetMark: 0x20, interface: 2) == .lookup(verify: 0x20))
        #expect(t.verified(packetMark: 0x20, interface: 2, lookup: .found(0x20)) == .agreed)
        #expect(t.step(packetMark: 0x20, interface: 2) == .usePacket(0x20))
        t.reset()
        _ = run(&t, 2, mark: 0x30, connmark: .found(0x30))
        #expect(t.step(packetMark: 0x10, interface: 2) == .lookup(verify: 0x10), "reset forgets verified pairs")
    }

    @Test func zeroMarksNeverBuildTrustAndAlwaysLookUp() {
        var t = PacketMarkTrust(mode: .auto, warmup: 2, sampleEvery: 8)
        let steps = run(&t, 10, mark: 0, connmark: .found(0))
        #expect(steps.allSatisfy { $0 == .lookup(verify: 0) })
        #expect(t.state == .verifying(agreed: 0), "0 cannot tell unmarked from not restored")
        _ = run(&t, 2, mark: 0x20, connmark: .found(0x20))
        #expect(t.state == .trusted)
        #expect(t.step(packetMark: 0) == .lookup(verify: 0), "a trusted loop still looks 0 up")
    }

    @Test func aRepeatedMismatchTurnsTrustOffUntilReset() {
        var t = PacketMarkTrust(mode: .auto, warmup: 2, sampleEvery: 1)
        _ = run(&t, 2, mark: 0x10, connmark: .found(0x10))
        #expect(t.state == .trusted)
        #expect(t.step(packetMark: 0x10) == .lookup(verify: 0x10))
        #expect(t.verified(packetMark: 0x10, lookup: .found(0x11)) == .suspect)
        #expect(t.state == .trusted && t.suspicious)
        #expect(t.verified(packetMark: 0x10, lookup: .found(0x11)) == .mismatch(first: true))
        #expect(t.state == .distrusted)
        #expect(t.step(packetMark: 0x10) == .lookup(verify: nil))
        #expect(t.verified(packetMark: 0x10, lookup: .found(0x12)) == .mismatch(first: false))
        t.reset()
        #expect(t.state == .verifying(agreed: 0))
    }

    @Test func markedPacketWithoutEntryOrZeroPacketWithConnmarkIsAMismatch() {
        var a = PacketMarkTrust(warmup: 2)
        #expect(a.verified(packetMark: 0x10, lookup: .notFound) == .suspect)
        #expect(a.verified(packetMark: 0x10, lookup: .notFound) == .mismatch(first: true))
        var b = PacketMarkTrust(warmup: 2)
        #expect(b.verified(packetMark: 0, lookup: .found(0x10)) == .suspect)
        #expect(b.verified(packetMark: 0, lookup: .found(0x10)) == .mismatch(first: true),
                "the connmark is not restored onto packets")
        var c = PacketMarkTrust(warmup: 2)
        #expect(c.verified(packetMark: 0, lookup: .notFound) == .agreed)
        #expect(c.verified(packetMark: 0x10, lookup: .failed(1)) == .inconclusive)
        #expect(c.state == .verifying(agreed: 0))
    }

    @Test func onlyThePolicyBitsAreCompared() {
        var t = PacketMarkTrust(mode: .auto, mask: 0xff00, warmup: 1, sampleEvery: 1000)
        // Another mark user's bits (0x3f, 0x30000) differ between packet and connection: fine.
        #expect(t.verified(packetMark: 0x31234, lookup: .found(0x1299)) == .agreed)
        #expect(t.state == .trusted)
        #expect(t.step(packetMark: 0x31234) == .usePacket(0x31234))
        #expect(t.step(packetMark: 0x0034) == .lookup(verify: 0x0034), "nothing in our bits: looked up")
        #expect(t.verified(packetMark: 0x0034, lookup: .notFound) == .agreed)
        #expect(t.verified(packetMark: 0x1234, lookup: .found(0x1334)) == .suspect)
    }

    /// A connmark changed (a session login) between a packet's restore and the lookup: one
    /// disagreement, then the flow's next query agrees. Trust and the shortcut stay.
    @Test func aMarkChangeRaceDoesNotCostTheShortcut() {
        var t = PacketMarkTrust(mode: .auto, warmup: 1, sampleEvery: 1000)
        #expect(t.verified(packetMark: 0x300, lookup: .found(0x300)) == .agreed)
        #expect(t.verified(packetMark: 0x100, lookup: .found(0x100)) == .agreed)
        #expect(t.step(packetMark: 0x300) == .usePacket(0x300))
        #expect(t.verified(packetMark: 0x300, lookup: .found(0x100)) == .suspect)
        #expect(t.step(packetMark: 0x100) == .lookup(verify: 0x100), "while suspicious, every marked query is compared")
        #expect(t.verified(packetMark: 0x100, lookup: .found(0x100)) == .agreed)
        #expect(t.state == .trusted && !t.suspicious)
        #expect(t.step(packetMark: 0x100) == .usePacket(0x100))
    }

    @Test func conntrackModeAndMissingPacketMarksAlwaysLookUp() {
        var t = PacketMarkTrust(mode: .conntrack)
        #expect(t.step(packetMark: 0x10) == .lookup(verify: nil))
        var u = PacketMarkTrust(mode: .auto, warmup: 1)
        _ = run(&u, 1, mark: 0x10, connmark: .found(0x10))
        #expect(u.state == .trusted)
        #expect(u.step(packetMark: nil) == .lookup(verify: nil), "TCP, or a kernel without SO_RCVMARK")
    }
}
