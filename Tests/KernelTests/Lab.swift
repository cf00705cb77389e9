import Foundation
import Testing

/// All kernel suites nest in this one so that they run one at a time: labs share two
/// cores, and parallel labs would make timing-sensitive checks flaky.
@Suite("Kernel", .serialized, .enabled(if: kernelTestsEnabled, "needs root and netns"))
struct KernelSuite {}

/// Why kernel tests cannot run here, or nil when they can. Checked once.
let kernelSkipReason: String? = {
    if geteuid() != 0 { return "kernel tests need root (network namespaces, nft, conntrack); run as root" }
    for tool in ["ip", "nft", "conntrack", "dnsmasq", "dig"] where Lab.which(tool) == nil {
        return "kernel tests need '\(tool)' (bash .ci/run installs it)"
    }
    let probe = "mdprobe-\(getpid())"
    guard Lab.shell(["ip", "netns", "add", probe]).status == 0 else {
        return "cannot create a network namespace (ip netns add failed)"
    }
    _ = Lab.shell(["ip", "netns", "del", probe])
    return nil
}()

/// Prints the skip reason once, loudly, so a skipped kernel suite is never silent.
let kernelTestsEnabled: Bool = {
    if let reason = kernelSkipReason {
        FileHandle.standardError.write(Data("\n*** KernelTests SKIPPED: \(reason) ***\n\n".utf8))
        return false
    }
    return true
}()

struct CommandResult {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// A network namespace of its own with loopback up, the conf/ rules loaded and helpers to
/// run and spawn commands inside it. Everything it starts is stopped and the namespace is
/// deleted on `close()` (call it in a `defer`).
final class Lab {
    let name: String
    private var processes: [ChildProcess] = []
    private let tmp: URL
    private static let counter = Counter()

