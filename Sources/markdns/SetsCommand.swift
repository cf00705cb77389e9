import ArgumentParser
import MarkPolicy

/// `markdns sets`: the members of the policy's `[[set]]` sets with their timeouts and the
/// time each has left, as the kernel has them (`nft list set`, the rare path).
struct SetsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sets",
        abstract: "List the members of the policy's [[set]] sets with their remaining timeouts.",
        discussion: """
            Runs `nft list set inet markdns NAME_v4` and `NAME_v6` for every [[set]] of the \
            policy: each element shows its timeout (max(TTL, timeout-min) when markdns last \
            wrote it) and `expires`, the time it has left. Exits 1 when a set is missing \
            (load the rules with `markdns rules --apply`).
            """)

    @Option(name: .long, help: ArgumentHelp("Policy file (TOML).", valueName: "file"))
    var config: String

    @Option(name: .long, help: ArgumentHelp("Only this [[set]].", valueName: "name"))
    var name: String?

    func run() throws {
        let policy: PolicyConfig
        do {
            policy = try PolicyLoading.load(config)
        } catch {
            FileHandleStderr.write("\(error.description)\n")
            throw ExitCode(1)
        }
        let sets = policy.sets.filter { name == nil || $0.name == name }
        if sets.isEmpty {
            FileHandleStderr.write(name.map { "markdns: the policy has no [[set]] named '\($0)'\n" } ?? "markdns: the policy has no [[set]]\n")
            throw ExitCode(1)
        }
        var failed = false
        for s in sets {
            for nft in [s.v4Name, s.v6Name] {
                let status: Int32
                do {
                    status = try ExternalCommand.run("nft", ["list", "set", "inet", "markdns", nft])
                } catch {
                    FileHandleStderr.write("markdns: \(error)\n")
                    throw ExitCode(1)
                }
                if status != 0 { failed = true }
            }
        }
        if failed { throw ExitCode(1) }
    }
}
