import Foundation
import Testing

/// Forwarder behaviour a resolver's users rely on: failover, SERVFAIL when every upstream
/// is gone, fail-closed marks, malformed input, start-up errors.
extension KernelSuite {
@Suite("Forwarder behaviour (kernel)", .serialized)
struct ForwarderBehaviourTests {
    static let clients: [String: UInt32] = ["127.0.0.10": 0x10]

    func lab(_ label: String) throws -> Lab {
        let lab = try Lab(label)
        do {
            try lab.loadNftRules(clients: Self.clients)
            try lab.startUpstream(address: "127.0.0.2")
        } catch {
            lab.close()
            throw error
        }
        return lab
    }

    @Test("Dead and silent upstreams are skipped in order, UDP and TCP")
    func failover() throws {
        let lab = try lab("failover")
        defer { lab.close() }
        // 127.0.0.3: nobody listens (port unreachable). 127.0.0.4: packets vanish (timeout).
        try lab.exec(["nft", "add", "table", "inet", "blackhole"])
        try lab.exec(["nft", "add", "chain", "inet", "blackhole", "out",
                      "{ type filter hook output priority 0; policy accept; }"])
        try lab.exec(["nft", "add", "rule", "inet", "blackhole", "out", "ip", "daddr", "127.0.0.4", "drop"])
        try start(lab, ["--listen", "127.0.0.1:53", "--upstream", "127.0.0.4:5353",
                              "--upstream", "127.0.0.3:5353", "--upstream", "127.0.0.2:5353",
                              "--upstream-timeout", "300"])
        for opt in ["+notcp", "+tcp"] {
            let r = lab.dig("fo.example.test", from: "127.0.0.10", options: [opt, "+time=3"])
            #expect(r.stdout.contains("status: NOERROR") && r.stdout.contains("192.0.2.7"), "\(opt): \(r.stdout)")
        }
        let flows = lab.upstreamFlows(to: "127.0.0.2")
        #expect(!flows.isEmpty && flows.allSatisfy { $0.mark == 0x10 }, "\(flows)")
    }

    @Test("A silent upstream is backed off: it is not retried on every query")
    func deadUpstreamBackoff() throws {
        let lab = try lab("backoff")
        defer { lab.close() }
        try lab.startFakeUpstream(address: "127.0.0.4", .silent, log: "silent.log")
        let md = try start(lab, ["--listen", "127.0.0.1:53", "--upstream", "127.0.0.4:5353",
                                 "--upstream", "127.0.0.2:5353", "--upstream-timeout", "300"], probe: false)
        for i in 0..<8 {
            let r = lab.dig("b\(i).example.test", from: "127.0.0.10", options: ["+time=3"])
            #expect(r.stdout.contains("192.0.2.7"), "\(r.stdout)")
        }
        // The silent server saw 3 (or 4, if the backoff ran out during the run) of 8 queries.
        let seen = lab.fakeQueries("silent.log")
        #expect(seen >= 3 && seen <= 4, "after 3 timeouts the silent upstream must be skipped; it got \(seen)")
        let status = lab.stop(md)
        #expect(status == 0, "markdns exit status \(status): \(lab.readLog("markdns.log"))")
    }

    @Test("All upstreams down: SERVFAIL, quickly, over UDP and TCP")
    func allUpstreamsDown() throws {
        let lab = try lab("down")
        defer { lab.close() }
        try start(lab, ["--listen", "127.0.0.1:53", "--upstream", "127.0.0.3:5353",
                              "--upstream", "127.0.0.5:5353", "--upstream-timeout", "300"], probe: false)
        for opt in ["+notcp", "+tcp"] {
            let start = Date()
            let r = lab.dig("down.example.test", from: "127.0.0.10", options: [opt, "+time=4"])
            #expect(r.stdout.contains("status: SERVFAIL"), "\(opt): \(r.stdout)")
            #expect(Date().timeIntervalSince(start) < 3.5)
        }
    }

