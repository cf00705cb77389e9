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
        let md = try lab.startMarkdns(["--listen", "127.0.0.1:53", "--upstream", "127.0.0.2:5353", "--threads", "2",
                                       "--cache-size", "100", "--cache-min-ttl", "60"])
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
