import Foundation
import Testing

/// Local data and per-domain servers end to end: hosts file (and its reload), static
/// records, the local domain, private reverse zones, `--domain-server` with marks.
extension KernelSuite {
@Suite("Local data and per-domain servers (kernel)", .serialized)
struct LocalDataTests {
    @Test("Hosts, records, local domain and private reverse are answered locally; corp names go to their server, marked")
    func localDataAndDomainRouting() throws {
        let lab = try Lab("local")
        defer { lab.close() }
        try lab.loadNftRules(clients: ["127.0.0.10": 0x10])
        try lab.startUpstream(address: "127.0.0.2")
        try lab.startUpstream(address: "127.0.0.3", answer: "192.0.2.8")
        let hosts = lab.path("hosts")
        try "192.168.1.10 nas   # the NAS\n".write(toFile: hosts, atomically: true, encoding: .utf8)
        let md = try lab.startMarkdns(["--listen", "127.0.0.1:53", "--upstream", "127.0.0.2:5353",
                                       "--hosts", hosts, "--local-domain", "lan",
                                       "--record", "router.lan A 192.168.1.1",
                                       "--record", "www.lan CNAME router.lan",
                                       "--domain-server", "corp.example.test=127.0.0.3:5353"])
        lab.forgetUpstreamFlows()

        func short(_ name: String, _ type: String = "A", _ extra: [String] = []) -> String {
            lab.dig(name, from: "127.0.0.10", type: type, options: ["+short"] + extra).stdout
                .trimmingCharacters(in: .whitespacesAndNewlines)
        }
        #expect(short("nas") == "192.168.1.10")
        #expect(short("NAS.lan") == "192.168.1.10", "bare hosts names also live under the local domain")
        #expect(short("router.lan") == "192.168.1.1")
        #expect(short("www.lan") == "router.lan.\n192.168.1.1", "CNAME followed through local data")
        let ptr = lab.run(["dig", "+short", "-b", "127.0.0.10", "@127.0.0.1", "-x", "192.168.1.10"]).stdout
        #expect(ptr.contains("nas.lan."), "PTR from the hosts file: \(ptr)")
        let ghost = lab.dig("ghost.lan", from: "127.0.0.10").stdout
        #expect(ghost.contains("status: NXDOMAIN") && ghost.contains(" aa "), "\(ghost)")
        let priv = lab.run(["dig", "-b", "127.0.0.10", "@127.0.0.1", "-x", "10.1.2.3"]).stdout
        #expect(priv.contains("status: NXDOMAIN"), "private reverse answered locally: \(priv)")
        #expect(lab.upstreamFlows(to: "127.0.0.2").isEmpty && lab.upstreamFlows(to: "127.0.0.3").isEmpty,
                "nothing local leaks upstream: \(lab.flows())")

        // Per-domain server: corp names to 127.0.0.3 with the client's mark; others as usual.
        #expect(short("git.corp.example.test") == "192.0.2.8")
        #expect(short("www.example.test") == "192.0.2.7")
        let corp = lab.upstreamFlows(to: "127.0.0.3")
        #expect(corp.count == 1 && corp.allSatisfy { $0.mark == 0x10 }, "\(corp)")
        #expect(lab.upstreamFlows(to: "127.0.0.2").count == 1)

        // The hosts file changes (replaced, as editors and DHCP servers do): picked up in seconds.
        try "192.168.1.20 nas\n".write(toFile: hosts, atomically: true, encoding: .utf8)
        var now = ""
        for _ in 0..<50 {
            now = short("nas")
            if now == "192.168.1.20" { break }
            usleep(200_000)
        }
        #expect(now == "192.168.1.20", "hosts change not picked up: \(lab.readLog("markdns.log"))")

        // Same size, same inode, same mtime: the watcher cannot see it; SIGHUP re-reads.
        try lab.exec(["cp", "-p", hosts, hosts + ".ref"])
        try lab.exec(["bash", "-c", "printf '192.168.1.30 nas\\n' 1<> \(hosts) && touch -r \(hosts).ref \(hosts)"])
        usleep(2_500_000)
        #expect(short("nas") == "192.168.1.20", "unchanged stamp: not re-read by the watcher")
        md.signal(SIGHUP)
        for _ in 0..<50 {
            now = short("nas")
            if now == "192.168.1.30" { break }
            usleep(100_000)
        }
        #expect(now == "192.168.1.30", "SIGHUP re-reads hosts files: \(lab.readLog("markdns.log"))")
        lab.stop(md)
        let s = lab.stats()
        #expect(s["local", default: 0] >= 7 && s["private_reverse"] == 1, "\(s)")
    }

    @Test("A per-domain pool for a private reverse zone takes it over; --forward-private-reverse sends them upstream")
    func privateReverseRouting() throws {
        let lab = try Lab("privrev")
        defer { lab.close() }
        try lab.loadNftRules(clients: [:])
        try lab.startUpstream(address: "127.0.0.2", extra: ["--ptr-record=3.2.1.10.in-addr.arpa,corp-host.example.test"])
        let md = try lab.startMarkdns(["--listen", "127.0.0.1:53", "--upstream", "127.0.0.2:5353",
                                       "--domain-server", "10.in-addr.arpa=127.0.0.2:5353"])
        let routed = lab.run(["dig", "+short", "@127.0.0.1", "-x", "10.1.2.3"]).stdout
        #expect(routed.contains("corp-host.example.test."), "\(routed)")
        let other = lab.run(["dig", "@127.0.0.1", "-x", "192.168.7.7"]).stdout
        #expect(other.contains("status: NXDOMAIN"))
        lab.stop(md)
        lab.forgetUpstreamFlows()
        try lab.startMarkdns(["--listen", "127.0.0.1:53", "--upstream", "127.0.0.2:5353", "--forward-private-reverse"])
        lab.forgetUpstreamFlows()
        _ = lab.run(["dig", "@127.0.0.1", "-x", "192.168.7.7"])
        #expect(lab.upstreamFlows(to: "127.0.0.2").count == 1, "forwarded when asked to")
    }
}
}
