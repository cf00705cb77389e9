/// `range = "0x1000-0x1fff"` on a `[[mark]]`: the mark values handed out one per user.
public struct MarkRange: Sendable, Hashable, CustomStringConvertible {
    public let lower: UInt32
    public let upper: UInt32

    public init?(lower: UInt32, upper: UInt32) {
        guard lower != 0, lower <= upper else { return nil }
        self.lower = lower; self.upper = upper
    }

    public struct ParseError: Error, Equatable, Sendable, CustomStringConvertible {
        public let text: String
        public let reason: String
        public var description: String { "'\(text)' is not a mark range: \(reason)" }
    }

    /// `LOW-HIGH`, each decimal or `0x` hex, LOW non-zero and not above HIGH.
    public static func parse(_ text: String) -> Result<MarkRange, ParseError> {
        func fail(_ r: String) -> Result<MarkRange, ParseError> { .failure(ParseError(text: text, reason: r)) }
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2 else { return fail("write LOW-HIGH, for example 0x1000-0x1fff") }
        guard let lo = number(parts[0]), let hi = number(parts[1]) else {
            return fail("bounds are decimal or 0x-hex 32-bit numbers")
        }
        guard lo != 0 else { return fail("0 means unmarked; start at 1 or above") }
        guard lo <= hi else { return fail("the lower bound is above the upper one") }
        return .success(MarkRange(lower: lo, upper: hi)!)
    }

    private static func number(_ s: Substring) -> UInt32? {
        let t = s.trimmingSpaces
        if t.hasPrefix("0x") || t.hasPrefix("0X") { return UInt32(t.dropFirst(2), radix: 16) }
        return UInt32(t)
    }

    public var count: UInt64 { UInt64(upper) - UInt64(lower) + 1 }
    public func contains(_ v: UInt32) -> Bool { v >= lower && v <= upper }
    public var description: String { "\(hex(lower))-\(hex(upper))" }
}

extension Substring {
    var trimmingSpaces: Substring {
        var s = self
        while s.first == " " { s = s.dropFirst() }
        while s.last == " " { s = s.dropLast() }
        return s
    }
}

/// `0x` and lower-case hex, as marks are written everywhere else.
func hex(_ v: UInt32) -> String { "0x" + String(v, radix: 16) }
