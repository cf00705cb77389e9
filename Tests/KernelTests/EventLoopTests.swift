import Foundation
import Testing

/// Several event loops behind SO_REUSEPORT listeners: one client address always meets the
/// same loop (its cache, coalescing and limits), and a port someone else holds is an error,
/// not a silent split.
extension KernelSuite {
@Suite("Event loops (kernel)", .serialized)
struct EventLoopTests {
    @Test("With 2 loops a client's queries from ever-new source ports all meet one cache")
    func clientSteering() throws {
        let lab = try Lab("loops")
        defer { lab.close() }
        try lab.loadNftRules(clients: ["127.0.0.10": 0x10, "127.0.0.11": 0x11])
        try lab.startUpstream(address: "127.0.0.2")
        // Spread over both loops from the start (adaptive would keep this light load on one).
        let md = try lab.startMarkdns(["--listen", "127.0.0.1:53", "--upstream", "127.0.0.2:5353", "--threads", "2",
                                       "--loop-spread", "always", "--cache-size", "100", "--cache-min-ttl", "60"])
        lab.forgetUpstreamFlows()
        for client in ["127.0.0.10", "127.0.0.11"] {
            for _ in 0..<12 {  // dig picks a new random source port every time
                let r = lab.dig("steer.example.test", from: client, options: ["+short"])
                #expect(r.stdout.contains("192.0.2.7"))
            }
        }
        // Per client one miss: a second loop would have missed again (probability 1 - 2^-11 per client).
        let flows = lab.upstreamFlows(to: "127.0.0.2")
        #expect(flows.count == 2, "\(flows)")
        #expect(Set(flows.map(\.mark)) == [0x10, 0x11], "each mark's own upstream flow: \(flows)")
        lab.stop(md)
        let s = lab.stats()
        #expect(s["cache_hits"] == 22 && s["upstream_sent"] == 3, "start-up probe + one per client: \(s)")
        #expect(lab.readLog("markdns.log").contains("2 event loop(s)"))
        #expect(!lab.readLog("markdns.log").contains("cannot steer"), "\(lab.readLog("markdns.log"))")
    }

    /// CPU ticks (utime + stime) of each data-plane thread of `pid`, by thread name.
    static func loopTicks(_ pid: Int32) -> [String: Int] {
        var out: [String: Int] = [:]
        for tid in (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? [] {
            let name = ((try? String(contentsOfFile: "/proc/\(pid)/task/\(tid)/comm", encoding: .utf8)) ?? "")
                .trimmingCharacters(in: .whitespacesAndNewlines)
            guard name.hasPrefix("markdns-dp-"),
                  let stat = try? String(contentsOfFile: "/proc/\(pid)/task/\(tid)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { continue }
            let f = stat[stat.index(after: close)...].split(separator: " ")
            out[name] = (Int(f[11]) ?? 0) + (Int(f[12]) ?? 0)   // fields 14 and 15 of stat
        }
        return out
    }

    @Test("Adaptive spread: a light load stays on loop 0, saturation spreads to both, quiet gathers again")
    func adaptiveSpread() throws {
        let lab = try Lab("spread")
        defer { lab.close() }
        try lab.loadNftRules(clients: ["127.0.0.10": 0x10, "127.0.0.11": 0x11])
        try lab.startUpstream(address: "127.0.0.2")
        let md = try lab.startMarkdns(["--listen", "127.0.0.1:53", "--upstream", "127.0.0.2:5353", "--threads", "2"])
        #expect(lab.readLog("markdns.log").contains("2 event loop(s) (UDP clients on one of them"), "\(lab.readLog("markdns.log"))")
        lab.forgetUpstreamFlows()

        // Light: 2 clients x 300 q/s for 3 s. Loop 1 reads nothing (its CPU stays at ~0).
        let before = Self.loopTicks(md.pid)
        let light = try ["127.0.0.10", "127.0.0.11"].map { try lab.spawnDnsperf(client: $0, seconds: 3, qps: 300, log: "light\($0).log") }
        let lightResults = zip(light, ["127.0.0.10", "127.0.0.11"]).map { lab.dnsperfResult($0, log: "light\($1).log") }
        let afterLight = Self.loopTicks(md.pid)
        let d0 = (afterLight["markdns-dp-0"] ?? 0) - (before["markdns-dp-0"] ?? 0)
        let d1 = (afterLight["markdns-dp-1"] ?? 0) - (before["markdns-dp-1"] ?? 0)
        #expect(lightResults.allSatisfy { $0.lost == 0 && $0.completed > 0 }, "\(lightResults)")
        #expect(d0 > 0 && d1 <= 1, "light load: loop 0 \(d0) ticks, loop 1 \(d1) ticks")
        #expect(!lab.readLog("markdns.log").contains("spread over 2"), "\(lab.readLog("markdns.log"))")

        // Saturation from both clients: the first loop is busy, the clients spread.
        let heavy = try ["127.0.0.10", "127.0.0.11"].map {
            try lab.spawnDnsperf(client: $0, seconds: 4, qps: 1_000_000, outstanding: 200, log: "heavy\($0).log")
        }
        let heavyResults = zip(heavy, ["127.0.0.10", "127.0.0.11"]).map { lab.dnsperfResult($0, log: "heavy\($1).log") }
        let afterHeavy = Self.loopTicks(md.pid)
        #expect(heavyResults.allSatisfy { $0.completed > 0 }, "\(heavyResults)")
        #expect(lab.readLog("markdns.log").contains("UDP clients now spread over 2 of 2 event loop(s)"), "\(lab.readLog("markdns.log"))")
        #expect((afterHeavy["markdns-dp-1"] ?? 0) - (afterLight["markdns-dp-1"] ?? 0) > 10, "loop 1 took a share: \(afterLight) -> \(afterHeavy)")

        // Quiet: a query now and then for a few seconds; the loops gather on the first again.
        try Lab.waitFor("gathered again: \(lab.readLog("markdns.log"))", seconds: 10) {
            _ = lab.dig("quiet.example.test", from: "127.0.0.10", options: ["+short"])
            usleep(300_000)
            return lab.readLog("markdns.log").contains("UDP clients now spread over 1 of 2 event loop(s)")
        }
        // Every answer went out with its client's mark throughout.
        let flows = lab.upstreamFlows(to: "127.0.0.2")
        #expect(!flows.isEmpty && flows.allSatisfy { [0x10, 0x11].contains($0.mark) }, "\(flows.filter { ![0x10, 0x11].contains($0.mark) })")
        #expect(lab.stop(md) == 0)
    }

    @Test("A port another program holds stops start-up with a clear error, even with SO_REUSEPORT")
    func portInUse() throws {
        let lab = try Lab("portuse")
        defer { lab.close() }
        let holder = try lab.spawn(["python3", "-u", "-c", """
            import socket, time
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 53)); print("ready", flush=True)
            time.sleep(60)
            """], log: "holder.log")
        try lab.waitForLog("holder.log", contains: "ready", process: holder)
        let r = lab.run([Lab.markdnsBinary, "--listen", "127.0.0.1:53", "--upstream", "127.0.0.2:5353", "--threads", "2"])
        #expect(r.status == 1)
        #expect(r.stderr.contains("cannot listen on 127.0.0.1:53/udp") && r.stderr.contains("in use"), "\(r.stderr)")
    }
}
}
