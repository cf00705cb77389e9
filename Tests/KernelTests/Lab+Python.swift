import Foundation

extension Lab {
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
