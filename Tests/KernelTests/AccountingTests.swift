import Foundation
import Testing

/// `markdns accounting`: the conntrack table dumped through netlink, summed per mark.
extension KernelSuite {
@Suite("Accounting (kernel)", .serialized)
struct AccountingTests {
    /// Sends `count` UDP datagrams of `size` payload bytes from `source` to a sink that
    /// never answers: the flow's original direction carries count × (size + 28) bytes.
    func blast(_ lab: Lab, from source: String, port: Int, count: Int, size: Int) {
        lab.run(["python3", "-c", """
            import socket
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("\(source)", 0))
            for _ in range(\(count)): s.sendto(b"x" * \(size), ("127.0.0.1", \(port)))
            """])
    }

    @Test("Bytes and packets per mark match the known transfers and conntrack's own view")
    func sumsPerMark() throws {
        let lab = try Lab("acct")
        defer { lab.close() }
        try lab.loadNftRules(clients: ["127.0.0.10": 0x10, "127.0.0.11": 0x1020, "127.0.0.13": 0x77])
        try lab.exec(["sysctl", "-qw", "net.netfilter.nf_conntrack_acct=1"])
        try lab.startUpstream(address: "127.0.0.2")
        // A sink that reads and never answers.
        try lab.spawn(["python3", "-c", """
            import socket
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 9999))
            while True: s.recv(65536)
            """], log: "sink.log")
        usleep(300_000)
        lab.run(["conntrack", "-F"])
        blast(lab, from: "127.0.0.10", port: 9999, count: 10, size: 1000)   // alice
        blast(lab, from: "127.0.0.10", port: 9999, count: 5, size: 200)     // alice, a second flow
        blast(lab, from: "127.0.0.11", port: 9999, count: 3, size: 500)     // bob (0x1020 masked)
        blast(lab, from: "127.0.0.13", port: 9999, count: 2, size: 100)     // a mark the policy lacks
        // DNS too: bob asks the upstream directly (both directions carry bytes).
        #expect(lab.dig("acct.example.test", server: "127.0.0.2", port: 5353, from: "127.0.0.11").stdout.contains("192.0.2.7"))

        try ObservabilityTests.policy.write(toFile: lab.path("policy.toml"), atomically: true, encoding: .utf8)
        let r = lab.run([Lab.markdnsBinary, "accounting", "--config", lab.path("policy.toml"), "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let rows = (try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]]) ?? []
        func row(_ name: String) -> [String: Any]? { rows.first { $0["name"] as? String == name } }
        func int(_ row: [String: Any]?, _ key: String) -> Int { (row?[key] as? Int) ?? -1 }

        let alice = row("alice")
        #expect(int(alice, "flows") == 2, "\(r.stdout)")
        #expect(int(alice, "original_bytes") == 10 * 1028 + 5 * 228, "\(r.stdout)")
        #expect(int(alice, "original_packets") == 15)
        #expect(int(alice, "reply_bytes") == 0 && int(alice, "mark") == 0x10)

        // bob: the blast plus the DNS exchange, whose sizes conntrack itself reports.
        let dnsFlows = lab.run(["conntrack", "-L", "-p", "udp", "--orig-port-dst", "5353", "-o", "extended"]).stdout
        let sizes = dnsFlows.split(separator: " ").filter { $0.hasPrefix("bytes=") }.compactMap { Int($0.dropFirst(6)) }
        #expect(sizes.count == 2, "\(dnsFlows)")
        let bob = row("bob")
        #expect(int(bob, "flows") == 2, "\(r.stdout)")
        #expect(int(bob, "original_bytes") == 3 * 528 + (sizes.first ?? 0), "\(r.stdout)")
        #expect(int(bob, "reply_bytes") == (sizes.last ?? 0) && int(bob, "reply_packets") == 1)
        #expect(int(bob, "mark") == 0x20, "masked with the policy's mask")

        let other = row("other")
        #expect(int(other, "mark") == 0x77 && int(other, "original_bytes") == 2 * 128, "\(r.stdout)")

        // The table form names the same marks.
        let table = lab.run([Lab.markdnsBinary, "accounting", "--config", lab.path("policy.toml")]).stdout
        #expect(table.split(separator: "\n").contains { $0.hasPrefix("0x10") && $0.contains("alice") && $0.hasSuffix("\(10 * 1028 + 5 * 228)") }, "\(table)")
    }

    @Test("With accounting off it warns, and --enable-acct turns it on")
    func warnsWhenOff() throws {
        let lab = try Lab("acctoff")
        defer { lab.close() }
        try lab.loadNftRules(clients: [:])
        try lab.exec(["sysctl", "-qw", "net.netfilter.nf_conntrack_acct=0"])
        let off = lab.run([Lab.markdnsBinary, "accounting"])
        #expect(off.status == 0 && off.stderr.contains("nf_conntrack_acct is 0"), "\(off.stderr)")
        let on = lab.run([Lab.markdnsBinary, "accounting", "--enable-acct"])
        #expect(on.stderr.contains("set net.netfilter.nf_conntrack_acct=1"), "\(on.stderr)")
        #expect(lab.run(["sysctl", "-n", "net.netfilter.nf_conntrack_acct"]).stdout.hasPrefix("1"))
    }
}
}