    @Test("--require-mark refuses unmarked clients and serves marked ones")
    func requireMark() throws {
        let lab = try lab("require")
        defer { lab.close() }
        try start(lab, ["--listen", "127.0.0.1:53", "--upstream", "127.0.0.2:5353", "--require-mark"],
                             probe: false)
        for opt in ["+notcp", "+tcp"] {
            let marked = lab.dig("m.example.test", from: "127.0.0.10", options: [opt])
            #expect(marked.stdout.contains("status: NOERROR"), "\(opt): \(marked.stdout)")
            let unmarked = lab.dig("u.example.test", from: "127.0.0.12", options: [opt])
            #expect(unmarked.stdout.contains("status: REFUSED"), "\(opt): \(unmarked.stdout)")
        }
        #expect(lab.upstreamFlows(to: "127.0.0.2").allSatisfy { $0.mark == 0x10 })
    }

    @Test("No conntrack entry (NOTRACK): forwarded unmarked, counted, logged once")
    func noConntrackEntry() throws {
        let lab = try lab("notrack")
        defer { lab.close() }
        try lab.exec(["nft", "-f", "-"], input: """
            table inet untracked {
              chain raw { type filter hook output priority raw; ip saddr 127.0.0.13 ip daddr 127.0.0.1 notrack; }
              chain rawpre { type filter hook prerouting priority raw; ip saddr 127.0.0.13 ip daddr 127.0.0.1 notrack; }
            }
            """)
        let md = try start(lab, ["--listen", "127.0.0.1:53", "--upstream", "127.0.0.2:5353"])
        for i in 0..<3 {
            let r = lab.dig("nt\(i).example.test", from: "127.0.0.13")
            #expect(r.stdout.contains("status: NOERROR"), "\(r.stdout)")
        }
        lab.stop(md)
        let log = lab.readLog("markdns.log")
        #expect(log.components(separatedBy: "no conntrack entry").count == 2, "expected one warning: \(log)")
        #expect(log.contains("no-conntrack-entry=3"), "\(log)")
    }

    @Test("Malformed datagrams are dropped or answered FORMERR; markdns keeps serving")
    func malformedInput() throws {
        try #require(Lab.which("python3") != nil)
        let lab = try lab("malformed")
        defer { lab.close() }
        let md = try start(lab, ["--listen", "127.0.0.1:53", "--upstream", "127.0.0.2:5353"])
        let script = """
            import socket, random, struct
            random.seed(7)
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.10", 0)); s.settimeout(0.3)
            def q(b):
                s.sendto(b, ("127.0.0.1", 53))
                try: return s.recv(4096)
                except socket.timeout: return None
            hdr = lambda qd, an=0: struct.pack(">HHHHHH", 0x1234, 0x0100, qd, an, 0, 0)
            cases = {
              "short": b"\\x12",
              "loop": hdr(1) + b"\\xc0\\x0c" + b"\\x00\\x01\\x00\\x01",
              "qd0": hdr(0),
              "qd2": hdr(2) + b"\\x01a\\x00\\x00\\x01\\x00\\x01",
              "longlabel": hdr(1) + b"\\x40" + b"a"*64 + b"\\x00\\x00\\x01\\x00\\x01",
              "badcount": hdr(1, 200) + b"\\x01a\\x00\\x00\\x01\\x00\\x01",
              "response": struct.pack(">HHHHHH", 1, 0x8180, 1, 0, 0, 0) + b"\\x01a\\x00\\x00\\x01\\x00\\x01",
              "opcode": struct.pack(">HHHHHH", 1, 0x2100, 1, 0, 0, 0) + b"\\x01a\\x00\\x00\\x01\\x00\\x01",
              "dso": struct.pack(">HHHHHH", 1, 0x3000, 0, 0, 0, 0),
            }
            for name, b in cases.items():
                r = q(b)
                print(name, "none" if r is None else "rcode=%d id=%d" % (r[3] & 15, struct.unpack(">H", r[:2])[0]))
            for i in range(300):  # fire and forget: markdns must survive, answers are optional
                s.sendto(bytes(random.getrandbits(8) for _ in range(random.randint(0, 600))), ("127.0.0.1", 53))
            """
        let r = try lab.exec(["python3", "-c", script])
        let out = r.stdout
        #expect(out.contains("short none"))
        #expect(out.contains("loop rcode=1"), "pointer loop: \(out)")
        #expect(out.contains("qd0 rcode=1") && out.contains("qd2 rcode=1"), "\(out)")
        #expect(out.contains("longlabel rcode=1") && out.contains("badcount rcode=1"), "\(out)")
        #expect(out.contains("response none"), "a response sent as a query must not be answered: \(out)")
        #expect(out.contains("opcode rcode=4"), "unknown opcode must get NOTIMP: \(out)")
        #expect(out.contains("dso rcode=4"), "DSO (opcode 6, no question) must get NOTIMP: \(out)")
        #expect(md.isRunning)
        let ok = lab.dig("after.example.test", from: "127.0.0.10")
        #expect(ok.stdout.contains("192.0.2.7"))
        let tcp = lab.dig("after.example.test", from: "127.0.0.10", options: ["+tcp"])
        #expect(tcp.stdout.contains("192.0.2.7"))
    }

