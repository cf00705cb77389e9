import Foundation
import Testing

/// `serve --user`: root is dropped after binding, only CAP_NET_ADMIN stays (on every
/// thread that has any capability), and flows are still marked.
extension KernelSuite {
@Suite("Least privilege (kernel)", .serialized)
struct PrivilegeTests {
    /// CAP_NET_ADMIN (bit 12).
    static let netAdmin: UInt64 = 1 << 12

    /// The `Key:` lines of a /proc status file.
    static func status(_ path: String) -> [String: String] {
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        var out: [String: String] = [:]
        for line in text.split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            out[String(line[..<colon])] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return out
    }

    static func caps(_ s: [String: String], _ key: String) -> UInt64? { s[key].flatMap { UInt64($0, radix: 16) } }

    @Test("--user nobody: UID nobody, only CAP_NET_ADMIN, flows still marked over UDP and TCP")
    func dropToNobody() throws {
        let nobody = Lab.shell(["id", "-u", "nobody"])
        let nogroup = Lab.shell(["id", "-g", "nobody"])
        let uid = try #require(Int(nobody.stdout.trimmingCharacters(in: .whitespacesAndNewlines)), "no user nobody")
        let gid = try #require(Int(nogroup.stdout.trimmingCharacters(in: .whitespacesAndNewlines)))
        let lab = try Lab("privdrop")
        defer { lab.close() }
        try lab.loadNftRules(clients: ["127.0.0.10": 0x10])
        try lab.startUpstream(address: "127.0.0.2")
        let policy = lab.path("policy.toml")
        try "[[pool]]\nname = \"up\"\nservers = [\"127.0.0.2:5353\"]\ndefault = true\n"
            .write(toFile: policy, atomically: true, encoding: .utf8)
        // The start-up probe comes from 127.0.0.1 (unmarked); 0x10 sockets open only later.
        let md = try lab.startMarkdns(["--listen", "127.0.0.1:53", "--config", policy, "--user", "nobody"])
        lab.forgetUpstreamFlows()

        let main = Self.status("/proc/\(md.pid)/status")
        #expect(main["Uid"] == Array(repeating: "\(uid)", count: 4).joined(separator: "\t"), "\(main["Uid"] ?? "-")")
        #expect(main["Gid"] == Array(repeating: "\(gid)", count: 4).joined(separator: "\t"), "\(main["Gid"] ?? "-")")
        #expect(main["Groups"] == "", "supplementary groups left: \(main["Groups"] ?? "-")")
        #expect(Self.caps(main, "CapEff") == Self.netAdmin, "CapEff \(main["CapEff"] ?? "-")")
        #expect(Self.caps(main, "CapPrm") == Self.netAdmin, "CapPrm \(main["CapPrm"] ?? "-")")
        #expect(Self.caps(main, "CapInh") == 0 && Self.caps(main, "CapAmb") == 0)
        #expect(Self.caps(main, "CapBnd") == Self.netAdmin, "CapBnd \(main["CapBnd"] ?? "-")")
        #expect(main["NoNewPrivs"] == "1")

        // Every thread: the UID changed everywhere; none holds more than CAP_NET_ADMIN, and
        // the event loop thread (which sets SO_MARK and sends the ctnetlink GETs) holds it.
        let tasks = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(md.pid)/task")
        var loopThreads = 0
        for tid in tasks {
            let s = Self.status("/proc/\(md.pid)/task/\(tid)/status")
            #expect(s["Uid"]?.split(separator: "\t").allSatisfy { $0 == "\(uid)" } == true, "thread \(tid) \(s["Name"] ?? ""): Uid \(s["Uid"] ?? "-")")
            let eff = Self.caps(s, "CapEff") ?? .max, prm = Self.caps(s, "CapPrm") ?? .max
            #expect(eff & ~Self.netAdmin == 0 && prm & ~Self.netAdmin == 0, "thread \(tid) \(s["Name"] ?? ""): CapEff \(s["CapEff"] ?? "-") CapPrm \(s["CapPrm"] ?? "-")")
            if s["Name"]?.hasPrefix("NIO-ELT") == true {
                loopThreads += 1
                #expect(eff == Self.netAdmin, "event loop thread without CAP_NET_ADMIN: \(s["CapEff"] ?? "-")")
            }
        }
        #expect(loopThreads >= 1, "no event loop thread found among \(tasks.count) threads")

        // New upstream sockets (mark 0x10 has none yet) and ctnetlink lookups still work.
        for opt in ["+notcp", "+tcp"] {
            let r = lab.dig("priv\(opt.dropFirst()).example.test", from: "127.0.0.10", options: [opt])
            #expect(r.stdout.contains("192.0.2.7"), "\(opt): \(r.stdout)")
        }
        // The policy file is read again as nobody.
        md.signal(SIGHUP)
        try Lab.waitFor("the reload: \(lab.readLog("markdns.log"))") { lab.readLog("markdns.log").contains("reloaded policy") }
        let flows = lab.upstreamFlows(to: "127.0.0.2")
        #expect(Set(flows.map(\.proto)) == ["udp", "tcp"], "\(flows)")
        #expect(flows.allSatisfy { $0.mark == 0x10 }, "\(flows)")
        #expect(lab.stop(md) == 0, "\(lab.readLog("markdns.log"))")
        let log = lab.readLog("markdns.log")
        #expect(log.contains("running as nobody"), "\(log)")
        #expect(log.contains("marked=2"), "\(log)")
    }

    @Test("--user with an unknown user or group: one clear line, exit 1, nothing served")
    func unknownUser() throws {
        let lab = try Lab("privbad")
        defer { lab.close() }
        let r = lab.run([Lab.markdnsBinary, "--listen", "127.0.0.1:53", "--upstream", "127.0.0.2:5353",
                         "--user", "no-such-user-md"])
        #expect(r.status == 1 && r.stderr.contains("no such user 'no-such-user-md'"), "\(r.status) \(r.stderr)")
        let g = lab.run([Lab.markdnsBinary, "--listen", "127.0.0.1:53", "--upstream", "127.0.0.2:5353",
                         "--user", "nobody", "--group", "no-such-group-md"])
        #expect(g.status == 1 && g.stderr.contains("no such group 'no-such-group-md'"), "\(g.status) \(g.stderr)")
        let root = lab.run([Lab.markdnsBinary, "--listen", "127.0.0.1:53", "--upstream", "127.0.0.2:5353",
                            "--user", "root"])
        #expect(root.status == 1 && root.stderr.contains("is root"), "\(root.status) \(root.stderr)")
        // Not started as root (here: already nobody, with CAP_NET_ADMIN and CAP_NET_BIND_SERVICE).
        if Lab.which("setpriv") != nil {
            let caps = "+net_admin,+net_bind_service"
            let unprivileged = lab.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                                        "--inh-caps=\(caps)", "--ambient-caps=\(caps)", Lab.markdnsBinary,
                                        "--listen", "127.0.0.1:53", "--upstream", "127.0.0.2:5353", "--user", "nobody"])
            #expect(unprivileged.status == 1 && unprivileged.stderr.contains("--user needs markdns to start as root"),
                    "\(unprivileged.status) \(unprivileged.stderr)")
        }
    }
}
}
