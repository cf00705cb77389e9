import Foundation
import Testing

/// The answer cache and query coalescing against a scripted upstream that answers slowly
/// and logs every query it gets.
extension KernelSuite {
@Suite("Cache and coalescing (kernel)", .serialized)
struct CacheTests {
    static let clients: [String: UInt32] = ["127.0.0.10": 0x10, "127.0.0.11": 0x20]

    /// An upstream at 127.0.0.4:5353, UDP and TCP: answers every A query with 192.0.2.44,
    /// TTL 60, after `delay` seconds, and appends "qname" (and " tcp" for TCP) to the log
    /// for each query received.
    static func fakeUpstream(log: String, delay: Double) -> String {
        """
        import socket, struct, threading, time
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.4", 5353))
        log = open("\(log)", "a", buffering=1)
        def qname(q):
            end = 12
            labels = []
            while q[end] != 0:
                labels.append(q[end + 1:end + 1 + q[end]].decode(errors="replace")); end += q[end] + 1
            return ".".join(labels).lower()
        def reply(q):
            time.sleep(\(delay))
            end = 12
            while q[end] != 0: end += q[end] + 1
            question = q[12:end + 5]
            hdr = q[:2] + struct.pack(">HHHHH", 0x8180, 1, 1, 0, 0)
            rr = b"\\xc0\\x0c" + struct.pack(">HHIH", 1, 1, 60, 4) + bytes([192, 0, 2, 44])
            return hdr + question + rr
        def tcp_client(c):
            with c:
                while True:
                    n = c.recv(2)
                    if len(n) < 2: return
                    q = b""
                    while len(q) < struct.unpack(">H", n)[0]:
                        more = c.recv(struct.unpack(">H", n)[0] - len(q))
                        if not more: return
                        q += more
                    log.write(qname(q) + " tcp\\n")
                    a = reply(q)
                    c.sendall(struct.pack(">H", len(a)) + a)
        def tcp_server():
            t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            t.bind(("127.0.0.4", 5353)); t.listen(16)
            while True:
                c, _ = t.accept()
                threading.Thread(target=tcp_client, args=(c,), daemon=True).start()
        threading.Thread(target=tcp_server, daemon=True).start()
        while True:
            q, addr = s.recvfrom(4096)
            log.write(qname(q) + "\\n")
            threading.Thread(target=lambda q=q, addr=addr: s.sendto(reply(q), addr), daemon=True).start()
        """
    }

    func lab(_ label: String, delay: Double, markdnsArgs: [String]) throws -> Lab {
        let lab = try Lab(label)
        do {
            try lab.loadNftRules(clients: Self.clients)
            try Self.fakeUpstream(log: lab.path("upstream.queries"), delay: delay)
                .write(toFile: lab.path("upstream.py"), atomically: true, encoding: .utf8)
            try lab.spawn(["python3", lab.path("upstream.py")], log: "upstream.log")
            usleep(300_000)
            try lab.startMarkdns(["--listen", "127.0.0.1:53", "--upstream", "127.0.0.4:5353"] + markdnsArgs,
                                 probe: nil)
            for _ in 0..<50 where lab.run(["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/53"]).status != 0 {
                usleep(100_000)
            }
            lab.forgetUpstreamFlows()
        } catch {
            lab.close()
            throw error
        }
        return lab
    }

    /// Queries for `name` the upstream got (over UDP; `tcp`: over TCP).
    func upstreamQueries(_ lab: Lab, _ name: String, tcp: Bool = false) -> Int {
        lab.readLog("upstream.queries").split(separator: "\n").filter { $0 == (tcp ? name + " tcp" : name) }.count
    }

    @Test("UDP and TCP clients of one mark are served from one cache entry, whichever filled it")
    func udpAndTcpShareTheCache() throws {
        let lab = try lab("cache-tcp", delay: 0, markdnsArgs: ["--cache-size", "1000"])
        defer { lab.close() }
        // Filled over UDP, hit over TCP.
        let udp = lab.dig("shared-u.example.test", from: "127.0.0.10")
        #expect(udp.stdout.contains("192.0.2.44"), "\(udp.stdout)")
        let tcp = lab.dig("shared-u.example.test", from: "127.0.0.10", options: ["+tcp"])
        #expect(tcp.stdout.contains("192.0.2.44"), "\(tcp.stdout)")
        #expect(tcp.stdout.contains("(TCP)"), "dig asked over TCP: \(tcp.stdout)")
        #expect(upstreamQueries(lab, "shared-u.example.test") == 1)
        #expect(upstreamQueries(lab, "shared-u.example.test", tcp: true) == 0, "the TCP client was a cache hit")
        // Filled over TCP (forwarded over TCP, marked), hit over UDP.
        let tcp2 = lab.dig("shared-t.example.test", from: "127.0.0.10", options: ["+tcp"])
        #expect(tcp2.stdout.contains("192.0.2.44"), "\(tcp2.stdout)")
        #expect(upstreamQueries(lab, "shared-t.example.test", tcp: true) == 1)
        let udp2 = lab.dig("shared-t.example.test", from: "127.0.0.10")
        #expect(udp2.stdout.contains("192.0.2.44"), "\(udp2.stdout)")
        #expect(upstreamQueries(lab, "shared-t.example.test") == 0, "the UDP client was a cache hit")
        // The entry is the mark's own: a client of another mark asks upstream again.
        let other = lab.dig("shared-t.example.test", from: "127.0.0.11", options: ["+tcp"])
        #expect(other.stdout.contains("192.0.2.44"), "\(other.stdout)")
        #expect(upstreamQueries(lab, "shared-t.example.test", tcp: true) == 2)
    }

