import DNSWire
import Foundation
import MarkCore
import MarkPolicy

/// Wire messages and a policy shaped like what the forwarder sees on its hot path.
enum Fixtures {
    /// `name` as uncompressed wire labels.
    static func wireName(_ name: String) -> [UInt8] {
        var out: [UInt8] = []
        for label in name.split(separator: ".") {
            out.append(UInt8(label.utf8.count)); out += Array(label.utf8)
        }
        return out + [0]
    }

    static func u16(_ v: UInt16) -> [UInt8] { [UInt8(v >> 8), UInt8(v & 0xFF)] }

    /// An A query with RD and an EDNS OPT record (payload 1232), as dig or a stub sends it.
    static func query(_ name: String, id: UInt16 = 0x1234) -> [UInt8] {
        u16(id) + u16(0x0100) + u16(1) + u16(0) + u16(0) + u16(1)
            + wireName(name) + u16(DNSType.a) + u16(1)
            + [0] + u16(DNSType.opt) + u16(1232) + [0, 0, 0, 0] + u16(0)
    }

    /// The answer to `query(name)`: two A records (owner compressed to the question)
    /// and an OPT record.
    static func answer(_ name: String, id: UInt16 = 0x1234, ttl: UInt32 = 300) -> [UInt8] {
        let ttlBytes = u16(UInt16(ttl >> 16)) + u16(UInt16(ttl & 0xFFFF))
        var out = u16(id) + u16(0x8180) + u16(1) + u16(2) + u16(0) + u16(1)
        out += wireName(name) + u16(DNSType.a) + u16(1)
        for last: UInt8 in [1, 2] {
            out += [0xC0, 0x0C] + u16(DNSType.a) + u16(1) + ttlBytes + u16(4) + [192, 0, 2, last]
        }
        return out + [0] + u16(DNSType.opt) + u16(1232) + [0, 0, 0, 0] + u16(0)
    }

    /// conf/accounting.toml: four marks, five client rules (addresses, MACs, an
    /// interface), a block list for one mark.
    static func accountingPolicy() -> PolicyEngine {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()  // bench/micro/Benchmarks/MicroBenchmarks/ -> repository
        let path = root.appendingPathComponent("conf/accounting.toml").path
        let read: (String) throws -> String = { try String(contentsOfFile: $0, encoding: .utf8) }
        do {
            return PolicyEngine(try PolicyConfig.load(text: try read(path), file: path, readFile: read))
        } catch {
            fatalError("cannot load \(path): \(error)")
        }
    }
}

/// What the forwarder keys its cache by (QueryEngine's CacheView): view, pool, mark.
struct View: Hashable, Sendable {
    var view: PolicyView
    var pool: String
    var upstreamMark: UInt32
}
