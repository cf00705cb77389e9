/// Unpredictable 16-bit values for DNS IDs (RFC 5452), drawn from the system CSPRNG in
/// blocks so a query does not cost a getrandom(2) call each. Each 64-bit word yields four
/// IDs; every value is used once.
struct SecureRandom {
    private var block: [UInt64] = []
    private var word: UInt64 = 0
    private var parts = 0
    private var generator = SystemRandomNumberGenerator()

    mutating func next16() -> UInt16 {
        if parts == 0 {
            if block.isEmpty { block = (0..<64).map { _ in generator.next() } }
            word = block.removeLast()
            parts = 4
        }
        let v = UInt16(truncatingIfNeeded: word)
        word >>= 16
        parts -= 1
        return v
    }

    mutating func below(_ n: Int) -> Int {
        precondition(n > 0)
        return Int(next16()) % n
    }
}
