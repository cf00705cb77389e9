import Foundation
import Testing

/// A scripted upstream that misbehaves in one way per test, with a real dnsmasq behind it
/// (127.0.0.2, answers 192.0.2.7): what reaches the client, how fast, and what is counted.
extension KernelSuite {
@Suite("Upstream faults and strategies (kernel)", .serialized)
struct UpstreamFaultTests {
    static let fake = "127.0.0.4"

    func lab(_ label: String) throws -> Lab {
        let lab = try Lab(label)
        do {
            try lab.loadNftRules(clients: ["127.0.0.10": 0x10])
            try lab.startUpstream(address: "127.0.0.2")
        } catch {
            lab.close()
            throw error
        }
        return lab
    }

    /// markdns with the scripted upstream first and dnsmasq second (failover order).
    @discardableResult
    func start(_ lab: Lab, extra: [String] = [], fakeOnly: Bool = false) throws -> ChildProcess {
        let upstreams = ["--upstream", "\(Self.fake):5353"] + (fakeOnly ? [] : ["--upstream", "127.0.0.2:5353"])
        let p = try lab.startMarkdns(["--listen", "127.0.0.1:53"] + upstreams + extra, probe: nil)
        for _ in 0..<100 where lab.run(["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/53"]).status != 0 {
            usleep(100_000)
        }
        return p
    }

    func timedDig(_ lab: Lab, _ name: String, options: [String] = []) -> (CommandResult, Double) {
        let t0 = Date()
        let r = lab.dig(name, from: "127.0.0.10", options: ["+tries=1"] + options)
        return (r, Date().timeIntervalSince(t0))
    }

    @Test("A slow answer within the timeout is relayed; a slower one fails over and its late answer is ignored")
    func slow() throws {
        let lab = try lab("slow")
        defer { lab.close() }
        try lab.startFakeUpstream(address: Self.fake, .slow, delay: 0.3, log: "fake.log")
        let md = try start(lab, extra: ["--upstream-timeout", "1500"])
        let (r, _) = timedDig(lab, "s1.example.test", options: ["+time=4"])
        #expect(r.stdout.contains("192.0.2.99"), "\(r.stdout)")
        lab.stop(md)

        let md2 = try start(lab, extra: ["--upstream-timeout", "100"], )
        let (r2, _) = timedDig(lab, "s2.example.test", options: ["+time=4"])
        #expect(r2.stdout.contains("192.0.2.7"), "failover to dnsmasq: \(r2.stdout)")
        usleep(500_000)  // the late answer arrives on the upstream socket
        lab.stop(md2)
        let s = lab.stats()
        #expect(s["upstream_timeouts"] == 1 && s["unmatched", default: 0] >= 1, "\(s)")
    }

    @Test("SERVFAIL fails over at once; with no other server the client gets SERVFAIL")
    func servfail() throws {
        let lab = try lab("servfail")
        defer { lab.close() }
        try lab.startFakeUpstream(address: Self.fake, .servfail, log: "fake.log")
        let md = try start(lab, extra: ["--upstream-timeout", "3000"])
        let (r, t) = timedDig(lab, "sf.example.test", options: ["+time=5"])
        #expect(r.stdout.contains("192.0.2.7") && t < 2, "\(t)s: \(r.stdout)")
        lab.stop(md)
        #expect(lab.stats()["upstream_unusable"] == 1, "\(lab.stats())")
        try start(lab, fakeOnly: true)
        let (r2, _) = timedDig(lab, "sf2.example.test", options: ["+time=5"])
        #expect(r2.stdout.contains("status: SERVFAIL"), "\(r2.stdout)")
    }

    @Test("A truncated answer reaches the client as TC, with or without the question")
    func truncated() throws {
        for behaviour in [FakeBehaviour.truncated, .truncatedNoQuestion] {
            let lab = try lab("tc")
            defer { lab.close() }
            try lab.startFakeUpstream(address: Self.fake, behaviour, log: "fake.log")
            let md = try start(lab, extra: ["--upstream-timeout", "3000"])
            // +ignore: dig shows the TC answer instead of retrying over TCP.
            let (r, t) = timedDig(lab, "tc.example.test", options: ["+time=5", "+ignore", "+notcp"])
            #expect(r.stdout.contains(" tc ") && r.stdout.contains("status: NOERROR") && t < 2,
                    "\(behaviour): \(t)s: \(r.stdout)")
            #expect(r.stdout.contains("QUERY: 1"), "the client's question is echoed: \(r.stdout)")
            // Without +ignore dig retries over TCP; the scripted server has no TCP, dnsmasq does.
            let (full, _) = timedDig(lab, "tc2.example.test", options: ["+time=5"])
            #expect(full.stdout.contains("192.0.2.7"), "\(behaviour): \(full.stdout)")
            lab.stop(md)
            #expect(lab.stats()["truncated", default: 0] >= 1, "\(lab.stats())")
        }
    }

    @Test("FORMERR without a question fails over at once instead of waiting for the timeout")
    func formerrWithoutQuestion() throws {
        let lab = try lab("formerr")
        defer { lab.close() }
        try lab.startFakeUpstream(address: Self.fake, .formerrNoQuestion, log: "fake.log")
        let md = try start(lab, extra: ["--upstream-timeout", "3000"])
        let (r, t) = timedDig(lab, "fe.example.test", options: ["+time=5"])
        #expect(r.stdout.contains("192.0.2.7") && t < 2, "\(t)s: \(r.stdout)")
        lab.stop(md)
        #expect(lab.stats()["upstream_unusable"] == 1, "\(lab.stats())")
    }

