/// Stops the fuzz run with a message when an invariant does not hold; libFuzzer saves the
/// input that caused it.
@inline(__always)
func require(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String,
             file: StaticString = #fileID, line: UInt = #line) {
    if !condition() { fatalError("invariant violated: \(message())", file: file, line: line) }
}

/// Small deterministic parameters (IDs, TTLs, addresses) taken from the input itself, so a
/// saved crash input reproduces exactly.
struct InputParameters {
    let seed: UInt64

    init(_ raw: UnsafeRawBufferPointer) {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325  // FNV-1a
        for b in raw { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        seed = h
    }

    func bits(_ shift: UInt64, _ mask: UInt64) -> UInt64 { (seed >> shift) & mask }
}

/// The same name with the case of every ASCII letter flipped (what a 0x20-randomizing
/// client might send).
func flippedCase(_ wire: [UInt8]) -> [UInt8] {
    var out = wire
    var i = 0
    while i < out.count, out[i] != 0 {
        let len = Int(out[i])
        guard i + len < out.count else { break }
        for j in (i + 1)..<(i + 1 + len) {
            let b = out[j]
            if (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) { out[j] = b ^ 0x20 }
        }
        i += len + 1
    }
    return out
}

func readU16(_ b: some RandomAccessCollection<UInt8>, at o: Int) -> UInt16 {
    let i = b.index(b.startIndex, offsetBy: o)
    return UInt16(b[i]) << 8 | UInt16(b[b.index(after: i)])
}

func readU32(_ b: some RandomAccessCollection<UInt8>, at o: Int) -> UInt32 {
    UInt32(readU16(b, at: o)) << 16 | UInt32(readU16(b, at: o + 2))
}
