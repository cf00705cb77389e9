import Foundation
import Testing

/// Forged upstream answers: a scripted upstream sends, before every real answer, forgeries
/// markdns must refuse (wrong source port, wrong ID, wrong question, not a response, and for
/// `flood*` names every other ID from the upstream's own address plus a flood from an
/// off-path address). The client must get the real answer, and the cache only ever holds it.
extension KernelSuite {
@Suite("Spoofed upstream answers (kernel)", .serialized)
struct SpoofedAnswerTests {
    static let clients: [String: UInt32] = ["127.0.0.10": 0x10]

    /// The upstream at 127.0.0.4:5353. Real answers: A 192.0.2.44, TTL 300, 0.3 s after the
    /// forgeries (all carrying 6.6.6.6). Logs each query's name and how many forgeries it sent.
    static let forgingUpstream = #"""
        import socket, struct, sys, time
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.4", 5353))
        wrong_port = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); wrong_port.bind(("127.0.0.4", 5354))
        off_path = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); off_path.bind(("127.0.0.66", 0))
        log = open(sys.argv[1], "a", buffering=1)
        FORGED, REAL = bytes([6, 6, 6, 6]), bytes([192, 0, 2, 44])
        def name(n): return b"".join(bytes([len(l)]) + l.encode() for l in n.split(".")) + b"\0"
        def answer(id, question, addr, flags=0x8180):
            return struct.pack(">6H", id, flags, 1, 1, 0, 0) + question + b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 300, 4) + addr
        while True:
            q, client = s.recvfrom(4096)
            end = 12
            while q[end]: end += q[end] + 1
            question = q[12:end + 5]
            labels, i = [], 12
            while q[i]: labels.append(q[i + 1:i + 1 + q[i]].decode(errors="replace")); i += q[i] + 1
            qname = ".".join(labels).lower()
            id = struct.unpack(">H", q[:2])[0]
            forgeries = [
                (wrong_port, answer(id, question, FORGED)),                                   # wrong source port
                (s, answer(id ^ 0x0101, question, FORGED)),                                   # wrong ID
                (s, answer(id, name("x" + qname) + question[-4:], FORGED)),                # wrong name
                (s, answer(id, question[:-4] + struct.pack(">HH", 28, 1), FORGED)),           # wrong type
                (s, answer(id, question, FORGED, flags=0x0180)),                              # not a response
                (off_path, answer(id, question, FORGED)),                                     # off-path source
            ]
            if qname.startswith("flood"):
                forgeries += [(s, answer(x, question, FORGED)) for x in range(65536) if x != id]
                forgeries += [(off_path, answer(x, question, FORGED)) for x in range(0, 65536, 7)]
            for sock, b in forgeries:
                sock.sendto(b, client)
            log.write("%s %d\n" % (qname, len(forgeries)))
            time.sleep(0.3)
            s.sendto(answer(id, question, REAL), client)
        """#

    @Test("Forged answers (wrong port, ID, question, off-path ID flood) are never accepted nor cached")
    func forgedAnswersAreRefused() throws {
        try #require(Lab.which("python3") != nil)
        let lab = try Lab("spoof")
        defer { lab.close() }
        try lab.loadNftRules(clients: Self.clients)
        try lab.spawnPython("upstream", Self.forgingUpstream, args: [lab.path("upstream.queries")])
        usleep(300_000)
        let md = try lab.startMarkdns(["--listen", "127.0.0.1:53", "--upstream", "127.0.0.4:5353",
                                       "--cache-size", "1000", "--upstream-timeout", "5000"], probe: nil)
        for _ in 0..<50 where lab.run(["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/53"]).status != 0 {
            usleep(100_000)
        }
        func upstreamSaw(_ name: String) -> Int {
            lab.readLog("upstream.queries").split(separator: "\n").filter { $0.hasPrefix(name + " ") }.count
        }
        func ask(_ name: String) -> String {
            lab.dig(name, from: "127.0.0.10", options: ["+short", "+time=8"]).stdout
                .trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let names = ["spoof1.example.test", "Spoof2.Example.Test", "flood1.example.test", "flood2.example.test"]
        for name in names {
            #expect(ask(name) == "192.0.2.44", "\(name): forged data reached the client")
            // Asked again: served from the cache (the upstream saw it once), still the real answer.
            #expect(ask(name) == "192.0.2.44", "\(name): forged data in the cache")
            #expect(upstreamSaw(name.lowercased()) == 1, "\(name) not cached: \(lab.readLog("upstream.queries"))")
        }
        // The name a wrong-question forgery carried ("x" + the name asked) was never cached from it.
        #expect(upstreamSaw("xspoof1.example.test") == 0)
        #expect(ask("xspoof1.example.test") == "192.0.2.44")
        #expect(upstreamSaw("xspoof1.example.test") == 1, "an answer to a forged question was cached")
        #expect(md.isRunning)

        #expect(lab.stop(md) == 0)
        let stats = lab.stats()
        print("spoofing stats: \(lab.readLog("markdns.log").split(separator: "\n").last { $0.contains("stats:") } ?? "")")
        let queries = names.count + 1
        // Per query: wrong ID counted unmatched; wrong name, wrong type and not-a-response
        // counted mismatched (the wrong port and off-path ones never get past the kernel);
        // the floods add many more unmatched ones.
        #expect(stats["mismatched", default: 0] == 3 * queries, "\(stats)")
        #expect(stats["unmatched", default: 0] > queries + 100, "the ID flood did not arrive: \(stats)")
        #expect(stats["cache_hits", default: 0] == names.count, "\(stats)")
        #expect(stats["upstream_sent", default: 0] == queries, "no retries expected: \(stats)")
    }
}
}
