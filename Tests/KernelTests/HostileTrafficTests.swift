import Foundation
import Testing

/// Hostile clients: floods of malformed datagrams and abusive TCP connections, sent from
/// raw python sockets inside the lab while another client keeps querying. markdns must stay
/// up, keep answering the other client over UDP and TCP, and count what it refused.
extension KernelSuite {
@Suite("Hostile traffic (kernel)", .serialized)
struct HostileTrafficTests {
    static let clients: [String: UInt32] = ["127.0.0.10": 0x10, "127.0.0.11": 0x20]

    func lab(_ label: String, _ markdnsArgs: [String]) throws -> (Lab, ChildProcess) {
        let lab = try Lab(label)
        do {
            try lab.loadNftRules(clients: Self.clients)
            try lab.startUpstream(address: "127.0.0.2")
            let md = try lab.startMarkdns(["--listen", "127.0.0.1:53", "--upstream", "127.0.0.2:5353"] + markdnsArgs)
            return (lab, md)
        } catch {
            lab.close()
            throw error
        }
    }

    /// Runs an abuser script while 127.0.0.11 keeps querying over UDP and TCP; every one of
    /// those queries must be answered and markdns must still run. Returns the script's JSON
    /// summary, its raw output and the number of UDP+TCP query rounds made meanwhile.
    func abuse(_ lab: Lab, _ md: ChildProcess, _ name: String, _ script: String,
               args: [String]) throws -> ([String: Any], String, Int) {
        let abuser = try lab.spawnPython(name, script, args: args)
        let (rounds, failures) = lab.queryWhile(abuser, name: "legit.example.test", client: "127.0.0.11",
                                                expect: "192.0.2.7")
        let status = abuser.wait()
        let out = lab.readLog("\(name).log")
        #expect(status == 0, "\(out)")
        #expect(rounds >= 2, "the abuse ended before the other client could query")
        #expect(failures.isEmpty, "the other client was not served during the abuse: \(failures)")
        #expect(md.isRunning)
        let summary = try #require(try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any],
                                   "no summary: \(out)")
        return (summary, out, rounds)
    }

