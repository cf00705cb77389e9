import Foundation
import Testing

/// `--metrics` (/metrics, /clients, `markdns top`) and `--query-log` against real traffic:
/// two marked clients and one unmarked, UDP and TCP, cache hits, a dead upstream.
extension KernelSuite {
@Suite("Observability (kernel)", .serialized)
struct ObservabilityTests {
    static let clients: [String: UInt32] = ["127.0.0.10": 0x10, "127.0.0.11": 0x20]

    /// 127.0.0.3 is dead (nobody listens: port unreachable) and listed first.
    static let policy = """
        [conntrack]
        mask = 0xff

        [[pool]]
        name = "default"
        servers = ["127.0.0.3:5353", "127.0.0.2:5353"]
        default = true

        [[mark]]
        value = 0x10
        name = "alice"
        action = "forward"
        pool = "default"

        [[mark]]
        value = 0x20
        name = "bob"
        action = "forward"
        pool = "default"
        """

    func lab(_ label: String, _ args: [String]) throws -> (Lab, ChildProcess) {
        let lab = try Lab(label)
        do {
            try lab.loadNftRules(clients: Self.clients)
            try lab.exec(["sysctl", "-qw", "net.netfilter.nf_conntrack_acct=1"])
            try lab.startUpstream(address: "127.0.0.2", extra: ["--address=/nx.test/"])
            try Self.policy.write(toFile: lab.path("policy.toml"), atomically: true, encoding: .utf8)
            // No probe query: every query the test makes is counted.
            let md = try lab.startMarkdns(["--config", lab.path("policy.toml"), "--listen", "127.0.0.1:53",
                                           "--metrics", "127.0.0.1:9153", "--upstream-timeout", "500"] + args,
                                          probe: nil)
            Self.waitForMetrics(lab)
            return (lab, md)
        } catch {
            lab.close()
            throw error
        }
    }

    /// Waits until the metrics listener answers (it binds after the DNS listeners).
    static func waitForMetrics(_ lab: Lab) {
        for _ in 0..<100 where lab.run(["curl", "-sf", "-o", "/dev/null", "http://127.0.0.1:9153/metrics"]).status != 0 {
            usleep(100_000)
        }
    }

    /// The samples of `/metrics`, by name and label set ("name{k=v,...}" with labels sorted).
    static func scrape(_ lab: Lab) -> [String: Double] {
        let text = lab.run(["curl", "-sf", "http://127.0.0.1:9153/metrics"]).stdout
        var out: [String: Double] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
            let series = line[..<space]
            guard let brace = series.firstIndex(of: "{") else { out[String(series)] = value; continue }
            let labels = series[series.index(after: brace)..<series.index(before: series.endIndex)]
                .split(separator: ",").map { $0.replacingOccurrences(of: "\"", with: "") }.sorted()
            out["\(series[..<brace]){\(labels.joined(separator: ","))}"] = value
        }
        return out
    }