    @Test("Answers with a wrong ID, a wrong question or from a wrong port are ignored", arguments: [
        FakeBehaviour.wrongID, .wrongQuestion, .wrongSource,
    ])
    func forged(_ behaviour: FakeBehaviour) throws {
        let lab = try lab("forged")
        defer { lab.close() }
        try lab.startFakeUpstream(address: Self.fake, behaviour, log: "fake.log")
        let md = try start(lab, extra: ["--upstream-timeout", "300", "--cache-size", "100", "--cache-min-ttl", "30"])
        for i in 0..<2 {
            let (r, _) = timedDig(lab, "fg.example.test", options: ["+time=4"])
            #expect(r.stdout.contains("192.0.2.7") && !r.stdout.contains("192.0.2.99"), "\(behaviour) #\(i): \(r.stdout)")
        }
        lab.stop(md)
        let s = lab.stats()
        #expect(s["upstream_timeouts"] == 1, "the forged answer was not taken: \(s)")
        #expect(s["cache_hits"] == 1, "the real answer was cached, not the forged one: \(s)")
        switch behaviour {
        case .wrongID: #expect(s["unmatched"] == 1, "\(s)")
        case .wrongQuestion: #expect(s["mismatched"] == 1, "\(s)")
        default: #expect(s["unmatched"] == 0 && s["mismatched"] == 0, "the connected socket never sees it: \(s)")
        }
    }

    @Test("A silent server is retried once within the query deadline, then SERVFAIL")
    func deadlineAndRetry() throws {
        let lab = try lab("deadline")
        defer { lab.close() }
        try lab.startFakeUpstream(address: Self.fake, .silent, log: "fake.log")
        let md = try start(lab, extra: ["--upstream-timeout", "400", "--query-timeout", "600"], fakeOnly: true)
        let (r, t) = timedDig(lab, "dl.example.test", options: ["+time=5"])
        #expect(r.stdout.contains("status: SERVFAIL"), "\(r.stdout)")
        #expect(t >= 0.55 && t < 2.5, "SERVFAIL when the 600 ms budget is spent, took \(t)s")
        lab.stop(md)
        #expect(lab.fakeQueries("fake.log") == 2, "one try and one retry: \(lab.readLog("fake.log"))")
        #expect(lab.stats()["upstream_retries"] == 1, "\(lab.stats())")
    }

    @Test("Serve-stale: with every upstream down an expired answer is served with TTL 30, at once once backed off")
    func serveStale() throws {
        let lab = try lab("stale")
        defer { lab.close() }
        let upstream = try lab.startUpstream(address: "127.0.0.5", extra: ["--local-ttl=1"])
        let md = try lab.startMarkdns(["--listen", "127.0.0.1:53", "--upstream", "127.0.0.5:5353", "--cache-size", "100",
                                       "--serve-stale", "3600", "--upstream-timeout", "300"])
        let fresh = lab.dig("st.example.test", from: "127.0.0.10", options: ["+noall", "+answer"]).stdout
        #expect(fresh.contains("\t1\tIN\tA\t192.0.2.7"), "\(fresh)")
        lab.stop(upstream)
        usleep(1_500_000)  // the entry expires
        for i in 0..<4 {
            let (r, t) = timedDig(lab, "st.example.test", options: ["+time=4", "+noall", "+answer"])
            #expect(r.stdout.contains("\t30\tIN\tA\t192.0.2.7"), "#\(i): \(r.stdout)")
            if i == 3 { #expect(t < 0.5, "backed off: served stale without trying, took \(t)s") }
        }
        let other = lab.dig("never-seen.example.test", from: "127.0.0.10").stdout
        #expect(other.contains("status: SERVFAIL"), "no stale answer to give: \(other)")
        lab.stop(md)
        #expect(lab.stats()["stale_served"] == 4, "\(lab.stats())")
    }

    @Test("round-robin spreads queries over the servers; fastest settles on the fastest")
    func strategies() throws {
        let lab = try lab("strategy")
        defer { lab.close() }
        // Second real upstream answering another address.
        try lab.startUpstream(address: "127.0.0.3", answer: "192.0.2.8")
        let rr = try lab.startMarkdns(["--listen", "127.0.0.1:53", "--upstream", "127.0.0.2:5353",
                                       "--upstream", "127.0.0.3:5353", "--strategy", "round-robin"])
        var answers: [String: Int] = [:]
        for i in 0..<6 {
            let out = lab.dig("rr\(i).example.test", from: "127.0.0.10", options: ["+short"]).stdout
            answers[out.trimmingCharacters(in: .whitespacesAndNewlines), default: 0] += 1
        }
        #expect(answers["192.0.2.7", default: 0] >= 2 && answers["192.0.2.8", default: 0] >= 2, "\(answers)")
        lab.stop(rr)

        // A slow (150 ms) scripted server listed first: fastest moves to dnsmasq after measuring.
        try lab.startFakeUpstream(address: Self.fake, .slow, delay: 0.15, log: "fake.log")
        let fast = try start(lab, extra: ["--strategy", "fastest"])
        var slowAnswers = 0
        for i in 0..<20 {
            let out = lab.dig("fa\(i).example.test", from: "127.0.0.10", options: ["+short", "+time=3"]).stdout
            if out.contains("192.0.2.99") { slowAnswers += 1 }
        }
        lab.stop(fast)
        // Measured once at first, explored once in 16: at most 3 of 20.
        #expect(slowAnswers >= 1 && slowAnswers <= 3, "slow server answered \(slowAnswers) of 20")
    }
}
}
