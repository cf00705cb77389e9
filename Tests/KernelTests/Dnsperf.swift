import Foundation

/// dnsperf in a lab: load for the lifecycle and fault tests.
struct DnsperfResult: CustomStringConvertible {
    var sent = 0
    var completed = 0
    var lost = 0
    /// Response codes by name (NOERROR, SERVFAIL, ...).
    var rcodes: [String: Int] = [:]
    var text = ""

    var description: String { "sent \(sent) completed \(completed) lost \(lost) \(rcodes)" }

    /// Parses dnsperf's summary ("Queries sent: N", "Response codes: NOERROR 10 (100.00%), ...").
    static func parse(_ text: String) -> DnsperfResult {
        var r = DnsperfResult(text: text)
        func number(after key: String) -> Int {
            guard let range = text.range(of: key) else { return -1 }
            return Int(text[range.upperBound...].drop { $0 == " " }.prefix { $0.isNumber }) ?? -1
        }
        r.sent = number(after: "Queries sent:")
        r.completed = number(after: "Queries completed:")
        r.lost = number(after: "Queries lost:")
        if let line = text.split(separator: "\n").first(where: { $0.contains("Response codes:") }) {
            let words = line.split(separator: ":", maxSplits: 1).last?.split(separator: ",") ?? []
            for w in words {
                let parts = w.split(separator: " ")
                if parts.count >= 2, let n = Int(parts[1]) { r.rcodes[String(parts[0])] = n }
            }
        }
        return r
    }
}

extension Lab {
    /// Starts dnsperf from `client` against markdns (127.0.0.1:53) with `count` unique
    /// names under example.test; its summary goes to `log`.
    @discardableResult
    func spawnDnsperf(client: String, seconds: Int, qps: Int, outstanding: Int = 20, timeout: Int = 3,
                      count: Int = 20_000, tcp: Bool = false, log: String) throws -> ChildProcess {
        let file = path("\(log).queries")
        let names = (0..<count).map { "lq\($0).example.test A" }.joined(separator: "\n") + "\n"
        try names.write(toFile: file, atomically: true, encoding: .utf8)
        return try spawn(["dnsperf", "-s", "127.0.0.1", "-a", client, "-d", file, "-l", "\(seconds)",
                          "-Q", "\(qps)", "-q", "\(outstanding)", "-t", "\(timeout)", "-m", tcp ? "tcp" : "udp"],
                         log: log)
    }

    /// Waits for a dnsperf started by `spawnDnsperf` and parses its summary.
    func dnsperfResult(_ p: ChildProcess, log: String) -> DnsperfResult {
        p.wait()
        return DnsperfResult.parse(readLog(log))
    }
}
