import NftSets
import QueryCore
import Testing

/// The netlink batch a `SetWrite` becomes (libnftnl through our C shim), read back with an
/// independent parser: message types, flags, sequence numbers, table and set names, each
/// element's key bytes and big-endian millisecond timeout. No root needed.
@Suite("nft set batch encoding")
struct SetEncodingTests {
    struct Message {
        var type: UInt16
        var flags: UInt16
        var seq: UInt32
        var family: UInt8
        var resID: UInt16
        var attributes: [(type: UInt16, data: [UInt8])]
    }

    static func le16(_ b: ArraySlice<UInt8>) -> UInt16 { UInt16(b[b.startIndex]) | UInt16(b[b.startIndex + 1]) << 8 }
    static func le32(_ b: ArraySlice<UInt8>) -> UInt32 { UInt32(le16(b)) | UInt32(le16(b.dropFirst(2))) << 16 }
    static func be64(_ b: [UInt8]) -> UInt64 { b.reduce(0) { $0 << 8 | UInt64($1) } }

    static func attributes(_ b: ArraySlice<UInt8>) -> [(type: UInt16, data: [UInt8])] {
        var out: [(type: UInt16, data: [UInt8])] = []
        var i = b.startIndex
        while i + 4 <= b.endIndex {
            let len = Int(le16(b[i...]))
            guard len >= 4, i + len <= b.endIndex else { break }
            out.append((le16(b[(i + 2)...]) & 0x3fff, Array(b[(i + 4)..<(i + len)])))
            i += (len + 3) & ~3
        }
        return out
    }

    static func messages(_ bytes: [UInt8]) -> [Message] {
        var out: [Message] = []
        var i = 0
        while i + 20 <= bytes.count {
            let len = Int(le32(bytes[i...]))
            guard len >= 20, i + len <= bytes.count else { break }
            out.append(Message(type: le16(bytes[(i + 4)...]), flags: le16(bytes[(i + 6)...]), seq: le32(bytes[(i + 8)...]),
                               family: bytes[i + 16], resID: UInt16(bytes[i + 18]) << 8 | UInt16(bytes[i + 19]),
                               attributes: attributes(bytes[(i + 20)..<(i + len)])))
            i += (len + 3) & ~3
        }
        return out
    }

    static func string(_ b: [UInt8]) -> String { String(decoding: b.prefix { $0 != 0 }, as: UTF8.self) }

    @Test func batchHasBeginNewDeleteNewEndWithTheElementsAndTimeouts() throws {
        var batch = SetBatch()
        batch.add(SetFill(set: "via_vpn", address: [192, 0, 2, 1], timeout: 300))
        batch.add(SetFill(set: "via_vpn", address: [198, 51, 100, 7], timeout: 3600))
        let write = try #require(batch.take().first)
        var buffer: [CChar] = []
        let len = NftSetSocket.encode(write, seq: 1000, into: &buffer)
        #expect(len > 0)
        let bytes = buffer.prefix(len).map { UInt8(bitPattern: $0) }
        let msgs = Self.messages(bytes)
        #expect(msgs.map(\.type) == [0x10, 0x0a0c, 0x0a0e, 0x0a0c, 0x11], "BEGIN, NEWSETELEM, DELSETELEM, NEWSETELEM, END")
        #expect(msgs.map(\.seq) == [1000, 1001, 1002, 1003, 1004])
        #expect(msgs[0].resID == 10 && msgs[4].resID == 10, "the batch is for NFNL_SUBSYS_NFTABLES")
        #expect(msgs[1].flags & 0x405 == 0x405, "NEW: request, ack, create")
        #expect(msgs[1].flags & 0x200 == 0, "no NLM_F_EXCL: an existing element is not an error")
        #expect(msgs[2].flags & 0x5 == 0x5 && msgs[2].flags & 0x400 == 0)
        for m in msgs[1...3] {
            #expect(m.family == 1, "NFPROTO_INET")
            let attrs = Dictionary(m.attributes.map { ($0.type, $0.data) }, uniquingKeysWith: { a, _ in a })
            #expect(Self.string(attrs[1] ?? []) == "markdns")
            #expect(Self.string(attrs[2] ?? []) == "via_vpn_v4")
            let elements = Self.attributes(try #require(attrs[3])[...])
            #expect(elements.map(\.type) == [1, 2], "libnftnl numbers the list elements 1...n (the kernel reads them as NFTA_LIST_ELEM)")
            var keys: [[UInt8]] = []
            var timeouts: [UInt64] = []
            for e in elements {
                for a in Self.attributes(e.data[...]) {
                    switch a.type {
                    case 1: keys += Self.attributes(a.data[...]).filter { $0.type == 1 }.map(\.data)
                    case 4: timeouts.append(Self.be64(a.data))
                    default: break
                    }
                }
            }
            #expect(keys == [[192, 0, 2, 1], [198, 51, 100, 7]])
            #expect(timeouts == (m.type == 0x0a0e ? [] : [300_000, 3_600_000]), "timeouts in ms, big-endian; none on DEL")
        }
    }

    @Test func ipv6KeysAreSixteenBytesAndFullBatchesFit() throws {
        var batch = SetBatch()
        for i in 0..<SetBatch.maxElements {
            batch.add(SetFill(set: "s", address: [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 10) + [UInt8(i >> 8), UInt8(i & 0xff)],
                              timeout: 1))
        }
        let write = try #require(batch.take().first)
        var buffer: [CChar] = []
        let len = NftSetSocket.encode(write, seq: 1, into: &buffer)
        #expect(len > 0 && len <= buffer.count)
        let msgs = Self.messages(buffer.prefix(len).map { UInt8(bitPattern: $0) })
        #expect(msgs.count == 5)
        let attrs = msgs[1].attributes
        #expect(Self.string(attrs.first { $0.type == 2 }?.data ?? []) == "s_v6")
        let elements = Self.attributes(try #require(attrs.first { $0.type == 3 }).data[...])
        #expect(elements.count == SetBatch.maxElements)
        let lastKey = Self.attributes(elements.last!.data[...]).first { $0.type == 1 }.map { Self.attributes($0.data[...])[0].data }
        #expect(lastKey?.count == 16 && lastKey?.suffix(2) == [0, 199])
    }
}