    @Test("A cache hit sends nothing upstream, counts TTL down, and never crosses marks")
    func cacheHitsStayWithinTheirView() throws {
        let lab = try lab("cache", delay: 0, markdnsArgs: ["--cache-size", "1000"])
        defer { lab.close() }
        let first = lab.dig("cached.example.test", from: "127.0.0.10")
        #expect(first.stdout.contains("192.0.2.44"), "\(first.stdout)")
        #expect(upstreamQueries(lab, "cached.example.test") == 1)
        lab.forgetUpstreamFlows()
        sleep(2)
        let second = lab.dig("CACHED.example.test", from: "127.0.0.10")
        #expect(second.stdout.contains("192.0.2.44"))
        #expect(second.stdout.contains("CACHED.example.test."), "the client's own case: \(second.stdout)")
        let ttl = second.stdout.split(separator: "\n").first { $0.hasPrefix("CACHED.example.test.") && $0.contains("\tA\t") }
            .flatMap { $0.split(whereSeparator: { $0 == "\t" || $0 == " " }).dropFirst().first }.flatMap { Int($0) }
        #expect(ttl != nil && ttl! <= 58 && ttl! > 0, "TTL counted down: \(second.stdout)")
        #expect(upstreamQueries(lab, "cached.example.test") == 1, "a hit must not go upstream")
        #expect(lab.upstreamFlows(to: "127.0.0.4").isEmpty, "a hit must create no upstream flow")
        // Another mark: its own upstream query, with its own mark.
        let other = lab.dig("cached.example.test", from: "127.0.0.11")
        #expect(other.stdout.contains("192.0.2.44"))
        #expect(upstreamQueries(lab, "cached.example.test") == 2, "cache shared across marks")
        let flows = lab.upstreamFlows(to: "127.0.0.4")
        #expect(!flows.isEmpty && flows.allSatisfy { $0.mark == 0x20 }, "\(flows)")
    }

    @Test("Concurrent identical queries: one upstream query per mark, each with its mark")
    func coalescingPerMark() throws {
        let lab = try lab("coalesce", delay: 0.8, markdnsArgs: ["--cache-size", "0"])
        defer { lab.close() }
        var digs: [ChildProcess] = []
        for i in 0..<10 {
            let client = i % 2 == 0 ? "127.0.0.10" : "127.0.0.11"
            digs.append(try lab.spawn(["dig", "+time=3", "+tries=1", "-b", client, "@127.0.0.1",
                                       "same.example.test"], log: "dig-\(i).log"))
        }
        for d in digs { d.wait() }
        for i in 0..<10 {
            #expect(lab.readLog("dig-\(i).log").contains("192.0.2.44"), "dig \(i): \(lab.readLog("dig-\(i).log"))")
        }
        #expect(upstreamQueries(lab, "same.example.test") == 2, "want one per mark: \(lab.readLog("upstream.queries"))")
        let marks = Set(lab.upstreamFlows(to: "127.0.0.4").map(\.mark))
        #expect(marks == [0x10, 0x20], "\(lab.upstreamFlows(to: "127.0.0.4"))")
    }

    /// The flags line of a dig answer (";; flags: qr rd ra; QUERY: ...").
    func flags(_ out: String) -> Set<String> {
        guard let line = out.split(separator: "\n").first(where: { $0.contains(";; flags:") }),
              let r = line.range(of: "flags:") else { return [] }
        return Set(line[r.upperBound...].prefix { $0 != ";" }.split(separator: " ").map(String.init))
    }

    @Test("EDNS version 1 gets BADVERS and never breaks concurrent EDNS0 queries; RD is each client's own")
    func ednsVersionAndRecursionDesiredPerClient() throws {
        let lab = try lab("badvers", delay: 0.8, markdnsArgs: ["--cache-size", "1000"])
        defer { lab.close() }
        var digs: [ChildProcess] = []
        for i in 0..<8 {
            digs.append(try lab.spawn(["dig", "+time=3", "+tries=1", "-b", "127.0.0.10", "@127.0.0.1",
                                       i % 2 == 0 ? "+edns=0" : "+edns=1", "+noednsnegotiation", "v.example.test"],
                                      log: "dig-\(i).log"))
            usleep(20_000)
        }
        for d in digs { d.wait() }
        for i in 0..<8 {
            let out = lab.readLog("dig-\(i).log")
            if i % 2 == 0 {
                #expect(out.contains("status: NOERROR") && out.contains("192.0.2.44"), "EDNS0 dig \(i): \(out)")
            } else {
                #expect(out.contains("status: BADVERS"), "EDNS1 dig \(i): \(out)")
            }
        }
        #expect(upstreamQueries(lab, "v.example.test") == 1, "\(lab.readLog("upstream.queries"))")
        // The upstream sets RD in every answer; each client gets its own RD bit back.
        let norec = lab.dig("rd.example.test", from: "127.0.0.10", options: ["+norecurse"])
        #expect(norec.stdout.contains("192.0.2.44") && !flags(norec.stdout).contains("rd"), "\(norec.stdout)")
        let rec = lab.dig("rd.example.test", from: "127.0.0.10")
        #expect(rec.stdout.contains("192.0.2.44") && flags(rec.stdout).contains("rd"), "\(rec.stdout)")
        // RD=0 and RD=1 are cached apart: each went upstream once.
        #expect(upstreamQueries(lab, "rd.example.test") == 2)
        let hit = lab.dig("rd.example.test", from: "127.0.0.10", options: ["+norecurse"])
        #expect(!flags(hit.stdout).contains("rd") && upstreamQueries(lab, "rd.example.test") == 2, "\(hit.stdout)")
    }
}
}
