import Foundation
import Testing

/// A session by MAC: a client in a namespace of its own behind a veth pair (MAC
/// 02:00:00:00:01:07, IPv4 and IPv6) logs in by its MAC. The kernel set of MACs marks its
/// new flows, and the open flows of both its addresses (found in the neighbour table through
/// rtnetlink) switch connmark in place; logout undoes both.
extension KernelSuite {
@Suite("Sessions by MAC (kernel)", .serialized)
struct SessionMACTests {
    static let mac = "02:00:00:00:01:07"

    static func policy(_ lab: Lab) -> String {
        """
        [server]
        listen = ["10.77.0.1:53", "[fd77::1]:53"]

        [conntrack]
        mask = 0xff00

        [sessions]
        database = "\(lab.path("sessions.db"))"
        control = "\(lab.path("control.sock"))"
        portal-api = "10.77.0.1:8908"

        [[pool]]
        name = "wan"
        servers = ["127.0.0.2:5353"]

        [[mark]]
        value = 0x0100
        name = "authenticated"
        sessions = true

        [[mark]]
        value = 0x0300
        name = "garden"
        action = "walled-garden"
        portal = ["192.0.2.99"]
        user-portal-url = "https://portal.example.test/login"

        [[client]]
        name = "guests"
        match = ["10.77.0.0/24", "fd77::/64"]
        mark = "garden"
        """
    }

    /// TCP servers on the gateway side (both families), echoing.
    static let servers = """
        import socket, threading
        def serve(family, addr):
            s = socket.socket(family); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(addr); s.listen(4)
            while True:
                c, _ = s.accept()
                threading.Thread(target=lambda c=c: [c.send(c.recv(16)) for _ in iter(int, 1)], daemon=True).start()
        threading.Thread(target=serve, args=(socket.AF_INET6, ("fd77::1", 8080)), daemon=True).start()
        print("listening", flush=True)
        serve(socket.AF_INET, ("10.77.0.1", 8080))
        """

    /// The client's two open connections (one per family), alive while it runs.
    static let connections = """
        import socket, time
        a = socket.socket(); a.bind(("10.77.0.2", 40001)); a.connect(("10.77.0.1", 8080))
        b = socket.socket(socket.AF_INET6); b.bind(("fd77::2", 40002)); b.connect(("fd77::1", 8080))
        print("open", flush=True)
        while True:
            for s in (a, b): s.send(b"x"); s.recv(16)
            time.sleep(0.2)
        """