    @Test("/metrics counts exactly per mark, protocol and rcode; /clients and `markdns top` show the clients")
    func metricsAfterKnownTraffic() throws {
        let (lab, _) = try lab("metrics", ["--cache-size", "100", "--cache-min-ttl", "60"])
        defer { lab.close() }
        func ask(_ name: String, from client: String, tcp: Bool = false, expect: String) {
            let r = lab.dig(name, from: client, options: [tcp ? "+tcp" : "+notcp", "+time=3"])
            #expect(r.stdout.contains("status: \(expect)"), "\(name) from \(client): \(r.stdout)")
        }
        // alice: 3 distinct names over UDP, 2 of them again (cache hits), 1 over TCP.
        for n in ["a1", "a2", "a3", "a1", "a2"] { ask("\(n).example.test", from: "127.0.0.10", expect: "NOERROR") }
        ask("at.example.test", from: "127.0.0.10", tcp: true, expect: "NOERROR")
        // bob: 2 over UDP, one NXDOMAIN, 1 over TCP.
        for n in ["b1", "b2"] { ask("\(n).example.test", from: "127.0.0.11", expect: "NOERROR") }
        ask("gone.nx.test", from: "127.0.0.11", expect: "NXDOMAIN")
        ask("bt.example.test", from: "127.0.0.11", tcp: true, expect: "NOERROR")
        // unmarked: 2 over UDP.
        for n in ["u1", "u2"] { ask("\(n).example.test", from: "127.0.0.12", expect: "NOERROR") }

        let m = Self.scrape(lab)
        let q = "markdns_queries_total"
        #expect(m["\(q){mark=alice,proto=udp,rcode=NOERROR}"] == 5, "\(m.filter { $0.key.hasPrefix(q) })")
        #expect(m["\(q){mark=alice,proto=tcp,rcode=NOERROR}"] == 1)
        #expect(m["\(q){mark=bob,proto=udp,rcode=NOERROR}"] == 2)
        #expect(m["\(q){mark=bob,proto=udp,rcode=NXDOMAIN}"] == 1)
        #expect(m["\(q){mark=bob,proto=tcp,rcode=NOERROR}"] == 1)
        #expect(m["\(q){mark=none,proto=udp,rcode=NOERROR}"] == 2)
        #expect(m.filter { $0.key.hasPrefix(q + "{") }.values.reduce(0, +) == 12, "no other query was counted")
        #expect(m["markdns_cache_hits_total{mark=alice}"] == 2)
        #expect(m["markdns_cache_misses_total{mark=alice}"] == 4)
        #expect(m["markdns_cache_misses_total{mark=bob}"] == 4)
        // Every forwarded query ends with one answered attempt at the live upstream; the
        // dead one failed at least once (then it is backed off).
        let live = m["markdns_upstream_queries_total{proto=udp,upstream=127.0.0.2:5353}", default: 0]
            + m["markdns_upstream_queries_total{proto=tcp,upstream=127.0.0.2:5353}", default: 0]
        #expect(live == 10, "\(m.filter { $0.key.contains("upstream") })")
        #expect(m["markdns_upstream_latency_seconds_count{upstream=127.0.0.2:5353}"] == 10)
        #expect(m["markdns_upstream_failures_total{reason=error,upstream=127.0.0.3:5353}", default: 0] >= 1,
                "\(m.filter { $0.key.contains("failures") })")
        #expect(m["markdns_upstream_failures_total{reason=error,upstream=127.0.0.2:5353}"] == nil)
        #expect(m["markdns_conntrack_lookups_total{result=found}"] == 12)
        #expect(m["markdns_conntrack_lookup_seconds_count"] == 12)
        // Fewer than 64 packet marks seen: every one was still compared with its lookup (the
        // 10 UDP queries; TCP has no packet mark), none used instead of one.
        #expect(m["markdns_packet_mark_checks_total{result=match}"] == 10, "\(m.filter { $0.key.contains("packet") })")
        #expect(m["markdns_packet_mark_checks_total{result=mismatch}"] == 0)
        #expect(m["markdns_packet_marks_total"] == 0)
        #expect(m["markdns_outstanding_queries"] == 0)
        #expect(m["markdns_unmarked_queries_total{reason=mark-zero}"] == 2)

