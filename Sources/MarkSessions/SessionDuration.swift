/// Session lengths as written on the command line and in the policy: a whole number and one
/// unit, `90s`, `15m`, `2h`, `7d`. No fractions, no combinations (`1h30m` is `90m`), at
/// least one second, at most 365 days (nft element timeouts are milliseconds in 64 bits;
/// the bound is ours, so a typo like `7000d` is caught).
public enum SessionDuration {
    public static let maxSeconds: UInt32 = 365 * 86_400

    public struct ParseError: Error, Equatable, Sendable, CustomStringConvertible {
        public let text: String
        public let reason: String
        public var description: String { "'\(text)' is not a duration: \(reason)" }
    }

    /// The duration in seconds.
    public static func parse(_ text: String) -> Result<UInt32, ParseError> {
        func fail(_ r: String) -> Result<UInt32, ParseError> { .failure(ParseError(text: text, reason: r)) }
        let u = Array(text.utf8)
        guard let last = u.last, u.count >= 2 else { return fail("write a number and a unit: 90s, 15m, 2h, 7d") }
        let unit: UInt64
        switch last {
        case UInt8(ascii: "s"): unit = 1
        case UInt8(ascii: "m"): unit = 60
        case UInt8(ascii: "h"): unit = 3600
        case UInt8(ascii: "d"): unit = 86_400
        default: return fail("the unit must be s, m, h or d")
        }
        var n: UInt64 = 0
        for c in u.dropLast() {
            guard c >= UInt8(ascii: "0"), c <= UInt8(ascii: "9") else { return fail("write a whole number before the unit") }
            n = n * 10 + UInt64(c - UInt8(ascii: "0"))
            if n > UInt64(maxSeconds) { return fail("longer than 365d") }
        }
        let seconds = n * unit
        guard seconds > 0 else { return fail("must be at least 1s") }
        guard seconds <= UInt64(maxSeconds) else { return fail("longer than 365d") }
        return .success(UInt32(seconds))
    }

    /// The shortest exact form: `7d`, `2h`, `90m`, `45s`.
    public static func format(_ seconds: UInt32) -> String {
        if seconds > 0, seconds % 86_400 == 0 { return "\(seconds / 86_400)d" }
        if seconds > 0, seconds % 3600 == 0 { return "\(seconds / 3600)h" }
        if seconds > 0, seconds % 60 == 0 { return "\(seconds / 60)m" }
        return "\(seconds)s"
    }
}
