/// One client's session: which mark it has until when. Times are Unix seconds (the store
/// keeps them, so a restart knows what is left).
public struct Session: Sendable, Equatable {
    public var client: SessionClient
    /// The `[[mark]]` the session is of.
    public var markName: String
    /// The mark value the client gets (the mark's value, or one of its range for a user).
    public var mark: UInt32
    public var user: String?
    public var started: Int64
    public var expires: Int64

    public init(client: SessionClient, markName: String, mark: UInt32, user: String?, started: Int64, expires: Int64) {
        self.client = client; self.markName = markName; self.mark = mark; self.user = user
        self.started = started; self.expires = expires
    }

    public func isLive(at now: Int64) -> Bool { expires > now }

    /// Whole seconds left, at least 1 while live (a kernel timeout of 0 means "none").
    public func remaining(at now: Int64) -> UInt32 {
        guard expires > now else { return 0 }
        return UInt32(clamping: expires - now)
    }
}

/// What the policy says about a mark that sessions may give (`sessions = true`).
public struct SessionMark: Sendable, Equatable {
    public var name: String
    /// The mark value; for a range mark, ignored in favour of `range`.
    public var value: UInt32
    /// Per-user values (`range = "0x1000-0x1fff"`); nil for a single value.
    public var range: MarkRange?
    /// Default session length (`session-timeout`), seconds.
    public var timeout: UInt32
    /// The mark is a walled garden (RFC 8908 `captive` is true while a client has it).
    public var captive: Bool
    /// `user-portal-url`, for the Captive Portal API.
    public var portalURL: String?

    public static let defaultTimeout: UInt32 = 86_400

    public init(name: String, value: UInt32, range: MarkRange? = nil, timeout: UInt32 = SessionMark.defaultTimeout,
                captive: Bool = false, portalURL: String? = nil) {
        self.name = name; self.value = value; self.range = range; self.timeout = timeout
        self.captive = captive; self.portalURL = portalURL
    }
}

/// The session part of a policy: our connmark bits and the marks sessions may give.
public struct SessionRules: Sendable, Equatable {
    public var mask: UInt32
    public var marks: [SessionMark]
    /// The policy's other marks (refused with "not allowed for sessions", not "unknown").
    public var otherMarks: [String]

    public init(mask: UInt32 = .max, marks: [SessionMark] = [], otherMarks: [String] = []) {
        self.mask = mask; self.marks = marks; self.otherMarks = otherMarks
    }

    public func mark(named n: String) -> SessionMark? { marks.first { $0.name == n } }
}

/// Why an operation was refused; nothing was changed.
public enum SessionError: Error, Equatable, Sendable, CustomStringConvertible {
    case unknownMark(String, known: [String])
    case sessionsNotAllowed(String)
    case badUser(String)
    case userRequired(String)
    case rangeExhausted(String, MarkRange)
    case noSession(SessionClient)

    public var description: String {
        switch self {
        case let .unknownMark(n, known):
            return "no [[mark]] is named '\(n)'" + (known.isEmpty ? " (no mark has sessions = true)" : " (marks with sessions: \(known.joined(separator: ", ")))")
        case let .sessionsNotAllowed(n): return "mark '\(n)' is not allowed for sessions (set sessions = true on its [[mark]])"
        case let .badUser(u): return "'\(u)' is not a user name (1 to 64 letters, digits, '.', '_', '-', '@')"
        case let .userRequired(n): return "mark '\(n)' gives each user a value of its range: give --user"
        case let .rangeExhausted(n, r): return "mark '\(n)': every value of \(r) belongs to a live session"
        case let .noSession(c): return "\(c) has no session"
        }
    }

    public static func isValidUser(_ u: String) -> Bool {
        let s = u.unicodeScalars
        return !s.isEmpty && s.count <= 64 && s.allSatisfy {
            $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || "._-@".unicodeScalars.contains($0))
        }
    }
}
