import Foundation
import Testing

/// Sessions under `serve --user nobody` (the packaged service's default): the database, the
/// control socket and the session sets stay fully usable after root is dropped. Each step
/// that writes (login, logout, expiry, re-apply) is checked in all three places: the
/// database (a restart re-applies what nobody wrote), the kernel set, the connmarks.
extension KernelSuite {
@Suite("Sessions under --user (kernel)", .serialized)
struct SessionPrivilegeTests {
    static let guest = SessionTests.guest
    static let other = "127.0.0.13"

    func session(_ lab: Lab, _ args: [String]) -> CommandResult {
        lab.run([Lab.markdnsBinary, "session"] + args + ["--config", lab.path("policy.toml")])
    }

    func setText(_ lab: Lab) -> String {
        lab.run(["nft", "list", "set", "inet", "markdns", "session_authenticated_v4"]).stdout
    }

    func answer(_ lab: Lab, _ name: String, from client: String) -> String {
        lab.dig(name, from: client, options: ["+short", "+notcp"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func startAsNobody(_ lab: Lab) throws -> ChildProcess {
        try lab.startMarkdns(["--config", lab.path("policy.toml"), "--user", "nobody"])
    }

    @Test("login, logout, expiry and SIGHUP work as nobody; a restart re-applies what nobody wrote")
    func sessionsAsNobody() throws {
        let uid = try #require(Int(Lab.shell(["id", "-u", "nobody"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)))
        let lab = try Lab("sesspriv")
        defer { lab.close() }
        try SessionTests.policy(lab).write(toFile: lab.path("policy.toml"), atomically: true, encoding: .utf8)
        try lab.exec([Lab.markdnsBinary, "rules", "--config", lab.path("policy.toml"), "--apply"])
        try lab.startUpstream(address: "127.0.0.2")
        var md = try startAsNobody(lab)

        let status = PrivilegeTests.status("/proc/\(md.pid)/status")
        #expect(status["Uid"]?.split(separator: "\t").allSatisfy { $0 == "\(uid)" } == true, "\(status["Uid"] ?? "-")")
        // nft children need CAP_NET_ADMIN: inheritable and ambient, and nothing more.
        #expect(PrivilegeTests.caps(status, "CapAmb") == PrivilegeTests.netAdmin, "CapAmb \(status["CapAmb"] ?? "-")")
        #expect(PrivilegeTests.caps(status, "CapInh") == PrivilegeTests.netAdmin, "CapInh \(status["CapInh"] ?? "-")")
        #expect(PrivilegeTests.caps(status, "CapBnd") == PrivilegeTests.netAdmin, "CapBnd \(status["CapBnd"] ?? "-")")
        #expect(answer(lab, "a.example.test", from: Self.guest) == "192.0.2.99", "walled garden before login")

        // An open flow of the guest: its connmark is rewritten in place by the login.
        try lab.spawnPython("conn", SessionTests.openConnection)
        try lab.waitForLog("conn.log", contains: "open")
        func tcpMark() -> UInt32? { lab.flows().first { $0.proto == "tcp" && $0.sport == 40001 }?.mark }
        try Lab.waitFor("TCP flow marked garden: \(lab.flows())") { tcpMark() == 0x300 }

        let login = session(lab, ["login", Self.guest, "--mark", "authenticated"])
        #expect(login.status == 0, "\(login.stdout)\(login.stderr)")
        #expect(setText(lab).contains("\(Self.guest) timeout 1h expires"), "\(setText(lab))")
        #expect(tcpMark() == 0x100, "\(lab.flows())")
        lab.forgetUpstreamFlows()
        #expect(answer(lab, "b.example.test", from: Self.guest) == "192.0.2.7", "forwarded after login")
        let up = lab.upstreamFlows(to: "127.0.0.2")
        #expect(!up.isEmpty && up.allSatisfy { $0.mark == 0x100 }, "\(up)")

        // Expiry (the tick on the session loop) as nobody: out of the database and the set.
        #expect(session(lab, ["login", Self.other, "--mark", "authenticated", "--for", "2s"]).status == 0)
        #expect(setText(lab).contains(Self.other), "\(setText(lab))")
        try Lab.waitFor("the 2s session expires: \(lab.readLog("markdns.log"))", seconds: 8) {
            lab.readLog("markdns.log").contains("1 session(s) expired")
        }
        #expect(session(lab, ["show", Self.other]).status == 1)
        #expect(!setText(lab).contains(Self.other), "\(setText(lab)) \(lab.readLog("markdns.log"))")

        // SIGHUP re-applies the stored sessions through nft, as nobody.
        try lab.exec(["nft", "flush", "set", "inet", "markdns", "session_authenticated_v4"])
        md.signal(SIGHUP)
        try Lab.waitFor("the re-apply on SIGHUP: \(lab.readLog("markdns.log"))") {
            lab.readLog("markdns.log").contains("sessions: 1 live session(s) re-applied\n")
        }
        #expect(setText(lab).contains(Self.guest), "\(setText(lab))")
        #expect(!lab.readLog("markdns.log").contains("re-apply failed"), "\(lab.readLog("markdns.log"))")

        // What nobody wrote is in the database: a restart (set emptied first) brings the
        // guest back; then a logout as nobody, and the next restart has no session.
        #expect(lab.stop(md) == 0, "\(lab.readLog("markdns.log"))")
        try lab.exec(["nft", "flush", "set", "inet", "markdns", "session_authenticated_v4"])
        md = try startAsNobody(lab)
        #expect(setText(lab).contains(Self.guest), "restart: \(setText(lab))")
        let logout = session(lab, ["logout", Self.guest])
        #expect(logout.status == 0, "\(logout.stdout)\(logout.stderr)")
        #expect(!setText(lab).contains(Self.guest), "\(setText(lab))")
        try Lab.waitFor("TCP flow back to garden: \(lab.flows())") { tcpMark() == 0x300 }
        #expect(lab.stop(md) == 0)
        md = try startAsNobody(lab)
        #expect(session(lab, ["list", "--json"]).stdout.contains("{\"sessions\":[]}"), "\(session(lab, ["list", "--json"]).stdout)")
        #expect(answer(lab, "c.example.test", from: Self.guest) == "192.0.2.99", "walled garden after the logout and a restart")
        #expect(lab.stop(md) == 0)
        let log = lab.readLog("markdns.log")
        #expect(!log.contains(" error markdns:"), "\(log)")
    }
}
}