    @Test("One client hoarding idle TCP connections does not stop another; idle ones are closed")
    func tcpFairnessAndIdleTimeout() throws {
        let lab = try lab("tcpfair")
        defer { lab.close() }
        let md = try start(lab, ["--listen", "127.0.0.1:53", "--upstream", "127.0.0.2:5353",
                                 "--max-tcp-connections", "64", "--max-tcp-per-client", "16",
                                 "--tcp-idle-timeout", "2"])
        // 200 idle connections from one client (half of them with half a length prefix),
        // far more than dnsmasq's 20 and than our global limit. Held open for 6 s.
        let hog = """
            import socket, time
            socks = []
            for i in range(200):
                s = socket.socket(); s.bind(("127.0.0.10", 0))
                try:
                    s.connect(("127.0.0.1", 53))
                    if i % 2: s.send(b"\\x00")
                    socks.append(s)
                except OSError: pass
            time.sleep(6)
            # After the idle timeout markdns must have closed what it accepted.
            closed = 0
            for s in socks:
                s.settimeout(0.05)
                try:
                    if s.recv(1) == b"": closed += 1
                except socket.timeout: pass
                except OSError: closed += 1
            print("open", len(socks), "closed", closed)
            """
        let hogProcess = try lab.spawn(["python3", "-c", hog], log: "hog.log")
        usleep(1_000_000)
        for opt in ["+tcp", "+notcp"] {
            let r = lab.dig("fair.example.test", from: "127.0.0.11", options: [opt])
            #expect(r.stdout.contains("192.0.2.7"), "other client starved over \(opt): \(r.stdout)")
        }
        hogProcess.wait()
        let out = lab.readLog("hog.log")
        let numbers = out.split(whereSeparator: { !$0.isNumber }).compactMap { Int($0) }
        #expect(numbers.count == 2 && numbers[1] == numbers[0], "idle connections not all closed: \(out)")
        lab.stop(md)
        let log = lab.readLog("markdns.log")
        #expect(!log.contains("tcp_rejected=0"), "hoarded connections beyond the per-client limit were counted: \(log)")
    }

