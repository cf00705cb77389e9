import Foundation
import Testing

/// Sessions end to end: `markdns rules` declares the session sets, `markdns session` speaks
/// to the control socket of a running `markdns serve`, which records the session (SQLite),
/// adds the client to the kernel set with its timeout and rewrites the connmark of the
/// client's open flows in place (checked with `conntrack -L`); the guest's next query on its
/// same UDP flow is forwarded with the new mark. Logout, expiry, errors and a restart.
extension KernelSuite {
@Suite("Sessions (kernel)", .serialized)
struct SessionTests {
    static let guest = "127.0.0.12"
    static let guestPort = 5400

    static func policy(_ lab: Lab, tls: String = "") -> String {
        """
        [server]
        listen = ["127.0.0.1:53"]

        [conntrack]
        mask = 0xff00

        [sessions]
        database = "\(lab.path("sessions.db"))"
        control = "\(lab.path("control.sock"))"
        portal-api = "127.0.0.1:8908"
        \(tls)
        [[pool]]
        name = "wan"
        servers = ["127.0.0.2:5353"]

        [[mark]]
        value = 0x0100
        name = "authenticated"
        sessions = true
        session-timeout = "1h"

        [[mark]]
        value = 0x0300
        name = "garden"
        action = "walled-garden"
        portal = ["192.0.2.99"]
        user-portal-url = "https://portal.example.test/login"

        [[client]]
        name = "guests"
        match = ["\(guest)/32"]
        mark = "garden"
        """
    }

    /// A TCP connection from the guest that stays open (its conntrack entry lives on).
    static let openConnection = """
        import socket, sys, time
        srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind(("127.0.0.1", 8080)); srv.listen(1)
        c = socket.socket(); c.bind(("\(guest)", 40001)); c.connect(("127.0.0.1", 8080))
        s, _ = srv.accept()
        print("open", flush=True)
        while True:
            c.send(b"x"); s.recv(16); time.sleep(0.2)
        """

    func session(_ lab: Lab, _ args: [String]) -> CommandResult {
        lab.run([Lab.markdnsBinary, "session"] + args + ["--config", lab.path("policy.toml")])
    }

