import ArgumentParser
import MarkPolicy
import MarkSessions
import Sessions

#if canImport(Glibc)
import Glibc
#endif

struct Rules: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print (or load, or remove) the kernel ruleset a policy needs.",
        discussion: """
            Prints a complete nftables ruleset in `table inet markdns` (restore, mark by client \
            selector, save, save of markdns's own upstream flows), followed by `ip rule` hints for \
            marks with a routing table. --apply loads it atomically with `nft -f -` (replacing only \
            our table); --remove deletes our table. --format iptables --family ipv4|ipv6 prints the \
            input of iptables-restore or ip6tables-restore (chains MARKDNS_PRE and MARKDNS_OUT in \
            the mangle table); with --apply it loads both families (or the one given) with \
            --noflush, refilling our chains and adding the two jumps only when missing; with \
            --remove it deletes the jumps and our chains.
            """)

    enum Format: String, ExpressibleByArgument, CaseIterable { case nft, iptables }
    enum Family: String, ExpressibleByArgument, CaseIterable {
        case ipv4, ipv6
        var renderer: IptablesRenderer.Family { self == .ipv4 ? .ipv4 : .ipv6 }
    }

    @Option(name: .long, help: ArgumentHelp("Policy file (TOML).", valueName: "file"))
    var config: String?

    @Option(name: .long, help: "nft (default) or iptables.")
    var format: Format = .nft

    @Option(name: .long, help: "With --format iptables: ipv4 (iptables-restore) or ipv6 (ip6tables-restore). Required to print; --apply and --remove default to both.")
    var family: Family?

    @Flag(name: .long, help: "Load the ruleset now: nft -f (replacing only table inet markdns), or iptables-restore --noflush per family.")
    var apply = false

    @Flag(name: .long, help: "Delete table inet markdns, or (--format iptables) our jumps and chains.")
    var remove = false

    func validate() throws {
        if remove && apply { throw ValidationError("--apply and --remove exclude each other") }
        if !remove && config == nil { throw ValidationError("give --config FILE") }
        if family != nil && format != .iptables {
            throw ValidationError("--family applies to --format iptables only (nft's inet table holds both families)")
        }
        if format == .iptables && family == nil && !apply && !remove {
            throw ValidationError("--format iptables prints one family, the input of one tool: give --family ipv4 (iptables-restore) or --family ipv6 (ip6tables-restore)")
        }
    }

    private var families: [Family] { family.map { [$0] } ?? Family.allCases }

    func run() throws {
        if remove {
            switch format {
            case .nft: try check("nft", ["delete", "table", "inet", "markdns"])
            case .iptables: try families.forEach { try removeIptables($0.renderer) }
            }
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
            let text = NftablesRenderer.render(policy, source: config, sessions: try liveSessions(policy, required: apply))
            if apply {
                try check("nft", ["-f", "-"], input: text)
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
            if policy.hasSessions {
                FileHandleStderr.write("markdns: warning: sessions need the nft ruleset (session sets in table inet markdns); the iptables rules have none, so `markdns session login` will fail\n")
            }
            if !policy.sets.isEmpty {
                FileHandleStderr.write("markdns: note: [[set]] sets and their route-mark rules exist in the nft ruleset only (--format nft)\n")
            }
            if apply {
                try families.forEach { try applyIptables(policy, $0.renderer) }
            } else {
                print(IptablesRenderer.render(policy, family: family!.renderer, source: config), terminator: "")
            }
        }
    }

    /// The live sessions of the policy's session store, as map elements, so that loading the
    /// rules keeps every admitted client (expired ones are left out; `serve` prunes them).
    /// With --apply a store that cannot be read is an error (loading without it would log
    /// everyone out); printing warns and renders empty maps.
    private func liveSessions(_ policy: PolicyConfig, required: Bool) throws -> [KernelElement] {
        guard policy.hasSessions, access(policy.sessions.database, F_OK) == 0 else { return [] }
        do {
            let store = try SQLiteSessionStore(path: policy.sessions.database)
            var machine = SessionStateMachine(rules: policy.sessionRules)
            let now = Int64(time(nil))
            for a in machine.reapply(stored: try store.load(), rules: policy.sessionRules, now: now) {
                if case .kernelReplaceAll(let elements) = a { return elements }
            }
            return []
        } catch {
            FileHandleStderr.write("markdns: \(error)\(required ? "" : " (session maps printed empty)")\n")
            if required { throw ExitCode(1) }
            return []
        }
    }

    /// Refills our chains (the `:CHAIN` lines of a `--noflush` restore empty them) and adds
    /// each hook jump only if `-C` does not find it: running it twice changes nothing.
    private func applyIptables(_ policy: PolicyConfig, _ family: IptablesRenderer.Family) throws {
        let text = IptablesRenderer.render(policy, family: family, hooks: false, source: config)
        try check("\(family.command)-restore", ["--noflush"], input: text)
        for hook in IptablesRenderer.hooks
        where try ExternalCommand.run(family.command, hook.arguments("-C"), quiet: true) != 0 {
            try check(family.command, hook.arguments("-A"))
        }
        for line in RoutingHints.commands(policy) where line.hasPrefix(family == .ipv4 ? "ip rule" : "ip -6 rule") {
            print("# run once per boot: \(line)")
        }
    }

    /// Deletes every copy of our hook jumps, then our chains if they exist.
    private func removeIptables(_ family: IptablesRenderer.Family) throws {
        for hook in IptablesRenderer.hooks {
            while try ExternalCommand.run(family.command, hook.arguments("-C"), quiet: true) == 0 {
                try check(family.command, hook.arguments("-D"))
            }
        }
        for chain in IptablesRenderer.ownChains
        where try ExternalCommand.run(family.command, ["-t", "mangle", "-nL", chain], quiet: true) == 0 {
            try check(family.command, ["-t", "mangle", "-F", chain])
            try check(family.command, ["-t", "mangle", "-X", chain])
        }
    }

    private func check(_ tool: String, _ args: [String], input: String? = nil) throws {
        let status: Int32
        do {
            status = try ExternalCommand.run(tool, args, input: input)
        } catch {
            FileHandleStderr.write("markdns: \(error)\n")
            throw ExitCode(1)
        }
        if status != 0 {
            FileHandleStderr.write("markdns: \(tool) \(args.joined(separator: " ")) failed (exit \(status))\n")
            throw ExitCode(1)
        }
    }
}