        // Conntrack accounting: the table is dumped at most every 5 s; after that, the sums
        // per mark are conntrack's own (alice's client and upstream flows carry 0x10).
        sleep(6)
        let later = Self.scrape(lab)
        let aliceFlows = lab.run(["conntrack", "-L", "-m", "0x10/0xff", "-o", "extended"]).stdout
            .split(separator: "\n").filter { $0.contains("bytes=") }
        let aliceBytes = aliceFlows.compactMap { line in
            line.split(separator: " ").first { $0.hasPrefix("bytes=") }.flatMap { Int($0.dropFirst(6)) }
        }.reduce(0, +)
        #expect(aliceFlows.count >= 8, "\(aliceFlows)")
        #expect(later["markdns_conntrack_flows{mark=alice}"] == Double(aliceFlows.count))
        #expect(later["markdns_conntrack_bytes{direction=original,mark=alice}"] == Double(aliceBytes),
                "\(later.filter { $0.key.hasPrefix("markdns_conntrack_") })")

        // /clients: the top clients per mark, as JSON, and the same through `markdns top`.
        let json = lab.run(["curl", "-sf", "http://127.0.0.1:9153/clients"]).stdout
        let report = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any]
        let marks = (report?["marks"] as? [[String: Any]]) ?? []
        let alice = marks.first { $0["mark"] as? String == "alice" }
        #expect(alice?["queries"] as? Int == 6, "\(json)")
        let aliceClients = (alice?["clients"] as? [[String: Any]]) ?? []
        #expect(aliceClients.count == 1 && aliceClients.first?["client"] as? String == "127.0.0.10"
                && aliceClients.first?["queries"] as? Int == 6, "\(json)")
        let bob = marks.first { $0["mark"] as? String == "bob" }
        #expect(((bob?["clients"] as? [[String: Any]]) ?? []).compactMap { $0["client"] as? String } == ["127.0.0.11"],
                "clients never mix across marks: \(json)")
        let top = lab.run([Lab.markdnsBinary, "top", "--metrics", "127.0.0.1:9153"])
        #expect(top.status == 0, "\(top.stderr)")
        let rows = top.stdout.split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
        #expect(rows.contains(["127.0.0.11", "4"]), "\(top.stdout)")
        #expect(rows.contains(["127.0.0.12", "2"]), "\(top.stdout)")
        #expect(rows.contains(["alice", "(all)", "6"]), "\(top.stdout)")
    }

    struct LogLine {
        var object: [String: Any]
        subscript(_ key: String) -> Any? { object[key] }
    }

    func logLines(_ path: String, atLeast n: Int) -> [LogLine] {
        var lines: [LogLine] = []
        for _ in 0..<50 {
            let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
            lines = text.split(separator: "\n").compactMap {
                (try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]).map(LogLine.init)
            }
            if lines.count >= n { break }
            usleep(100_000)
        }
        return lines
    }

    @Test("The query log has one JSON line per query with the right fields; SIGUSR1 reopens it")
    func queryLogAndReopen() throws {
        let (lab, md) = try lab("qlog", ["--query-log", "/tmp/md-qlog-\(getpid()).jsonl"])
        let log = "/tmp/md-qlog-\(getpid()).jsonl"
        defer { lab.close(); unlink(log); unlink(log + ".1") }
        #expect(lab.dig("l1.example.test", from: "127.0.0.10").stdout.contains("192.0.2.7"))
        #expect(lab.dig("l2.example.test", from: "127.0.0.12", type: "AAAA", options: ["+tcp"]).stdout.contains("2001:db8::7"))
        let lines = logLines(log, atLeast: 2)
        #expect(lines.count == 2, "\(lines.map(\.object))")
        if lines.count == 2 {
            let a = lines[0], b = lines[1]
            #expect(a["client"] as? String == "127.0.0.10" && a["connmark"] as? Int == 0x10 && a["mark"] as? String == "alice")
            #expect(a["qname"] as? String == "l1.example.test." && a["qtype"] as? Int == 1 && a["rcode"] as? String == "NOERROR")
            #expect(a["upstream"] as? String == "127.0.0.2:5353" && a["cache_hit"] as? Bool == false)
            #expect((a["latency_ms"] as? Double).map { $0 >= 0 && $0 < 5000 } == true)
            #expect((a["time"] as? Double).map { abs($0 - Date().timeIntervalSince1970) < 60 } == true)
            #expect(a["proto"] as? String == "udp" && b["proto"] as? String == "tcp")
            #expect(b["client"] as? String == "127.0.0.12" && b["connmark"] as? Int == 0 && b["mark"] as? String == "none")
            #expect(b["qtype"] as? Int == 28)
        }
        // logrotate: move the file away, SIGUSR1, the next line goes to a new file.
        #expect(rename(log, log + ".1") == 0)
        md.signal(SIGUSR1)
        usleep(300_000)
        #expect(lab.dig("l3.example.test", from: "127.0.0.11").stdout.contains("192.0.2.7"))
        let fresh = logLines(log, atLeast: 1)
        #expect(fresh.count == 1 && fresh.first?["qname"] as? String == "l3.example.test.", "\(fresh.map(\.object))")
        #expect(fresh.first?["mark"] as? String == "bob")
        #expect(logLines(log + ".1", atLeast: 2).count == 2, "the rotated file keeps its lines only")
    }

    @Test("A query log nobody reads drops lines, counted, and never queries")
    func queryLogOverload() throws {
        let fifo = "/tmp/md-qfifo-\(getpid())"
        unlink(fifo)
        #expect(mkfifo(fifo, 0o600) == 0)
        defer { unlink(fifo) }
        let lab = try Lab("qlogfull")
        defer { lab.close() }
        try lab.loadNftRules(clients: Self.clients)
        try lab.startUpstream(address: "127.0.0.2")
        try Self.policy.write(toFile: lab.path("policy.toml"), atomically: true, encoding: .utf8)
        // A reader that opens the FIFO and never reads: the pipe fills, the writer blocks.
        try lab.spawn(["bash", "-c", "exec 3<\(fifo); sleep 600"], log: "reader.log")
        try lab.startMarkdns(["--config", lab.path("policy.toml"), "--listen", "127.0.0.1:53",
                              "--metrics", "127.0.0.1:9153", "--query-log", fifo, "--query-log-queue", "8"],
                             probe: nil)
        Self.waitForMetrics(lab)
        let count = 1500
        try (0..<count).map { "f\($0).example.test A" }.joined(separator: "\n")
            .write(toFile: lab.path("batch"), atomically: true, encoding: .utf8)
        let r = lab.run(["dig", "-b", "127.0.0.10", "-p", "53", "@127.0.0.1", "+short", "+time=3", "+tries=1",
                         "-f", lab.path("batch")])
        let answers = r.stdout.split(separator: "\n").filter { $0 == "192.0.2.7" }.count
        #expect(answers == count, "every query answered while the log is stuck")
        var m: [String: Double] = [:]
        for _ in 0..<50 {
            m = Self.scrape(lab)
            if m["markdns_queries_total{mark=alice,proto=udp,rcode=NOERROR}"] == Double(count) { break }
            usleep(100_000)
        }
        #expect(m["markdns_queries_total{mark=alice,proto=udp,rcode=NOERROR}"] == Double(count),
                "\(m.filter { $0.key.contains("queries") || $0.key.contains("upstream") || $0.key.contains("refusals") || $0.key.contains("dropped") })")
        let dropped = m["markdns_querylog_dropped_total", default: 0]
        let written = m["markdns_querylog_written_total", default: 0]
        #expect(dropped > 0, "\(m.filter { $0.key.contains("querylog") })")
        #expect(dropped + written <= Double(count))
        #expect(written < Double(count) / 2, "a 64 KiB pipe holds a few hundred lines at most")
    }

    @Test("Start-up health: upstream probe logged; a missing OUTPUT save-mark rule is reported after the first marked query")
    func startupHealth() throws {
        for saveMark in [true, false] {
            let lab = try Lab(saveMark ? "health" : "nosavemark")
            defer { lab.close() }
            try lab.loadNftRules(clients: Self.clients)
            if !saveMark { try lab.exec(["nft", "flush", "chain", "inet", "markdns", "output"]) }
            try lab.startUpstream(address: "127.0.0.2")
            try lab.startMarkdns(["--listen", "127.0.0.1:53", "--upstream", "127.0.0.2:5353", "--probe-upstreams"])
            #expect(lab.dig("h.example.test", from: "127.0.0.10").stdout.contains("192.0.2.7"))
            var log = ""
            for _ in 0..<50 {
                log = lab.readLog("markdns.log")
                if log.contains("reachable") && log.contains("save-mark for our own flows") { break }
                usleep(100_000)
            }
            #expect(log.contains("upstream 127.0.0.2:5353 reachable"), "\(log)")
            if saveMark {
                #expect(log.contains("save-mark for our own flows: present"), "\(log)")
            } else {
                #expect(log.contains("save-mark for our own flows seems absent") && log.contains("SO_MARK 0x10 but has connmark 0x0"),
                        "\(log)")
            }
        }
    }
}
}
