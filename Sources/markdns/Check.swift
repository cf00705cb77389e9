import ArgumentParser
import MarkPolicy

#if canImport(Glibc)
import Glibc
#endif

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Validate a policy file; errors print as file:line: key: reason.")

    @Option(name: .long, help: ArgumentHelp("Policy file (TOML).", valueName: "file"))
    var config: String

    func run() throws {
        do {
            let policy = try PolicyLoading.load(config)
            print("\(config): ok: \(policy.pools.count) pools, \(policy.marks.count) marks, \(policy.clients.count) clients, mask 0x\(String(policy.conntrack.mask, radix: 16)), on-missing \(policy.conntrack.onMissing.rawValue)")
        } catch {
            FileHandleStderr.write("\(error.description)\n")
            throw ExitCode(1)
        }
    }
}