    func answer(_ lab: Lab, _ name: String) -> String {
        lab.dig(name, from: "\(Self.guest)#\(Self.guestPort)", options: ["+short", "+notcp"]).stdout
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func tcpMark(_ lab: Lab) -> UInt32? { lab.flows().first { $0.proto == "tcp" && $0.sport == 40001 }?.mark }
    func udpFlows(_ lab: Lab) -> [Lab.Flow] {
        lab.flows().filter { $0.proto == "udp" && $0.src == Self.guest && $0.sport == Self.guestPort && $0.dport == 53 }
    }
    func setText(_ lab: Lab) -> String {
        lab.run(["nft", "list", "set", "inet", "markdns", "session_authenticated_v4"]).stdout
    }
    /// The set without the countdowns (`expires 9m58s`).
    func setElements(_ lab: Lab) -> String {
        setText(lab).replacingOccurrences(of: #"expires [0-9hms.]+"#, with: "", options: .regularExpression)
    }

    func start(_ label: String, tls: ((Lab) throws -> String)? = nil) throws -> (Lab, ChildProcess) {
        let lab = try Lab(label)
        do {
            try Self.policy(lab, tls: try tls?(lab) ?? "").write(toFile: lab.path("policy.toml"), atomically: true, encoding: .utf8)
            try lab.exec([Lab.markdnsBinary, "rules", "--config", lab.path("policy.toml"), "--apply"])
            try lab.startUpstream(address: "127.0.0.2")
            let md = try lab.startMarkdns(["--config", lab.path("policy.toml")])
            return (lab, md)
        } catch {
            lab.close()
            throw error
        }
    }

    @Test("login switches the open flows in place, the same UDP flow's next query is forwarded with the new mark; logout undoes it")
    func loginAndLogout() throws {
        let (lab, md) = try start("sessions")
        defer { lab.close() }
        try lab.spawnPython("conn", Self.openConnection)
        try lab.waitForLog("conn.log", contains: "open")
        #expect(answer(lab, "www.example.test") == "192.0.2.99", "walled garden before login")
        let api = ["curl", "-s", "-i", "--interface", Self.guest, "http://127.0.0.1:8908/captive-portal/api"]
        let captive = lab.run(api).stdout
        #expect(captive.contains("Content-Type: application/captive+json"), "\(captive)")
        #expect(captive.contains(#"{"captive":true,"user-portal-url":"https://portal.example.test/login"}"#), "\(captive)")
        try Lab.waitFor("TCP flow marked garden: \(lab.flows())") { tcpMark(lab) == 0x300 }
        // A bit outside our mask (another mark user's) on the open flow: it must survive.
        // (set by a rule of its own, removed again before the login).
        try lab.exec(["nft", "-f", "-"], input: """
            table inet other {
              chain out {
                type filter hook output priority 0; policy accept;
                tcp sport 40001 ct mark set ct mark or 0x1
              }
            }
            """)
        try Lab.waitFor("outside bit set: \(lab.flows())") { tcpMark(lab) == 0x301 }
        try lab.exec(["nft", "delete", "table", "inet", "other"])
        let udpBefore = udpFlows(lab)
        #expect(udpBefore.count == 1 && udpBefore[0].mark == 0x300, "\(udpBefore)")

        let login = session(lab, ["login", Self.guest, "--mark", "authenticated"])
        #expect(login.status == 0, "\(login.stdout)\(login.stderr)")
        #expect(login.stdout.contains("\"mark\":\"authenticated\""), "\(login.stdout)")
        // In place: the same entries (same ports), new mark, nothing deleted.
        #expect(tcpMark(lab) == 0x101, "\(lab.flows())")
        let udpAfter = udpFlows(lab)
        #expect(udpAfter.count == 1 && udpAfter[0].mark == 0x100, "\(udpAfter)")
        #expect(setText(lab).contains("\(Self.guest) timeout 1h expires"), "\(setText(lab))")

        lab.forgetUpstreamFlows()
        #expect(answer(lab, "www.example.test") == "192.0.2.7", "forwarded after login")
        let up = lab.upstreamFlows(to: "127.0.0.2")
        #expect(!up.isEmpty && up.allSatisfy { $0.mark == 0x100 }, "upstream flow with the authenticated mark: \(up)")
        #expect(udpFlows(lab).count == 1, "still the same UDP flow")
        let admitted = lab.run(api).stdout
        #expect(admitted.contains(#"{"captive":false,"seconds-remaining":"#), "\(admitted)")

        let list = session(lab, ["list", "--json"])
        #expect(list.status == 0 && list.stdout.contains("\"client\":\"\(Self.guest)\""), "\(list.stdout)")
        #expect(session(lab, ["show", Self.guest]).stdout.contains("\"seconds-remaining\":"))
        #expect(try String(contentsOfFile: lab.path("markdns.log"), encoding: .utf8).contains("session login \(Self.guest)"))

        let logout = session(lab, ["logout", Self.guest])
        #expect(logout.status == 0, "\(logout.stdout)\(logout.stderr)")
        #expect(!setText(lab).contains(Self.guest), "\(setText(lab))")
        // Our bits cleared: the next packet of each flow is marked by the static selector again.
        try Lab.waitFor("TCP flow back to garden: \(lab.flows())") { tcpMark(lab) == 0x301 }
        #expect(answer(lab, "www.example.test") == "192.0.2.99", "walled garden after logout")
        #expect(udpFlows(lab).first?.mark == 0x300)
        #expect(session(lab, ["show", Self.guest]).status == 1)
        #expect(md.isRunning)
        // The mark changes cost the packet-mark shortcut nothing.
        lab.stop(md)
        #expect(lab.readLog("markdns.log").contains("packet_mark_mismatches=0 "), "\(lab.readLog("markdns.log"))")
    }

    @Test("the Captive Portal API over HTTPS (portal-tls-cert/key): captive before login, not after; plain HTTP gets no JSON")
    func portalAPIOverTLS() throws {
        var ca = ""
        let (lab, md) = try start("sesstls") { lab in
            func run(_ args: [String]) throws {
                let r = Lab.shell(args)
                guard r.status == 0 else { throw LabError("\(args.joined(separator: " ")): \(r.stderr)") }
            }
            try run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                     "-keyout", lab.path("ca.key"), "-out", lab.path("ca.pem"), "-days", "2", "-subj", "/CN=markdns portal CA"])
            try "subjectAltName=IP:127.0.0.1\n".write(toFile: lab.path("ext.cnf"), atomically: true, encoding: .utf8)
            try run(["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                     "-keyout", lab.path("portal.key"), "-out", lab.path("portal.csr"), "-subj", "/CN=portal.test"])
            try run(["openssl", "x509", "-req", "-in", lab.path("portal.csr"), "-CA", lab.path("ca.pem"), "-CAkey", lab.path("ca.key"),
                     "-CAcreateserial", "-out", lab.path("portal.pem"), "-days", "2", "-extfile", lab.path("ext.cnf")])
            ca = lab.path("ca.pem")
            return "portal-tls-cert = \"\(lab.path("portal.pem"))\"\nportal-tls-key = \"\(lab.path("portal.key"))\"\n"
        }
        defer { lab.close() }
        let https = ["curl", "-s", "--max-time", "3", "--cacert", ca, "--interface", Self.guest,
                     "https://127.0.0.1:8908/captive-portal/api"]
        let captive = lab.run(https)
        #expect(captive.status == 0 && captive.stdout.contains(#"{"captive":true,"user-portal-url":"https://portal.example.test/login"}"#),
                "\(captive.stdout)\(captive.stderr)")
        let plain = lab.run(["curl", "-s", "--max-time", "3", "--interface", Self.guest, "http://127.0.0.1:8908/captive-portal/api"])
        #expect(plain.status != 0 && !plain.stdout.contains("captive"), "plain HTTP answered: \(plain.stdout)")
        let login = session(lab, ["login", Self.guest, "--mark", "authenticated"])
        #expect(login.status == 0, "\(login.stdout)\(login.stderr)")
        let admitted = lab.run(https).stdout
        #expect(admitted.hasPrefix(#"{"captive":false,"seconds-remaining":"#), "\(admitted)")
        #expect(lab.readLog("markdns.log").contains("Captive Portal API on https://127.0.0.1:8908"))
        #expect(md.isRunning)
    }

    @Test("errors: exit 1, a clear message, and the database, the kernel set and the connmarks unchanged")
    func errorsChangeNothing() throws {
        let (lab, md) = try start("sesserr")
        defer { lab.close() }
        try lab.spawnPython("conn", Self.openConnection)
        try lab.waitForLog("conn.log", contains: "open")
        try Lab.waitFor("TCP flow marked garden") { tcpMark(lab) == 0x300 }
        let other = "127.0.0.13"
        #expect(session(lab, ["login", other, "--mark", "authenticated", "--for", "10m"]).status == 0)
        let setBefore = setElements(lab), listBefore = session(lab, ["list", "--json"]).stdout
        let cases: [([String], String)] = [
            (["login", Self.guest, "--mark", "nope"], "no [[mark]] is named 'nope'"),
            (["login", "127.0.0.300", "--mark", "authenticated"], "is not an IPv4 or IPv6 address"),
            (["login", Self.guest, "--mark", "garden"], "is not allowed for sessions"),
            (["login", Self.guest, "--mark", "authenticated", "--for", "3y"], "is not a duration"),
            (["logout", Self.guest], "has no session"),
        ]
        for (args, message) in cases {
            let r = session(lab, args)
            #expect(r.status == 1, "\(args): \(r.stdout)")
            #expect(r.stderr.contains(message), "\(args): \(r.stderr)")
        }
        #expect(setElements(lab) == setBefore)
        #expect(setBefore.contains(other))
        // seconds-remaining may tick between the two listings: compare the rows without it.
        func rows(_ s: String) -> String { s.replacingOccurrences(of: #""seconds-remaining":\d+"#, with: "", options: .regularExpression) }
        #expect(rows(session(lab, ["list", "--json"]).stdout) == rows(listBefore))
        #expect(tcpMark(lab) == 0x300)

        // A database that cannot be written (another process holds its write lock):
        // refused, and the database, the kernel set and the connmarks stay as they were.
        let locker = try lab.spawnPython("lock", """
            import sqlite3, time
            db = sqlite3.connect("\(lab.path("sessions.db"))", isolation_level=None)
            db.execute("BEGIN EXCLUSIVE")
            print("locked", flush=True)
            time.sleep(30)
            """)
        try lab.waitForLog("lock.log", contains: "locked")
        let locked = session(lab, ["login", Self.guest, "--mark", "authenticated"])
        #expect(locked.status == 1, "\(locked.stdout)")
        #expect(locked.stderr.contains("session database"), "\(locked.stderr)")
        #expect(setElements(lab) == setBefore)
        #expect(tcpMark(lab) == 0x300)
        lab.stop(locker)
        #expect(rows(session(lab, ["list", "--json"]).stdout) == rows(listBefore))
        #expect(md.isRunning)
    }

    @Test("restart and rules reload keep the session; a --for 3s session expires back to the walled garden")
    func restartAndExpiry() throws {
        let (lab, md) = try start("sessrestart")
        defer { lab.close() }
        #expect(session(lab, ["login", Self.guest, "--mark", "authenticated", "--for", "2h"]).status == 0)
        #expect(answer(lab, "a.example.test") == "192.0.2.7")
        lab.stop(md)
        // Reload the rules (the table is replaced): the session comes back from the database.
        try lab.exec([Lab.markdnsBinary, "rules", "--config", lab.path("policy.toml"), "--apply"])
        // What is left of the 2 h (a second may have passed since the login).
        let reloaded = setText(lab)
        #expect(reloaded.contains("\(Self.guest) timeout 2h expires") || reloaded.contains("\(Self.guest) timeout 1h59m5"), "\(reloaded)")
        try lab.exec(["nft", "flush", "set", "inet", "markdns", "session_authenticated_v4"])
        let md2 = try lab.startMarkdns(["--config", lab.path("policy.toml")], log: "markdns2.log")
        // serve re-applied it at start-up.
        #expect(setText(lab).contains("\(Self.guest) timeout"), "\(setText(lab))")
        #expect(lab.readLog("markdns2.log").contains("1 live session(s) re-applied"))
        // ... and does again on SIGHUP.
        try lab.exec(["nft", "flush", "set", "inet", "markdns", "session_authenticated_v4"])
        md2.signal(SIGHUP)
        try lab.waitForLog("markdns2.log", contains: "sessions: 1 live session(s) re-applied\n")
        #expect(setText(lab).contains("\(Self.guest) timeout"), "\(setText(lab))")
        #expect(answer(lab, "b.example.test") == "192.0.2.7", "still authenticated after the restart")

        #expect(session(lab, ["login", Self.guest, "--mark", "authenticated", "--for", "3s"]).status == 0)
        #expect(answer(lab, "c.example.test") == "192.0.2.7")
        try Lab.waitFor("the session expires", seconds: 8) {
            !setText(lab).contains(Self.guest) && session(lab, ["list", "--json"]).stdout.contains("{\"sessions\":[]}")
        }
        try Lab.waitFor("walled garden after expiry", seconds: 3) { answer(lab, "d.example.test") == "192.0.2.99" }
    }

    @Test("200 clients logging in and out concurrently: the database and the kernel set agree at the end")
    func concurrentLoginsAndLogouts() throws {
        let (lab, md) = try start("sessmany")
        defer { lab.close() }
        let clients = (0..<200).map { "10.9.\($0 / 100).\($0 % 100 + 1)" }
        let cli = "\(Lab.markdnsBinary) session %s --config \(lab.path("policy.toml"))"
        func parallel(_ lines: [String]) throws {
            try lines.joined(separator: "\n").write(toFile: lab.path("ops.txt"), atomically: true, encoding: .utf8)
            let r = lab.run(["sh", "-c", "xargs -P 16 -I OP sh -c \"$(printf '\(cli)' 'OP') > /dev/null\" < \(lab.path("ops.txt"))"])
            #expect(r.status == 0, "\(r.stderr)")
        }
        try parallel(clients.map { "login \($0) --mark authenticated --for 10m" })
        // Every other client logs out while the rest log in again (a second login replaces).
        try parallel(clients.enumerated().map { $0.offset % 2 == 0 ? "logout \($0.element)" : "login \($0.element) --mark authenticated" })
        let listed = session(lab, ["list", "--json"]).stdout
        let stored = Set(clients.filter { listed.contains("\"client\":\"\($0)\"") })
        let set = setText(lab)
        let inKernel = Set(clients.filter { set.contains("\($0) timeout") })
        let expected = Set(clients.enumerated().filter { $0.offset % 2 == 1 }.map(\.element))
        #expect(stored == expected, "database: \(stored.count) of \(expected.count)")
        #expect(inKernel == expected, "kernel: \(inKernel.count) of \(expected.count)")
        #expect(md.isRunning)
    }
}
}
