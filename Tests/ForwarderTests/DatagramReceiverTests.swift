import Glibc
import MarkCore
import Testing
@testable import Forwarder

/// The pure parts of the UDP fast path: control messages (packet mark, interface) and
/// socket addresses, without a socket.
@Suite("Datagram receiver")
struct DatagramReceiverTests {
    /// A control buffer of cmsghdrs as the kernel lays them out on 64-bit Linux.
    func control(_ messages: [(level: Int32, type: Int32, data: [UInt8])]) -> [UInt8] {
        var out: [UInt8] = []
        for m in messages {
            let len = 16 + m.data.count
            withUnsafeBytes(of: len) { out += $0 }
            withUnsafeBytes(of: m.level) { out += $0 }
            withUnsafeBytes(of: m.type) { out += $0 }
            out += m.data
            while out.count % 8 != 0 { out.append(0) }
        }
        return out
    }

    func parse(_ bytes: [UInt8]) -> DatagramReceiver.Datagram {
        var d = DatagramReceiver.Datagram(bytes: UnsafeRawBufferPointer(start: nil, count: 0), source: nil)
        var copy = bytes
        copy.withUnsafeMutableBytes { DatagramReceiver.parseControl($0.baseAddress, length: $0.count, into: &d) }
        return d
    }

    @Test func packetMarkAndInterfaceFromControlMessages() {
        let mark: UInt32 = 0xdead_0010
        let pktinfo = withUnsafeBytes(of: Int32(7)) { Array($0) } + [UInt8](repeating: 0, count: 8)
        let d = parse(control([(SOL_SOCKET, SO_MARK, withUnsafeBytes(of: mark) { Array($0) }),
                               (Int32(IPPROTO_IP), IP_PKTINFO, pktinfo)]))
        #expect(d.mark == mark)
        #expect(d.interfaceIndex == 7)
        let v6info = [UInt8](repeating: 0xfd, count: 16) + withUnsafeBytes(of: Int32(3)) { Array($0) }
        #expect(parse(control([(Int32(IPPROTO_IPV6), IPV6_PKTINFO, v6info)])).interfaceIndex == 3)
    }

    @Test func noMarkWithoutItsControlMessageAndTruncatedOnesAreIgnored() {
        let d = parse(control([(Int32(IPPROTO_IP), IP_PKTINFO, [UInt8](repeating: 0, count: 12))]))
        #expect(d.mark == nil, "no SO_RCVMARK: the mark is unknown, not 0")
        var cut = control([(SOL_SOCKET, SO_MARK, [1, 0, 0, 0])])
        cut.removeLast(8)  // the length says 20 bytes, 16 are there
        #expect(parse(cut).mark == nil)
        #expect(parse([]).mark == nil)
        // A length shorter than a header must not loop forever or read before the buffer.
        var bogus = control([(SOL_SOCKET, SO_MARK, [1, 0, 0, 0])])
        bogus.withUnsafeMutableBytes { $0.storeBytes(of: 3, toByteOffset: 0, as: Int.self) }
        #expect(parse(bogus).mark == nil)
    }

    @Test func socketAddressesRoundTripWithTheIPv6Scope() throws {
        for text in ["192.0.2.1", "127.0.0.10", "fd6d::10", "fe80::1"] {
            let e = Endpoint(address: try #require(IPAddress(text)), port: 5353)
            var storage = sockaddr_storage()
            let length = DatagramReceiver.fill(&storage, e, scope: e.address.isIPv6 ? 4 : 0)
            #expect(Int(length) == (e.address.isIPv6 ? MemoryLayout<sockaddr_in6>.size : MemoryLayout<sockaddr_in>.size))
            let back = withUnsafePointer(to: &storage) { DatagramReceiver.endpoint($0) }
            #expect(back == e, "\(text)")
            let scope = withUnsafePointer(to: &storage) { DatagramReceiver.scope($0) }
            #expect(scope == (e.address.isIPv6 ? 4 : 0))
        }
    }
}
