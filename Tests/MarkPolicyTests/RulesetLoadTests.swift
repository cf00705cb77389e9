import Foundation
import Testing
@testable import MarkPolicy

/// The rendered rules load into the real kernel tools: `nft -c` and `nft -f` (twice: a
/// reload replaces our table), `iptables-restore --test` and a real `--noflush` load, and
/// the `ip rule` hints, each inside a throwaway network namespace so the host is untouched.
/// Skipped, with the reason shown, where there is no root or no tools.
@Suite("Rendered rules load in a network namespace", .serialized)
struct RulesetLoadTests {
    static let configs = ["accounting.toml", "captive-portal.toml", "multiwan.toml", "route-by-name.toml"]

    @Test(.enabled(if: Namespace.available, "needs root, nft, iptables-restore, ip6tables-restore and ip netns"),
          arguments: configs)
    func nftablesRulesetLoads(_ name: String) throws {
        let config = try Fixtures.loadExample(name)
        try Namespace.with { ns in
            let file = try Namespace.temp(NftablesRenderer.render(config, source: name), "nft")
            defer { try? FileManager.default.removeItem(atPath: file) }
            try ns.run(["nft", "-c", "-f", file])
            try ns.run(["nft", "-f", file])
            try ns.run(["nft", "-f", file])   // reloading replaces our table, no duplicates
            let listed = try ns.run(["nft", "list", "table", "inet", "markdns"])
            let clientRules = config.clients.count
            #expect(listed.contains("chain prerouting"))
            #expect(listed.components(separatedBy: "comment \"client ").count - 1 >= clientRules)
            let rules = try ns.run(["nft", "-a", "list", "chain", "inet", "markdns", "prerouting"])
            let once = NftablesRenderer.render(config).components(separatedBy: "comment \"client ").count
            #expect(rules.components(separatedBy: "comment \"client ").count == once, "no duplicate rules after a reload")
            try ns.run(["nft", "delete", "table", "inet", "markdns"])
        }
    }

    @Test(.enabled(if: Namespace.available, "needs root, nft, iptables-restore, ip6tables-restore and ip netns"),
          arguments: configs)
    func iptablesRulesLoad(_ name: String) throws {
        let config = try Fixtures.loadExample(name)
        try Namespace.with { ns in
            for family in [IptablesRenderer.Family.ipv4, .ipv6] {
                let file = try Namespace.temp(IptablesRenderer.render(config, family: family), "rules")
                let reload = try Namespace.temp(IptablesRenderer.render(config, family: family, hooks: false), "rules")
                defer { for f in [file, reload] { try? FileManager.default.removeItem(atPath: f) } }
                try ns.run(["\(family.command)-restore", "--test", file])
                try ns.run(["\(family.command)-restore", "--noflush", file])
                try ns.run(["\(family.command)-restore", "--noflush", reload])
                for cmd in IptablesRenderer.hookCommands(family: family) { try ns.run(["sh", "-c", cmd]) }
                let rules = try ns.run([family.command, "-t", "mangle", "-S"])
                #expect(rules.components(separatedBy: "-A PREROUTING -j MARKDNS_PRE").count == 2, "one hook jump")
                #expect(rules.contains("-A MARKDNS_PRE -j CONNMARK --restore-mark"))
            }
        }
    }

    @Test(.enabled(if: Namespace.available, "needs root, nft, iptables-restore, ip6tables-restore and ip netns"))
    func routingHintsLoad() throws {
        let config = try Fixtures.loadExample("multiwan.toml")
        try Namespace.with { ns in
            for cmd in RoutingHints.commands(config) { try ns.run(cmd.split(separator: " ").map(String.init)) }
            let v4 = try ns.run(["ip", "rule", "show"])
            #expect(v4.contains("fwmark 0x10000/0xff0000 lookup 101"))
            #expect(v4.contains("fwmark 0x20000/0xff0000 lookup 102"))
            #expect(try ns.run(["ip", "-6", "rule", "show"]).contains("fwmark 0x20000/0xff0000 lookup 102"))
            for cmd in RoutingHints.commands(config, delete: true) { try ns.run(cmd.split(separator: " ").map(String.init)) }
            #expect(!(try ns.run(["ip", "rule", "show"])).contains("fwmark"))
        }
    }
}

/// The rendered nftables rules do their mask arithmetic in the real kernel: a client
/// selector marks a new flow and the save keeps another user's connmark bits; a socket's
/// SO_MARK (markdns's upstream query) is saved under the mask and its other bits survive.
@Suite("Rendered rules mark flows in a network namespace", .serialized)
struct RulesetBehaviourTests {
    static let policy = """
    [conntrack]
    mask = 0xff00
    [[pool]]
    name = "p"
    servers = ["192.0.2.1"]
    [[mark]]
    value = 0x100
    name = "a"
    [[mark]]
    value = 0x200
    name = "b"
    [[client]]
    name = "c"
    match = ["127.0.0.2"]
    mark = "a"
    """

