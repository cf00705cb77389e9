import ArgumentParser
import Foundation
import MarkPolicy

struct Rules: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print (or load, or remove) the kernel ruleset a policy needs.",
        discussion: """
            Prints a complete nftables ruleset in `table inet markdns` (restore, mark by client \
            selector, save, save of markdns's own upstream flows), followed by `ip rule` hints for \
            marks with a routing table. --apply loads it atomically with `nft -f -` (replacing only \
            our table); --remove deletes our table. --format iptables prints iptables-restore and \
            ip6tables-restore input instead.
            """)

    enum Format: String, ExpressibleByArgument { case nft, iptables }

    @Option(name: .long, help: ArgumentHelp("Policy file (TOML).", valueName: "file"))
    var config: String?

    @Option(name: .long, help: "nft (default) or iptables.")
    var format: Format = .nft

    @Flag(name: .long, help: "Load the nftables ruleset now (nft -f), replacing only table inet markdns.")
    var apply = false

    @Flag(name: .long, help: "Delete table inet markdns.")
    var remove = false

    func validate() throws {
        if remove && apply { throw ValidationError("--apply and --remove exclude each other") }
        if !remove && config == nil { throw ValidationError("give --config FILE") }
        if (apply || remove) && format != .nft { throw ValidationError("--apply/--remove work with --format nft") }
    }

    func run() throws {
        if remove {
            try nft(["delete", "table", "inet", "markdns"], input: nil)
            return
        }
        let policy: PolicyConfig
        do {
            policy = try PolicyLoading.load(config!)
        } catch {
            FileHandleStderr.write("\(error.description)\n")
            throw ExitCode(1)
        }
        switch format {
        case .nft:
            let text = NftablesRenderer.render(policy, source: config)
            if apply {
                try nft(["-f", "-"], input: text)
                for line in RoutingHints.commands(policy) { print("# run once per boot: \(line)") }
            } else {
                print(text, terminator: text.hasSuffix("\n") ? "" : "\n")
                let hints = RoutingHints.commands(policy)
                if !hints.isEmpty {
                    print("\n# Policy routing (not nftables; run once per boot):")
                    hints.forEach { print("#   \($0)") }
                }
            }
        case .iptables:
            print("# --- iptables-restore --noflush ---")
            print(IptablesRenderer.render(policy, family: .ipv4))
            print("# --- ip6tables-restore --noflush ---")
            print(IptablesRenderer.render(policy, family: .ipv6))
        }
    }

    private func nft(_ args: [String], input: String?) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: FileManager.default.isExecutableFile(atPath: "/usr/sbin/nft") ? "/usr/sbin/nft" : "/sbin/nft")
        p.arguments = args
        let pipe = Pipe()
        if input != nil { p.standardInput = pipe }
        do { try p.run() } catch {
            FileHandleStderr.write("markdns: cannot run nft: \(error)\n")
            throw ExitCode(1)
        }
        if let input {
            pipe.fileHandleForWriting.write(Data(input.utf8))
            try? pipe.fileHandleForWriting.close()
        }
        p.waitUntilExit()
        if p.terminationStatus != 0 {
            FileHandleStderr.write("markdns: nft \(args.joined(separator: " ")) failed (exit \(p.terminationStatus))\n")
            throw ExitCode(1)
        }
    }
}
