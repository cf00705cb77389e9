import Foundation

extension Lab {
    /// The counters of the `stats: key=value ...` line markdns logs when it stops (empty
    /// when there is none yet).
    func stats(log: String = "markdns.log") -> [String: Int] {
        guard let line = readLog(log).split(separator: "\n").last(where: { $0.contains("stats: ") }),
              let start = line.range(of: "stats: ")
        else { return [:] }
        var out: [String: Int] = [:]
        for pair in line[start.upperBound...].split(separator: " ") {
            let kv = pair.split(separator: "=", maxSplits: 1)
            if kv.count == 2, let v = Int(kv[1]) { out[String(kv[0])] = v }
        }
        return out
    }

    /// A python3 script (kept in the lab's directory) run inside the namespace in the
    /// background, its output in `<name>.log`.
    @discardableResult
    func spawnPython(_ name: String, _ source: String, args: [String] = []) throws -> ChildProcess {
        try source.write(toFile: path("\(name).py"), atomically: true, encoding: .utf8)
        return try spawn(["python3", "-u", path("\(name).py")] + args, log: "\(name).log")
    }

    /// Queries from `client` over UDP and TCP while `busy` runs; returns (rounds, failures).
    func queryWhile(_ busy: ChildProcess, name: String, client: String, expect: String) -> (Int, [String]) {
        var rounds = 0
        var failures: [String] = []
        while busy.isRunning {
            for opt in ["+notcp", "+tcp"] {
                let r = dig(name, from: client, options: [opt, "+time=5"])  // generous: loaded machines
                if !r.stdout.contains(expect) { failures.append("\(opt): \(r.stdout)\(r.stderr)") }
            }
            rounds += 1
        }
        return (rounds, failures)
    }
}
