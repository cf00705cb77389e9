import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// The monotonic clock of the forwarder, in seconds (the clock NIO's deadlines use), so
/// the pure core's times and the loop's timers agree.
enum Monotonic {
    static var seconds: Double { Double(NIODeadline.now().uptimeNanoseconds) / 1e9 }

    static func deadline(_ seconds: Double) -> NIODeadline {
        .uptimeNanoseconds(UInt64(max(0, seconds) * 1e9))
    }

    static var wallClock: Double {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
}

/// Texts the shell logs: errno, marks, interface names.
enum SystemText {
    static func interfaceName(_ index: Int) -> String? {
        var buf = [CChar](repeating: 0, count: Int(IF_NAMESIZE) + 1)
        guard if_indextoname(UInt32(index), &buf) != nil else { return nil }
        return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

func seconds(_ t: TimeAmount) -> Double { Double(t.nanoseconds) / 1e9 }

func hex(_ v: UInt32) -> String { "0x" + String(v, radix: 16) }

func errnoText(_ e: Int32) -> String { "\(String(cString: strerror(e))) (errno \(e))" }
