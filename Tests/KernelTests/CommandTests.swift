import Foundation
import Testing

/// The subcommands a package's users run by hand or from the systemd unit, against the real
/// tools in a namespace: `rules --format iptables` (the input of one restore tool per family;
/// `--apply` idempotent; `--remove`) and `reload --pid` (the unit's ExecReload).
extension KernelSuite {
@Suite("Commands (kernel)", .serialized)
struct CommandTests {
    static let examples = ["accounting", "captive-portal", "multiwan"]
    static let tools = ["iptables", "ip6tables", "iptables-restore", "ip6tables-restore"]

    static func example(_ name: String) -> String {
        Lab.packageRoot.appendingPathComponent("conf/\(name).toml").path
    }

    /// Lines of `iptables -t mangle -S` (or ip6tables) equal to `rule`.
    static func count(_ lab: Lab, _ tool: String, _ rule: String) -> Int {
        lab.run([tool, "-t", "mangle", "-S"]).stdout.split(separator: "\n").filter { $0 == rule }.count
    }

    @Test("rules --format iptables --family: iptables-restore --test and ip6tables-restore --test accept it",
          .enabled(if: tools.allSatisfy { Lab.which($0) != nil }, "needs iptables and ip6tables (bash .ci/run installs them)"),
          arguments: examples)
    func iptablesOutputLoads(_ example: String) throws {
        let lab = try Lab("ipt-test")
        defer { lab.close() }
        for (family, tool) in [("ipv4", "iptables-restore"), ("ipv6", "ip6tables-restore")] {
            let rules = lab.run([Lab.markdnsBinary, "rules", "--config", Self.example(example), "--format", "iptables", "--family", family])
            #expect(rules.status == 0, "\(rules.stderr)")
            #expect(rules.stdout.contains("-A PREROUTING -j MARKDNS_PRE"))
            let test = lab.run([tool, "--test"], input: rules.stdout)
            #expect(test.status == 0, "\(example) \(family): \(tool) --test: \(test.stderr)")
        }
        let both = lab.run([Lab.markdnsBinary, "rules", "--config", Self.example(example), "--format", "iptables"])
        #expect(both.status != 0 && both.stderr.contains("--family"), "printing needs one family: \(both.stderr)")
    }

    @Test("rules --apply --format iptables twice: one jump per chain, both families; --remove deletes jumps and chains",
          .enabled(if: tools.allSatisfy { Lab.which($0) != nil }, "needs iptables and ip6tables (bash .ci/run installs them)"))
    func iptablesApplyIsIdempotent() throws {
        let lab = try Lab("ipt-apply")
        defer { lab.close() }
        let apply = [Lab.markdnsBinary, "rules", "--config", Self.example("accounting"), "--format", "iptables", "--apply"]
        try lab.exec(apply)
        let once = ["iptables", "ip6tables"].map { lab.run([$0, "-t", "mangle", "-S"]).stdout }
        try lab.exec(apply)
        for (i, tool) in ["iptables", "ip6tables"].enumerated() {
            #expect(Self.count(lab, tool, "-A PREROUTING -j MARKDNS_PRE") == 1, "\(tool): \(lab.run([tool, "-t", "mangle", "-S"]).stdout)")
            #expect(Self.count(lab, tool, "-A OUTPUT -j MARKDNS_OUT") == 1, "\(tool)")
            // Our chains were refilled, not appended to: the second load changed nothing.
            let twice = lab.run([tool, "-t", "mangle", "-S"]).stdout
            #expect(twice == once[i], "\(tool) after the second --apply:\n\(twice)\nafter the first:\n\(once[i])")
            #expect(twice.contains("-A MARKDNS_PRE -j CONNMARK --restore-mark"), "\(tool): \(twice)")
        }
        try lab.exec([Lab.markdnsBinary, "rules", "--format", "iptables", "--remove"])
        for tool in ["iptables", "ip6tables"] {
            let left = lab.run([tool, "-t", "mangle", "-S"]).stdout
            #expect(!left.contains("MARKDNS"), "\(tool) after --remove: \(left)")
        }
    }

    @Test("reload --pid reloads the policy (the unit's ExecReload); a PID that is not markdns is refused")
    func reloadCommand() throws {
        let lab = try Lab("reload-cmd")
        defer { lab.close() }
        let policy = """
            [server]
            listen = ["127.0.0.1:53"]
            [[pool]]
            name = "up"
            servers = ["127.0.0.2:5353"]
            """
        try policy.write(toFile: lab.path("policy.toml"), atomically: true, encoding: .utf8)
        let upstream = try lab.startUpstream(address: "127.0.0.2")
        let md = try lab.startMarkdns(["--config", lab.path("policy.toml")])
        #expect(lab.dig("late.example.test", from: "127.0.0.1", options: ["+short"]).stdout.contains("192.0.2.7"))

        try (policy + "\n[local]\nrecords = [\"late.example.test A 192.0.2.77\"]\n")
            .write(toFile: lab.path("policy.toml"), atomically: true, encoding: .utf8)
        try lab.exec([Lab.markdnsBinary, "reload", "--pid", "\(md.pid)"])
        try lab.waitForLog("markdns.log", contains: "reloaded policy")
        #expect(lab.dig("late.example.test", from: "127.0.0.1", options: ["+short"]).stdout.contains("192.0.2.77"))

        let wrong = lab.run([Lab.markdnsBinary, "reload", "--pid", "\(upstream.pid)"])
        #expect(wrong.status == 1 && wrong.stderr.contains("not markdns"), "\(wrong.stderr)")
        #expect(upstream.isRunning, "the upstream was not signalled")
        let gone = lab.run([Lab.markdnsBinary, "reload", "--pid", "999999999"])
        #expect(gone.status == 1 && gone.stderr.contains("cannot signal"), "\(gone.stderr)")
        #expect(md.isRunning)
    }
}
}
