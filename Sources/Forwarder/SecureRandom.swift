/// Unpredictable 16-bit values for DNS IDs (RFC 5452), drawn from the system CSPRNG in
/// blocks so a query does not cost a getrandom(2) call each.
struct SecureRandom {
    private var block: [UInt64] = []
    private var generator = SystemRandomNumberGenerator()

    mutating func next16() -> UInt16 {
        if block.isEmpty {
            block = (0..<64).map { _ in generator.next() }
        }
        var word = block.removeLast()
        let v = UInt16(truncatingIfNeeded: word)
        word >>= 16
        if word != 0 || block.count < 64 { block.append(word) }
        return v
    }

    mutating func below(_ n: Int) -> Int {
        precondition(n > 0)
        return Int(next16()) % n
    }
}
