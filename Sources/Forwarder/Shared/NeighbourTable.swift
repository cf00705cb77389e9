import MarkCore
import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// IPv4 address -> MAC from the kernel's neighbour table (/proc/net/arp), re-read at most
/// once per `refreshSeconds` and only when a MAC selector needs it. Parsing is pure and
/// tested (MarkCore `ProcNetARP`); reading is one small file.
final class NeighbourTable {
    private var table: [IPAddress: [UInt8]] = [:]
    private var loadedAt: Double = -1e9
    let refreshSeconds: Double
    let path: String

    init(path: String = "/proc/net/arp", refreshSeconds: Double = 5) {
        self.path = path
        self.refreshSeconds = refreshSeconds
    }

    func mac(for address: IPAddress) -> [UInt8]? {
        let now = Double(NIODeadline.now().uptimeNanoseconds) / 1e9
        if now - loadedAt > refreshSeconds || (table[address] == nil && now - loadedAt > 1) {
            if let text = readSmallFile(path) { table = ProcNetARP.parse(text).mapValues(\.bytes) }
            loadedAt = now
        }
        return table[address]
    }
}

/// Reads a file of at most 1 MiB; nil on any error.
func readSmallFile(_ path: String) -> String? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var data: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 16384)
    while data.count < 1 << 20 {
        let n = read(fd, &buf, buf.count)
        if n <= 0 { break }
        data += buf[0..<n]
    }
    return String(decoding: data, as: UTF8.self)
}
