import Foundation
import Testing

/// SIGTERM drains, SIGHUP under load, restart under load.
extension KernelSuite {
@Suite("Lifecycle (kernel)", .serialized)
struct LifecycleTests {
    static let clients: [String: UInt32] = ["127.0.0.10": 0x10]

    /// A lab whose only upstream (127.0.0.4:5353) answers after `delay` seconds (never
    /// with nil), markdns in front of it with `args`, and a dig from 127.0.0.10 (log
    /// "dig.log") whose query has reached the upstream: it is in flight.
    func labWithQueryInFlight(_ label: String, delay: Double?, args: [String]) throws -> (Lab, ChildProcess) {
        let lab = try Lab(label)
        do {
            try lab.loadNftRules(clients: Self.clients)
            try lab.startFakeUpstream(address: "127.0.0.4", delay == nil ? .silent : .slow, delay: delay ?? 0,
                                      log: "slow.log")
            let md = try lab.startMarkdns(["--listen", "127.0.0.1:53", "--upstream", "127.0.0.4:5353"] + args, probe: nil)
            try lab.waitForListener(process: md)
            try lab.spawn(["dig", "+time=8", "+tries=1", "-b", "127.0.0.10", "@127.0.0.1", "inflight.example.test"],
                          log: "dig.log")
            try Lab.waitFor("the query to reach the upstream: \(lab.readLog("dig.log"))") {
                lab.readLog("slow.log").contains("query")
            }
            return (lab, md)
        } catch {
            lab.close()
            throw error
        }
    }

    @Test("SIGTERM: new connections refused, the query in flight is answered, exit 0")
    func sigtermDrains() throws {
        try #require(Lab.which("python3") != nil)
        let (lab, md) = try labWithQueryInFlight("drain", delay: 2,
                                                 args: ["--upstream-timeout", "5000", "--drain-timeout", "5"])
        defer { lab.close() }
        let sent = Date()
        md.signal(SIGTERM)
        usleep(300_000)
        let connect = lab.run(["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/53"])
        #expect(connect.status != 0, "TCP connections must be refused once draining")
        let late = lab.dig("late.example.test", from: "127.0.0.10", options: ["+time=1"])
        #expect(late.stdout.contains("status: SERVFAIL"), "a query arriving while draining is not forwarded: \(late.stdout)")
        let status = md.wait()
        let took = Date().timeIntervalSince(sent)
        #expect(status == 0, "\(lab.readLog("markdns.log"))")
        #expect(took > 1.0 && took < 4.5, "exit \(took) s after SIGTERM; the answer was due ~1.5-2 s after it")
        try Lab.waitFor("dig to finish") { lab.readLog("dig.log").contains("status:") }
        #expect(lab.readLog("dig.log").contains("192.0.2.99"), "in-flight query: \(lab.readLog("dig.log"))")
        let log = lab.readLog("markdns.log")
        #expect(log.contains("answered=1 ") && !log.contains("drain deadline"), "\(log)")
    }

    @Test("SIGTERM with an upstream that never answers: exit 0 at --drain-timeout, logged")
    func drainDeadline() throws {
        try #require(Lab.which("python3") != nil)
        let (lab, md) = try labWithQueryInFlight("deadline", delay: nil,
                                                 args: ["--upstream-timeout", "20000", "--drain-timeout", "1"])
        defer { lab.close() }
        let sent = Date()
        md.signal(SIGTERM)
        let status = md.wait()
        let took = Date().timeIntervalSince(sent)
        #expect(status == 0)
        #expect(took >= 0.9 && took < 3.5, "exit \(took) s after SIGTERM with --drain-timeout 1")
        let log = lab.readLog("markdns.log")
        #expect(log.contains("drain deadline (1000 ms) reached: 1 queries still in flight are dropped"), "\(log)")
        #expect(log.contains("stats: "), "\(log)")
    }

    @Test("SIGHUP reloads under dnsperf load lose no query")
    func reloadUnderLoad() throws {
        try #require(Lab.which("dnsperf") != nil)
        let lab = try Lab("reload")
        defer { lab.close() }
        try lab.loadNftRules(clients: Self.clients)
        try lab.startUpstream(address: "127.0.0.2")
        let policy = lab.path("policy.toml")
        try """
            [[pool]]
            name = "up"
            servers = ["127.0.0.2:5353"]
            default = true
            """.write(toFile: policy, atomically: true, encoding: .utf8)
        let md = try lab.startMarkdns(["--listen", "127.0.0.1:53", "--config", policy])
        let perf = try lab.spawnDnsperf(client: "127.0.0.10", seconds: 6, qps: 800, log: "dnsperf.log")
        var hups = 0
        let end = Date().addingTimeInterval(5.5)
        while Date() < end {
            usleep(200_000)
            md.signal(SIGHUP)
            hups += 1
        }
        let r = lab.dnsperfResult(perf, log: "dnsperf.log")
        #expect(r.sent > 2000 && r.lost == 0 && r.completed == r.sent, "\(r)\n\(r.text)")
        #expect(r.rcodes["NOERROR"] == r.completed, "\(r)")
        #expect(md.isRunning)
        #expect(lab.stop(md) == 0)
        let log = lab.readLog("markdns.log")
        let reloads = log.components(separatedBy: "reloaded policy").count - 1
        #expect(reloads >= hups - 2 && reloads >= 15, "\(hups) SIGHUPs, \(reloads) reloads")
        #expect(!log.contains("reload failed"))
    }

    @Test("Restart under dnsperf load loses at most the queries in flight")
    func restartUnderLoad() throws {
        try #require(Lab.which("dnsperf") != nil)
        let lab = try Lab("restart")
        defer { lab.close() }
        try lab.loadNftRules(clients: Self.clients)
        try lab.startUpstream(address: "127.0.0.2")
        let args = ["--listen", "127.0.0.1:53", "--upstream", "127.0.0.2:5353"]
        let first = try lab.startMarkdns(args, log: "markdns1.log")
        // At most 20 queries outstanding; a query unanswered for 4 s is lost (and frees its slot).
        let perf = try lab.spawnDnsperf(client: "127.0.0.10", seconds: 10, qps: 500, outstanding: 20, timeout: 4,
                                        log: "dnsperf.log")
        usleep(2_500_000)
        let down = Date()
        #expect(lab.stop(first) == 0, "\(lab.readLog("markdns1.log"))")
        let second = try lab.startMarkdns(args, log: "markdns2.log")
        let gap = Date().timeIntervalSince(down)
        let r = lab.dnsperfResult(perf, log: "dnsperf.log")
        #expect(gap < 4, "restart took \(gap) s, longer than dnsperf's timeout")
        #expect(r.lost <= 20, "lost \(r.lost) > 20 in flight (restart gap \(gap) s): \(r)")
        #expect(r.completed > 1500, "\(r)")
        #expect(lab.stop(second) == 0)
        // The second instance served the rest of the run.
        let udp = lab.stats("markdns2.log")["queries_udp"] ?? 0
        #expect(udp > 500, "second instance answered only \(udp): \(lab.readLog("markdns2.log"))")
        print("restart under load: gap \(String(format: "%.2f", gap)) s, dnsperf \(r)")
    }
}
}
