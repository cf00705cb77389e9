import Foundation
import Testing

/// Per-user marks: two users logged in to a range mark get distinct values from the range,
/// their new flows carry them (session map), and `markdns session list` counts each user's
/// bytes exactly (conntrack accounting of known transfers).
extension KernelSuite {
@Suite("Session ranges (kernel)", .serialized)
struct SessionRangeTests {
    static func policy(_ lab: Lab) -> String {
        """
        [server]
        listen = ["127.0.0.1:53"]

        [sessions]
        database = "\(lab.path("sessions.db"))"
        control = "\(lab.path("control.sock"))"

        [[pool]]
        name = "wan"
        servers = ["127.0.0.2:5353"]

        [[mark]]
        name = "users"
        range = "0x1000-0x10ff"
        sessions = true
        session-timeout = "1h"
        """
    }

    /// Sends COUNT datagrams of 1000 bytes on the wire (20 IP + 8 UDP + 972) from SRC to a
    /// silent sink, so only the original direction counts.
    static let transfer = """
        import socket, sys, time
        sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); sink.bind(("127.0.0.1", 9999))
        for src, count in (("127.0.0.20", 10), ("127.0.0.21", 5)):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind((src, 41000))
            for _ in range(count):
                s.sendto(b"x" * 972, ("127.0.0.1", 9999)); sink.recv(2048)
        print("sent", flush=True)
        time.sleep(60)
        """

    @Test("two users of one range get distinct marks and their bytes are counted apart")
    func perUserMarksAndBytes() throws {
        let lab = try Lab("sessrange")
        defer { lab.close() }
        try lab.exec(["sysctl", "-qw", "net.netfilter.nf_conntrack_acct=1"])
        try Self.policy(lab).write(toFile: lab.path("policy.toml"), atomically: true, encoding: .utf8)
        try lab.exec([Lab.markdnsBinary, "rules", "--config", lab.path("policy.toml"), "--apply"])
        try lab.startUpstream(address: "127.0.0.2")
        _ = try lab.startMarkdns(["--config", lab.path("policy.toml"), "--metrics", "127.0.0.1:9153"])
        func session(_ args: [String]) -> CommandResult {
            lab.run([Lab.markdnsBinary, "session"] + args + ["--config", lab.path("policy.toml")])
        }
        let ann = session(["login", "127.0.0.20", "--mark", "users", "--user", "ann"])
        let bob = session(["login", "127.0.0.21", "--mark", "users", "--user", "bob"])
        #expect(ann.stdout.contains("\"value\":\"0x1000\""), "\(ann.stdout)\(ann.stderr)")
        #expect(bob.stdout.contains("\"value\":\"0x1001\""), "\(bob.stdout)\(bob.stderr)")
        let noUser = session(["login", "127.0.0.22", "--mark", "users"])
        #expect(noUser.status == 1 && noUser.stderr.contains("give --user"), "\(noUser.stderr)")

        try lab.spawnPython("transfer", Self.transfer)
        try lab.waitForLog("transfer.log", contains: "sent")
        let flows = lab.flows().filter { $0.dport == 9999 }
        #expect(flows.contains { $0.src == "127.0.0.20" && $0.mark == 0x1000 }, "\(flows)")
        #expect(flows.contains { $0.src == "127.0.0.21" && $0.mark == 0x1001 }, "\(flows)")
        let list = session(["list", "--json"]).stdout
        #expect(list.contains(#""client":"127.0.0.20","mark":"users","value":"0x1000","user":"ann""#), "\(list)")
        #expect(list.contains(#""bytes":10000,"packets":10}"#), "ann's bytes: \(list)")
        #expect(list.contains(#""bytes":5000,"packets":5}"#), "bob's bytes: \(list)")
        let metrics = lab.run(["curl", "-s", "http://127.0.0.1:9153/metrics"]).stdout
        #expect(metrics.contains(#"markdns_sessions_live{mark="users"} 2"#), "\(metrics)")
        #expect(metrics.contains("markdns_session_logins_total 2"), "\(metrics)")
        #expect(metrics.contains("markdns_session_apply_failures_total 0"), "\(metrics)")
        let json = lab.run(["curl", "-s", "http://127.0.0.1:9153/sessions"]).stdout
        #expect(json.contains(#""bytes":10000,"packets":10}"#), "per-user figures on /sessions: \(json)")
        let acct = lab.run([Lab.markdnsBinary, "accounting", "--config", lab.path("policy.toml")]).stdout
        #expect(acct.contains("ann  users 0x1000  127.0.0.20  bytes 10000  packets 10"), "\(acct)")
        #expect(acct.contains("bob  users 0x1001  127.0.0.21  bytes 5000  packets 5"), "\(acct)")
        let table = session(["list"]).stdout
        #expect(table.contains("10000") && table.contains("BYTES"), "\(table)")
    }
}
}