    // Another mark user: sets bit 0x5 on new connections from 127.0.0.2 before our chains;
    // counters in input show the marks the packets arrive with.
    static let probe = """
    table inet probe {
        chain early {
            type filter hook output priority -160; policy accept;
            ip saddr 127.0.0.2 ct mark set 0x5
        }
        chain in {
            type filter hook input priority 0; policy accept;
            ip saddr 127.0.0.2 ct mark 0x105 counter comment "client-ct"
            ip saddr 127.0.0.2 meta mark 0x100 counter comment "client-meta"
            ip saddr 127.0.0.3 ct mark 0x200 counter comment "own-ct"
            ip saddr 127.0.0.3 meta mark 0xab0205 counter comment "own-meta"
        }
    }
    """

    @Test(.enabled(if: Namespace.available && Namespace.find("python3") != nil,
                   "needs root, nft, ip netns and python3"))
    func maskedMarksInTheKernel() throws {
        let rules = NftablesRenderer.render(try Fixtures.load(Self.policy))
        try Namespace.with { ns in
            let file = try Namespace.temp(rules, "nft"), probe = try Namespace.temp(Self.probe, "nft")
            defer { for f in [file, probe] { try? FileManager.default.removeItem(atPath: f) } }
            try ns.run(["ip", "link", "set", "lo", "up"])
            try ns.run(["nft", "-f", file])
            try ns.run(["nft", "-f", probe])
            // A client flow (no SO_MARK) and an upstream flow with SO_MARK 0xab0205 (36 = SO_MARK).
            try ns.run(["python3", "-c", """
            import socket
            a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); a.bind(("127.0.0.2", 0))
            a.sendto(b"x", ("127.0.0.1", 9)); a.sendto(b"y", ("127.0.0.1", 9))
            b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); b.bind(("127.0.0.3", 0))
            b.setsockopt(socket.SOL_SOCKET, 36, 0xab0205)
            b.sendto(b"z", ("127.0.0.1", 9))
            """])
            let listed = try ns.run(["nft", "list", "chain", "inet", "probe", "in"])
            func packets(_ comment: String) -> String {
                guard let line = listed.split(separator: "\n").first(where: { $0.contains("comment \"\(comment)\"") }),
                      let r = line.range(of: "packets [0-9]+", options: .regularExpression) else { return "?" }
                return String(line[r])
            }
            #expect(packets("client-ct") == "packets 2", "selector mark 0x100 saved next to the other user's 0x5")
            #expect(packets("client-meta") == "packets 2", "packet mark set only in our bits")
            #expect(packets("own-ct") == "packets 1", "SO_MARK saved to the connection under the mask")
            #expect(packets("own-meta") == "packets 1", "SO_MARK's other bits survive the restore")
        }
    }
}

/// A throwaway network namespace, and the commands run in it.
struct Namespace {
    let name: String

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    static let tools = ["nft", "iptables-restore", "ip6tables-restore", "iptables", "ip6tables", "ip"]

    /// Root, the tools, and a namespace can really be made here.
    static let available: Bool = {
        guard getuid() == 0, tools.allSatisfy({ find($0) != nil }) else { return false }
        let probe = "polcheck-probe-\(getpid())"
        guard (try? exec(["ip", "netns", "add", probe])) != nil else { return false }
        _ = try? exec(["ip", "netns", "del", probe])
        return true
    }()

    static func with(_ body: (Namespace) throws -> Void) throws {
        let ns = Namespace(name: "polcheck-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try exec(["ip", "netns", "add", ns.name])
        defer { _ = try? exec(["ip", "netns", "del", ns.name]) }
        try body(ns)
    }

    @discardableResult
    func run(_ argv: [String]) throws -> String {
        try Namespace.exec(["ip", "netns", "exec", name] + argv)
    }

    static func temp(_ text: String, _ ext: String) throws -> String {
        let path = NSTemporaryDirectory() + "markpolicy-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).\(ext)"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    static func find(_ tool: String) -> String? {
        let dirs = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map(String.init)
            + ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
        return dirs.map { "\($0)/\(tool)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// Runs a command; throws with its output when it exits non-zero.
    @discardableResult
    static func exec(_ argv: [String]) throws -> String {
        guard let tool = find(argv[0]) else { throw Failure(description: "\(argv[0]) not found") }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: tool)
        p.arguments = Array(argv.dropFirst())
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        guard p.terminationStatus == 0 else {
            throw Failure(description: "\(argv.joined(separator: " ")) exited \(p.terminationStatus): \(text)")
        }
        return text
    }
}