    /// Rounds of malformed datagrams from 127.0.0.10. The kinds markdns answers (FORMERR,
    /// NOTIMP) are sent one at a time and each answer is checked; the kinds it must drop
    /// (too short, responses) come from sockets of their own that must never get a reply;
    /// random and mutated datagrams are fired and forgotten. Prints a JSON summary.
    static let udpAbuser = #"""
        import json, random, socket, struct, sys, time
        random.seed(int(sys.argv[1]))
        rounds = int(sys.argv[2])
        DST = ("127.0.0.1", 53)
        def sock(timeout=None):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("127.0.0.10", 0))
            s.settimeout(timeout)
            return s
        ask_s, fire_s, short_s, resp_s = sock(3), sock(), sock(), sock()
        def hdr(id, flags=0x0100, qd=1, an=0, ns=0, ar=0):
            return struct.pack(">6H", id, flags, qd, an, ns, ar)
        def name(n):
            return b"".join(bytes([len(l)]) + l.encode() for l in n.split(".")) + b"\0"
        def query(id, n="hostile.example.test", flags=0x0100):
            return hdr(id, flags) + name(n) + struct.pack(">HH", 1, 1)
        sent, wrong = {}, []
        def count(kind):
            sent[kind] = sent.get(kind, 0) + 1
        def ask(kind, b, rcode):
            count(kind)
            ask_s.sendto(b, DST)
            try:
                r = ask_s.recv(65535)
            except socket.timeout:
                wrong.append(kind + ": no answer"); return
            if r[:2] != b[:2] or not r[2] & 0x80 or r[3] & 15 != rcode:
                wrong.append("%s: answer %s" % (kind, r[:12].hex()))
        def mutate(b):
            b = bytearray(b)
            for _ in range(random.randint(1, 4)):
                op = random.randrange(4)
                if op == 0: b[random.randrange(len(b))] = random.randrange(256)
                elif op == 1: del b[random.randrange(len(b)):]
                elif op == 2: b.insert(random.randrange(len(b) + 1), random.choice([0, 63, 64, 0xc0, 0xff]))
                elif len(b) > 13: b[random.randrange(12, len(b) - 1)] = 0xc0
                if not b: b = bytearray(b"\x00")
            return bytes(b)
        qtail = struct.pack(">HH", 1, 1)
        for i in range(rounds):
            id = 0x4000 + i
            # Pointer loops: to itself, forward, and a two-pointer cycle.
            ask("loop-self", hdr(id) + b"\xc0\x0c" + qtail, 1)
            ask("loop-forward", hdr(id) + b"\x01a\xc0\x20" + qtail + b"\x00" * 16, 1)
            ask("loop-cycle", hdr(id) + b"\x01a\xc0\x10\x01b\xc0\x0c" + qtail, 1)
            # Counts that do not fit the bytes.
            ask("count-an", hdr(id, an=200) + name("a.example") + qtail, 1)
            ask("count-ar", hdr(id, ar=0xffff) + name("a.example") + qtail, 1)
            ask("count-qd0", hdr(id, qd=0), 1)
            ask("count-qd2", hdr(id, qd=2) + (name("a.example") + qtail) * 2, 1)
            # Bad labels: too long for the bytes, reserved label types.
            ask("label-long", hdr(id) + b"\x3f" + b"a" * 10 + qtail, 1)
            ask("label-reserved", hdr(id) + b"\x41" + b"a" * 70 + b"\x00" + qtail, 1)
            # Unknown opcodes (IQUERY, STATUS, 3, UPDATE, 7, 15) with a valid question.
            op = [1, 2, 3, 5, 7, 15][i % 6]
            ask("opcode", query(id, flags=op << 11 | 0x0100), 4)
            # Huge datagrams: names past 255 bytes, padded to 60000 bytes.
            if i % 6 == 0:
                ask("huge", (hdr(id) + (b"\x3f" + b"h" * 63) * 1000)[:60000], 1)
            # Dropped: shorter than a header, and responses sent as queries.
            count("short"); short_s.sendto(bytes(random.getrandbits(8) for _ in range(random.randrange(12))), DST)
            count("response"); resp_s.sendto(query(id, flags=0x8180), DST)
            count("response"); resp_s.sendto(hdr(id, flags=0x8000 | (i % 16) << 11, qd=0), DST)
            # Fire and forget: random bytes and mutated queries.
            for _ in range(4):
                count("random"); fire_s.sendto(bytes(random.getrandbits(8) for _ in range(random.randrange(1, 1500))), DST)
                count("mutated"); fire_s.sendto(mutate(query(id, "m%d.example.test" % i)), DST)
            time.sleep(0.03)
        # Everything sent before this query was read by markdns once it is answered.
        ask("final", query(0x7777, "final.example.test"), 0)
        time.sleep(0.2)
        replies = {}
        for kind, s in (("short", short_s), ("response", resp_s)):
            s.setblocking(False)
            n = 0
            try:
                while s.recv(65535): n += 1
            except BlockingIOError:
                pass
            replies[kind] = n
        print(json.dumps({"sent": sent, "wrong": wrong, "replies": replies}))
        """#

    @Test("Hundreds of malformed datagrams: answered or dropped as they should, counted, others still served")
    func malformedDatagramFlood() throws {
        try #require(Lab.which("python3") != nil)
        let (lab, md) = try lab("hostile-udp", [])
        defer { lab.close() }
        let (summary, out, _) = try abuse(lab, md, "udp-abuser", Self.udpAbuser, args: ["1", "100"])
        let sent = try #require(summary["sent"] as? [String: Int])
        #expect((summary["wrong"] as? [String])?.isEmpty == true, "wrong or missing answers: \(out)")
        #expect(summary["replies"] as? [String: Int] == ["short": 0, "response": 0],
                "short datagrams and responses must never be answered: \(out)")
        let total = sent.values.reduce(0, +)
        #expect(total >= 1_000, "\(sent)")

        #expect(lab.stop(md) == 0)
        let stats = lab.stats()
        print("hostile-udp: sent \(sent), stats \(stats)")
        let formerrSent = sent.filter { $0.key.hasPrefix("loop") || $0.key.hasPrefix("count")
            || $0.key.hasPrefix("label") || $0.key == "huge" }.values.reduce(0, +)
        // Random and mutated datagrams add to these counters, never take away.
        #expect(stats["formerr", default: 0] >= formerrSent, "\(stats)")
        #expect(stats["notimp", default: 0] >= sent["opcode", default: 0], "\(stats)")
        #expect(stats["dropped", default: 0] >= sent["short", default: 0] + sent["response", default: 0], "\(stats)")
        // Every datagram was read and counted (the legit client's probes come on top).
        #expect(stats["queries_udp", default: 0] >= total, "\(stats) for \(total) sent")
    }

    /// TCP connections from 127.0.0.10 that misbehave in every way framing allows, held
    /// open for `hold` seconds; then reports which of them markdns closed.
    static let tcpAbuser = #"""
        import json, random, socket, struct, sys, time
        random.seed(int(sys.argv[1]))
        hold = float(sys.argv[2])
        def conn():
            s = socket.socket(); s.bind(("127.0.0.10", 0)); s.connect(("127.0.0.1", 53)); return s
        def frame(b): return struct.pack(">H", len(b)) + b
        def hdr(id, flags=0x0100, qd=1): return struct.pack(">6H", id, flags, qd, 0, 0, 0)
        q = hdr(0x5151) + b"\x05valid\x07example\x04test\x00" + struct.pack(">HH", 1, 1)
        def recv_frame(s):
            s.settimeout(5)
            n = b""
            while len(n) < 2:
                c = s.recv(2 - len(n))
                if not c: return None
                n += c
            want, body = struct.unpack(">H", n)[0], b""
            while len(body) < want:
                c = s.recv(want - len(body))
                if not c: return None
                body += c
            return body
        held, checks = {}, {}
        held["idle"] = [conn() for _ in range(10)]
        held["half-prefix"] = [conn() for _ in range(10)]
        for s in held["half-prefix"]: s.send(b"\x00")
        held["huge-prefix-partial"] = [conn() for _ in range(5)]
        for s in held["huge-prefix-partial"]: s.send(b"\xff\xff" + b"\x00" * 100)
        # A full 65535-byte frame of garbage after a query header: FORMERR, same connection.
        big = [conn() for _ in range(3)]
        for s in big:
            s.sendall(frame(hdr(0x6262) + b"\xff" * (65535 - 12)))
            r = recv_frame(s)
            checks.setdefault("huge-frame", []).append(r is not None and r[:2] == b"\x62\x62" and r[3] & 15 == 1)
        # Garbage frames, empty frames and a valid query pipelined on one connection: the
        # valid one is answered, the connection survives the rest.
        s = conn()
        junk = b"".join(frame(bytes(random.getrandbits(8) for _ in range(random.randrange(0, 300)))) for _ in range(50))
        s.sendall(frame(b"") + junk + frame(hdr(0x7373, flags=0x8180)) + frame(q))
        answered = False
        while True:
            r = recv_frame(s)
            if r is None: break
            if r[:2] == b"\x51\x51":
                answered = r[3] & 15 == 0; break
        checks["pipelined"] = [answered]
        # Raw garbage that is not even framed sensibly, then the peer vanishes.
        for _ in range(5):
            g = conn(); g.sendall(bytes(random.getrandbits(8) for _ in range(random.randrange(1, 4000)))); g.close()
        time.sleep(hold)
        closed = {}
        for kind, socks in held.items():
            n = 0
            for t in socks:
                t.settimeout(0.2)
                try:
                    if t.recv(1) == b"": n += 1
                except socket.timeout: pass
                except OSError: n += 1
            closed[kind] = [n, len(socks)]
        print(json.dumps({"checks": checks, "closed": closed}))
        """#

    @Test("Abusive TCP clients (idle, half-written, 65535-byte prefixes, garbage): others served, idle ones closed")
    func abusiveTCPClients() throws {
        try #require(Lab.which("python3") != nil)
        let (lab, md) = try lab("hostile-tcp", ["--tcp-idle-timeout", "2", "--max-tcp-per-client", "64"])
        defer { lab.close() }
        let (summary, out, rounds) = try abuse(lab, md, "tcp-abuser", Self.tcpAbuser, args: ["2", "6"])
        let checks = try #require(summary["checks"] as? [String: [Bool]], "\(out)")
        #expect(checks["huge-frame"] == [true, true, true], "65535-byte garbage frames must get FORMERR: \(out)")
        #expect(checks["pipelined"] == [true], "a valid query after garbage frames must be answered: \(out)")
        // Idle and half-written connections are closed after the 2 s idle timeout (held 6 s).
        let closed = try #require(summary["closed"] as? [String: [Int]], "\(out)")
        for (kind, counts) in closed {
            #expect(counts.count == 2 && counts[0] == counts[1], "\(kind) connections left open: \(out)")
        }

        #expect(lab.stop(md) == 0)
        let stats = lab.stats()
        print("hostile-tcp: \(out) stats \(stats)")
        // 3 huge frames + 50 garbage frames (random headers: FORMERR, NOTIMP or dropped) +
        // the empty frame and the response (dropped).
        #expect(stats["formerr", default: 0] >= 3, "\(stats)")
        #expect(stats["dropped", default: 0] >= 2, "\(stats)")
        #expect(stats["formerr", default: 0] + stats["notimp", default: 0] + stats["dropped", default: 0] >= 55,
                "\(stats)")
        #expect(stats["queries_tcp", default: 0] >= 55 + rounds, "\(stats)")
    }
}
}