    /// Package root, from this file's path (Tests/KernelTests/Lab.swift).
    static let packageRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The markdns binary built next to the test bundle.
    static let markdnsBinary: String = {
        let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        var dir = exe.deletingLastPathComponent()
        // Linux: .build/<triple>/debug/markdnsPackageTests.xctest
        for _ in 0..<3 {
            let candidate = dir.appendingPathComponent("markdns").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        return packageRoot.appendingPathComponent(".build/debug/markdns").path
    }()

    /// `ipv6`: put fd6d::1, ::2, ::3, ::10, ::11, ::12 on loopback. Off by default: with a
    /// global IPv6 address and only loopback IPv4, getaddrinfo(AI_ADDRCONFIG) in tools such
    /// as dnsperf stops resolving IPv4 literals.
    init(_ label: String, ipv6: Bool = false) throws {
        name = "md-\(label.prefix(12))-\(getpid())-\(Lab.counter.next())"
        tmp = FileManager.default.temporaryDirectory.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
        try check(Lab.shell(["ip", "netns", "add", name]), "ip netns add")
        try exec(["ip", "link", "set", "lo", "up"])
        // Extra addresses for the IPv6 tests, on loopback inside this namespace only.
        for a in ipv6 ? ["fd6d::1", "fd6d::2", "fd6d::3", "fd6d::10", "fd6d::11", "fd6d::12"] : [] {
            try exec(["ip", "-6", "addr", "add", "\(a)/128", "dev", "lo", "nodad"])
        }
    }

    func close() {
        for p in processes { p.signal(SIGTERM) }
        for p in processes { p.stop(grace: 3) }
        _ = Lab.shell(["ip", "netns", "del", name])
        try? FileManager.default.removeItem(at: tmp)
    }

    func path(_ file: String) -> String { tmp.appendingPathComponent(file).path }

    // MARK: running things

    static func which(_ tool: String) -> String? {
        for dir in ["/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/local/bin"] {
            let p = "\(dir)/\(tool)"
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        return nil
    }

    /// Runs a command to completion, output captured through temporary files.
    @discardableResult
    static func shell(_ args: [String], input: String? = nil) -> CommandResult {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("lab-\(UUID().uuidString)").path
        let (outPath, errPath, inPath) = (base + ".out", base + ".err", base + ".in")
        defer { for p in [outPath, errPath, inPath] { unlink(p) } }
        _ = FileManager.default.createFile(atPath: inPath, contents: Data((input ?? "").utf8))
        do {
            let child = try ChildProcess(args, stdin: inPath, stdout: outPath, stderr: errPath)
            let status = child.wait()
            let o = (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? ""
            let e = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
            return CommandResult(status: status, stdout: o, stderr: e)
        } catch {
            return CommandResult(status: -1, stdout: "", stderr: "\(error)")
        }
    }

    /// Runs a command inside the namespace and returns its result whatever the status.
    @discardableResult
    func run(_ args: [String], input: String? = nil) -> CommandResult {
        Lab.shell(["ip", "netns", "exec", name] + args, input: input)
    }

    /// Runs a command inside the namespace and throws unless it exits 0.
    @discardableResult
    func exec(_ args: [String], input: String? = nil) throws -> CommandResult {
        try check(run(args, input: input), args.joined(separator: " "))
    }

    @discardableResult
    private func check(_ r: CommandResult, _ what: String) throws -> CommandResult {
        guard r.status == 0 else { throw LabError("\(what) failed (\(r.status)): \(r.stderr)\(r.stdout)") }
        return r
    }

    /// Starts a long-running command in the namespace; stdout+stderr go to a log file.
    @discardableResult
    func spawn(_ args: [String], log: String) throws -> ChildProcess {
        let p = try ChildProcess(["ip", "netns", "exec", name] + args, stdout: path(log), stderr: path(log))
        processes.append(p)
        return p
    }

    func readLog(_ log: String) -> String {
        (try? String(contentsOfFile: path(log), encoding: .utf8)) ?? ""
    }

    // MARK: the lab's parts

    /// Loads conf/nftables.conf and puts the given clients in its maps.
    func loadNftRules(clients: [String: UInt32]) throws {
        try exec(["nft", "-f", Lab.packageRoot.appendingPathComponent("conf/nftables.conf").path])
        try exec(["nft", "flush", "map", "inet", "markdns", "client_mark4"])
        try exec(["nft", "flush", "map", "inet", "markdns", "client_mark6"])
        for (client, mark) in clients {
            let map = client.contains(":") ? "client_mark6" : "client_mark4"
            try exec(["nft", "add", "element", "inet", "markdns", map,
                      "{ \(client) : 0x\(String(mark, radix: 16)) }"])
        }
    }

    /// A dnsmasq that answers example.test itself (no forwarding, no cache).
    @discardableResult
    func startUpstream(address: String, port: Int = 5353, answer: String = "192.0.2.7", extra: [String] = [],
                       log: String? = nil) throws -> ChildProcess {
        let bigTXT = (0..<12).map { _ in "\"" + String(repeating: "x", count: 100) + "\"" }.joined(separator: ",")
        let p = try spawn(["dnsmasq", "--keep-in-foreground", "--no-resolv", "--no-hosts", "--conf-file=/dev/null",
                           "--pid-file=", "--user=root", "--bind-interfaces", "--listen-address=\(address)",
                           "--port=\(port)", "--cache-size=0", "--log-facility=-",
                           "--address=/example.test/\(answer)", "--address=/example.test/2001:db8::7",
                           "--txt-record=big.example.test,\(bigTXT)"] + extra,
                          log: log ?? "dnsmasq-\(address)-\(port).log")
        try waitForDNS(server: address, port: port, expect: answer)
        return p
    }

    /// Starts markdns with the given arguments and waits until it answers.
    @discardableResult
    func startMarkdns(_ args: [String], probe: (server: String, port: Int)? = ("127.0.0.1", 53),
                      log: String = "markdns.log") throws -> ChildProcess {
        // Tests count upstream flows per query: no cache unless a test asks for one.
        let cache = args.contains("--cache-size") || args.first == "check" ? [] : ["--cache-size", "0"]
        let p = try spawn([Lab.markdnsBinary] + args + cache, log: log)
        if let probe { try waitForDNS(server: probe.server, port: probe.port, process: p, log: log) }
        return p
    }

    /// Stops a process with SIGTERM (SIGKILL after 5 s) and returns its exit status.
    @discardableResult
    func stop(_ p: ChildProcess) -> Int32 { p.stop() }

    func waitForDNS(server: String, port: Int, expect: String = "192.0.2.7", process: ChildProcess? = nil,
                    log: String? = nil) throws {
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            if let process, !process.isRunning {
                throw LabError("process exited early: \(log.map(readLog) ?? "")")
            }
            let r = run(["dig", "+time=1", "+tries=1", "+short", "-p", "\(port)", "@\(server)", "probe.example.test"])
            if r.status == 0 && r.stdout.contains(expect) { return }
            usleep(100_000)
        }
        throw LabError("no DNS answer from \(server)#\(port) within 10 s")
    }

    /// Waits until something accepts TCP connections on address:port (for servers that
    /// cannot answer a probe query yet, e.g. with every upstream down).
    func waitForListener(_ address: String = "127.0.0.1", port: Int = 53, process: ChildProcess? = nil,
                         log: String = "markdns.log") throws {
        for _ in 0..<100 {
            if run(["bash", "-c", "exec 3<>/dev/tcp/\(address)/\(port)"]).status == 0 { return }
            if let process, !process.isRunning { break }
            usleep(100_000)
        }
        throw LabError("nothing listens on \(address):\(port): \(readLog(log))")
    }

    /// Polls `condition` every 50 ms for up to `seconds`.
    static func waitFor(_ what: @autoclosure () -> String, seconds: Double = 5, _ condition: () -> Bool) throws {
        let deadline = Date().addingTimeInterval(seconds)
        while !condition() {
            guard Date() < deadline else { throw LabError("timed out waiting for \(what())") }
            usleep(50_000)
        }
    }

    /// dig inside the namespace; returns its output.
    func dig(_ name: String, server: String = "127.0.0.1", port: Int = 53, from source: String? = nil,
             type: String = "A", options: [String] = []) -> CommandResult {
        var args = ["dig", "+time=2", "+tries=1", "-p", "\(port)", "@\(server)"]
        if let source { args += ["-b", source] }
        return run(args + options + [name, type])
    }

    /// Packets counted by the named nft counter of `table` (inet family); -1 if absent.
    func nftCounter(table: String, _ name: String) -> Int {
        let text = run(["nft", "list", "counter", "inet", table, name]).stdout
        guard let p = text.range(of: "packets ") else { return -1 }
        return Int(text[p.upperBound...].prefix { $0.isNumber }) ?? -1
    }

    // MARK: conntrack

    struct Flow: CustomStringConvertible {
        var proto: String
        var src: String
        var dst: String
        var sport: Int
        var dport: Int
        var mark: UInt32
        var line: String
        var description: String { line }
    }

    /// Entries of the namespace's conntrack table.
    func flows() -> [Flow] {
        let r = run(["conntrack", "-L", "-o", "extended"])
        return r.stdout.split(separator: "\n").compactMap { Lab.parseFlow(String($0)) }
    }

    /// Flows to an upstream (destination address and port of the original direction).
    func upstreamFlows(to address: String, port: Int = 5353, proto: String? = nil) -> [Flow] {
        flows().filter { $0.dst == address && $0.dport == port && (proto == nil || $0.proto == proto) }
    }

    /// Deletes every conntrack entry to the upstream port, so the next check sees only new flows.
    func forgetUpstreamFlows(port: Int = 5353) {
        for proto in ["udp", "tcp"] {
            run(["conntrack", "-D", "-p", proto, "--orig-port-dst", "\(port)"])
        }
    }

    static func parseFlow(_ line: String) -> Flow? {
        let words = line.split(separator: " ").map(String.init)
        guard words.count > 4 else { return nil }
        let proto = words[2]
        func first(_ key: String) -> String? {
            words.first { $0.hasPrefix(key + "=") }.map { String($0.dropFirst(key.count + 1)) }
        }
        guard let src = first("src"), let dst = first("dst"), let sport = first("sport").flatMap({ Int($0) }),
              let dport = first("dport").flatMap({ Int($0) }) else { return nil }
        let mark = first("mark").flatMap { UInt32($0) } ?? 0
        return Flow(proto: proto, src: src, dst: dst, sport: sport, dport: dport, mark: mark, line: line)
    }
}

struct LabError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

final class Counter: @unchecked Sendable {
    private var value = 0
    private let lock = NSLock()
    func next() -> Int { lock.lock(); defer { lock.unlock() }; value += 1; return value }
}
