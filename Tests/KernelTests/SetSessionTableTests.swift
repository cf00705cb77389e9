import Foundation
import Testing

/// `[[set]]` sets and session sets share `table inet markdns`: a client given its mark by a
/// session fills a set restricted to that mark, and `markdns rules --apply` keeps both the
/// set's members and the live session elements, and drops session elements no session backs.
extension KernelSuite {
@Suite("Name-based sets beside sessions (kernel)", .serialized)
struct SetSessionTableTests {
    static let guest = SessionTests.guest

    /// The sessions lab's policy (guests in a walled garden, sessions of mark
    /// "authenticated") and a set for the authenticated only.
    static func policy(_ lab: Lab) -> String {
        SessionTests.policy(lab) + """

        [[set]]
        name = "vpn"
        domains = ["video.test"]
        marks = ["authenticated"]
        timeout-min = 900
        """
    }

    @Test("a session's mark fills its set; rules --apply keeps set members and live sessions, drops the rest")
    func setsAndSessionsShareTheTable() throws {
        let lab = try Lab("setsess")
        defer { lab.close() }
        let policyFile = lab.path("policy.toml")
        try Self.policy(lab).write(toFile: policyFile, atomically: true, encoding: .utf8)
        let apply = [Lab.markdnsBinary, "rules", "--config", policyFile, "--apply"]
        try lab.exec(apply)
        try lab.startUpstream(address: "127.0.0.2", extra: ["--local-ttl=60", "--host-record=a.video.test,192.0.2.21",
                                                          "--host-record=b.video.test,192.0.2.22"])
        try lab.startMarkdns(["--config", policyFile])
        func session(_ args: [String]) -> CommandResult {
            lab.run([Lab.markdnsBinary, "session"] + args + ["--config", policyFile])
        }
        func list(_ set: String) -> String { lab.run(["nft", "list", "set", "inet", "markdns", set]).stdout }
        func dig(_ name: String) -> String {
            lab.dig(name, from: Self.guest, options: ["+short"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        }

        // Without a session the guest is in the walled garden: its mark does not qualify.
        #expect(dig("a.video.test") == "192.0.2.99")
        #expect(!list("vpn_v4").contains("192.0.2."), "the garden fills nothing: \(list("vpn_v4"))")
        let login = session(["login", Self.guest, "--mark", "authenticated", "--for", "2h"])
        #expect(login.status == 0, "\(login.stderr)")
        #expect(dig("b.video.test") == "192.0.2.22")
        #expect(list("vpn_v4").contains("192.0.2.22 timeout 15m"), "a session's mark qualifies: \(list("vpn_v4"))")

        // Re-apply: both kinds of element survive, the rules are there once.
        try lab.exec(apply)
        #expect(list("vpn_v4").contains("192.0.2.22 timeout 15m"), "set member kept: \(list("vpn_v4"))")
        #expect(list("session_authenticated_v4").contains("\(Self.guest) timeout"), "session kept: \(list("session_authenticated_v4"))")
        let rules = lab.run(["nft", "list", "chain", "inet", "markdns", "prerouting"]).stdout
        #expect(rules.components(separatedBy: "@session_authenticated_v4").count == 2, "one session rule: \(rules)")
        #expect(dig("a.video.test") == "192.0.2.21")
        #expect(list("vpn_v4").contains("192.0.2.21 timeout 15m"), "still filled after the re-apply: \(list("vpn_v4"))")

        // An element no session backs (left by a crash, say) and a logout: a re-apply refills
        // the session set from the database only; the set members stay.
        try lab.exec(["nft", "add", "element", "inet", "markdns", "session_authenticated_v4", "{ 127.0.0.99 timeout 1h }"])
        #expect(session(["logout", Self.guest]).status == 0)
        try lab.exec(apply)
        let sessions = list("session_authenticated_v4")
        #expect(!sessions.contains(Self.guest) && !sessions.contains("127.0.0.99"), "\(sessions)")
        #expect(list("vpn_v4").contains("192.0.2.21") && list("vpn_v4").contains("192.0.2.22"), "\(list("vpn_v4"))")
    }
}
}
