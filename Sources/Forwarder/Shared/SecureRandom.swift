import CBatchIO

/// Unpredictable 16-bit values for DNS IDs (RFC 5452), drawn from the kernel CSPRNG in
/// 512-byte blocks so a query does not cost a getrandom(2) call each (the standard
/// library's generator makes one call per 8 bytes). Every value is used once.
struct SecureRandom {
    private var block = [UInt16](repeating: 0, count: 256)
    private var left = 0

    mutating func next16() -> UInt16 {
        if left == 0 { refill() }
        left -= 1
        return block[left]
    }

    private mutating func refill() {
        let bytes = block.count * 2
        var filled = 0
        block.withUnsafeMutableBytes { buf in
            while filled < bytes {
                let n = markdns_getrandom(buf.baseAddress! + filled, bytes - filled)
                if n > 0 { filled += n; continue }
                // getrandom only fails before the pool is initialised (blocking mode waits
                // for it) or on EINTR; fall back to the standard generator, never to zeros.
                var g = SystemRandomNumberGenerator()
                while filled < bytes {
                    buf[filled] = UInt8(truncatingIfNeeded: g.next())
                    filled += 1
                }
            }
        }
        left = block.count
    }

    mutating func below(_ n: Int) -> Int {
        precondition(n > 0)
        return Int(next16()) % n
    }
}