    @Test("login by MAC marks new flows and switches the open IPv4 and IPv6 flows in place; logout undoes it")
    func loginByMAC() throws {
        let lab = try Lab("sessmac")
        let client = "\(lab.name)-c"
        var clientProcess: ChildProcess?
        defer {
            clientProcess?.signal(SIGTERM)
            _ = clientProcess?.stop(grace: 2)
            _ = Lab.shell(["ip", "netns", "del", client])
            lab.close()
        }
        func inClient(_ args: [String]) -> CommandResult { Lab.shell(["ip", "netns", "exec", client] + args) }
        func must(_ r: CommandResult, _ what: String) throws {
            guard r.status == 0 else { throw LabError("\(what): \(r.stderr)") }
        }
        try must(Lab.shell(["ip", "netns", "add", client]), "ip netns add")
        try must(Lab.shell(["ip", "-n", lab.name, "link", "add", "v0", "type", "veth", "peer", "name", "v1", "netns", client]), "veth")
        for cmd in [["addr", "add", "10.77.0.1/24", "dev", "v0"], ["-6", "addr", "add", "fd77::1/64", "dev", "v0", "nodad"],
                    ["link", "set", "v0", "up"]] {
            try must(Lab.shell(["ip", "-n", lab.name] + cmd), "lab: ip \(cmd)")
        }
        for cmd in [["link", "set", "v1", "address", Self.mac], ["addr", "add", "10.77.0.2/24", "dev", "v1"],
                    ["-6", "addr", "add", "fd77::2/64", "dev", "v1", "nodad"], ["link", "set", "v1", "up"], ["link", "set", "lo", "up"]] {
            try must(Lab.shell(["ip", "-n", client] + cmd), "client: ip \(cmd)")
        }

        try Self.policy(lab).write(toFile: lab.path("policy.toml"), atomically: true, encoding: .utf8)
        try lab.exec([Lab.markdnsBinary, "rules", "--config", lab.path("policy.toml"), "--apply"])
        try lab.startUpstream(address: "127.0.0.2")
        let md = try lab.startMarkdns(["--config", lab.path("policy.toml")], probe: nil)
        try lab.waitForListener("10.77.0.1", port: 53, process: md)
        try lab.spawnPython("servers", Self.servers)
        try lab.waitForLog("servers.log", contains: "listening")
        try Self.connections.write(toFile: lab.path("conn.py"), atomically: true, encoding: .utf8)
        clientProcess = try ChildProcess(["ip", "netns", "exec", client, "python3", "-u", lab.path("conn.py")],
                                         stdout: lab.path("conn.log"), stderr: lab.path("conn.log"))
        try lab.waitForLog("conn.log", contains: "open")

        func tcpMark(_ port: Int) -> UInt32? { lab.flows().first { $0.proto == "tcp" && $0.sport == port }?.mark }
        func answer(_ server: String) -> String {
            inClient(["dig", "+short", "+time=2", "+tries=1", "@\(server)", "q\(UInt32.random(in: 0..<1_000_000)).example.test"])
                .stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        func session(_ args: [String]) -> CommandResult {
            lab.run([Lab.markdnsBinary, "session"] + args + ["--config", lab.path("policy.toml")])
        }
        try Lab.waitFor("both flows marked garden: \(lab.flows())") { tcpMark(40001) == 0x300 && tcpMark(40002) == 0x300 }
        #expect(answer("10.77.0.1") == "192.0.2.99")
        #expect(answer("fd77::1") == "192.0.2.99")
        // The gateway knows the client's MAC for both addresses (the veth's neighbour table).
        let api = ["curl", "-s", "--max-time", "3", "http://10.77.0.1:8908/captive-portal/api"]
        #expect(inClient(api).stdout.contains(#"{"captive":true,"user-portal-url":"https://portal.example.test/login"}"#),
                "\(inClient(api))")
        let neigh = lab.run(["ip", "neigh", "show", "dev", "v0"]).stdout
        #expect(neigh.contains("10.77.0.2 lladdr \(Self.mac)") && neigh.contains("fd77::2 lladdr \(Self.mac)"), "\(neigh)")

        let login = session(["login", Self.mac, "--mark", "authenticated", "--for", "10m"])
        #expect(login.status == 0, "\(login.stdout)\(login.stderr)")
        let set = lab.run(["nft", "list", "set", "inet", "markdns", "session_authenticated_mac"]).stdout
        #expect(set.contains("\(Self.mac) timeout 10m expires"), "\(set)")
        // In place, both families (the IPv6 address comes from the rtnetlink neighbour dump).
        #expect(tcpMark(40001) == 0x100, "IPv4 flow: \(lab.flows())")
        #expect(tcpMark(40002) == 0x100, "IPv6 flow: \(lab.flows())")
        #expect(answer("10.77.0.1") == "192.0.2.7", "IPv4 query after login")
        #expect(answer("fd77::1") == "192.0.2.7", "IPv6 query after login")
        // The portal API knows the client by its MAC session (the address has none; its
        // address rule still says garden) and by its connection's connmark.
        #expect(inClient(api).stdout.contains(#"{"captive":false,"seconds-remaining":"#), "\(inClient(api))")

        let logout = session(["logout", Self.mac])
        #expect(logout.status == 0, "\(logout.stdout)\(logout.stderr)")
        try Lab.waitFor("both flows back to garden: \(lab.flows())") { tcpMark(40001) == 0x300 && tcpMark(40002) == 0x300 }
        #expect(answer("10.77.0.1") == "192.0.2.99")
        #expect(answer("fd77::1") == "192.0.2.99")
        #expect(inClient(api).stdout.contains(#""captive":true"#), "\(inClient(api))")
        #expect(md.isRunning)
        #expect(lab.stop(md) == 0)
        #expect(lab.readLog("markdns.log").contains("packet_mark_mismatches=0 "), "\(lab.readLog("markdns.log"))")
    }
}
}