    @Test("An answer cached from TCP is never served over UDP beyond what the client can take")
    func cachedTCPAnswerRespectsUDPSize() throws {
        let lab = try lab("cachesize")
        defer { lab.close() }
        try start(lab, ["--listen", "127.0.0.1:53", "--upstream", "127.0.0.2:5353", "--cache-size", "100"])
        let tcp = lab.dig("big.example.test", from: "127.0.0.10", type: "TXT", options: ["+tcp", "+noedns"])
        #expect(tcp.stdout.contains("ANSWER: 1"), "\(tcp.stdout)")
        let udp = lab.dig("big.example.test", from: "127.0.0.10", type: "TXT", options: ["+notcp", "+noedns", "+ignore"])
        #expect(udp.stdout.contains(" tc"), "a >512-byte answer must reach a non-EDNS UDP client truncated: \(udp.stdout)")
        let size = udp.stdout.range(of: "MSG SIZE  rcvd: ").flatMap { r in Int(udp.stdout[r.upperBound...].prefix { $0.isNumber }) }
        #expect(size != nil && size! <= 512, "\(udp.stdout)")
    }

    @Test("Idle upstream sockets are closed, so descriptors do not grow with every mark ever seen")
    func idleUpstreamSocketsAreClosed() throws {
        let lab = try Lab("idle")
        defer { lab.close() }
        try lab.loadNftRules(clients: ["127.0.0.10": 0x10, "127.0.0.11": 0x20, "127.0.0.12": 0x30])
        try lab.startUpstream(address: "127.0.0.2")
        let md = try start(lab, ["--listen", "127.0.0.1:53", "--upstream", "127.0.0.2:5353",
                                 "--upstream-idle-timeout", "1"])
        func sockets() -> Int {
            ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(md.pid)/fd")) ?? []).filter {
                ((try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(md.pid)/fd/\($0)")) ?? "")
                    .hasPrefix("socket:")
            }.count
        }
        usleep(1_500_000)  // let the start-up probe's socket go idle first
        let before = sockets()
        for client in ["127.0.0.10", "127.0.0.11", "127.0.0.12"] {
            for i in 0..<4 { _ = lab.dig("idle\(i).example.test", from: client) }
        }
        let busy = sockets()
        #expect(busy >= before + 3, "one upstream socket per mark at least: \(before) -> \(busy)")
        usleep(2_500_000)
        let after = sockets()
        #expect(after <= before, "idle upstream sockets not closed: \(before) -> \(busy) -> \(after)")
        lab.stop(md)
        #expect(!lab.readLog("markdns.log").contains("idle_sockets_closed=0"))
    }

    @Test("Start-up errors are one clear line, not a stack trace")
    func startupErrors() throws {
        let lab = try lab("startup")
        defer { lab.close() }
        // Address not on this host.
        let r = lab.run([Lab.markdnsBinary, "--listen", "127.0.0.1:5399", "--listen", "[fd6d::99]:53",
                         "--upstream", "127.0.0.2:5353"])
        #expect(r.status == 1)
        #expect(r.stderr.contains("markdns: cannot listen on [fd6d::99]:53"), "\(r.stderr)")
        #expect(!r.stderr.contains("Fatal error"))
        // Bad flags name the problem.
        let bad = lab.run([Lab.markdnsBinary, "--listen", "1.2.3:53", "--upstream", "127.0.0.2"])
        #expect(bad.status != 0 && bad.stderr.contains("'1.2.3' is not an IPv4 or IPv6 address"), "\(bad.stderr)")
        // Without CAP_NET_ADMIN (setpriv drops every capability): SO_MARK is refused.
        if Lab.which("setpriv") != nil {
            let nocap = lab.run(["setpriv", "--inh-caps=-all", "--bounding-set=-all", Lab.markdnsBinary,
                                 "--listen", "127.0.0.1:5398", "--upstream", "127.0.0.2:5353"])
            #expect(nocap.status == 1)
            #expect(nocap.stderr.contains("needs CAP_NET_ADMIN"), "\(nocap.stderr)")
        }
    }

    /// Starts markdns, then forgets the upstream flows the set-up probes made (unmarked).
    @discardableResult
    func start(_ lab: Lab, _ args: [String], probe: Bool = true) throws -> ChildProcess {
        let p = try lab.startMarkdns(args, probe: probe ? ("127.0.0.1", 53) : nil)
        if !probe { try lab.waitForListener(process: p) }
        lab.forgetUpstreamFlows()
        return p
    }
}
}
