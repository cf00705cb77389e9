import ArgumentParser

@main
struct Markdns: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "markdns",
        abstract: "A DNS forwarder that carries each client's connmark onto its upstream DNS flows.",
        version: BuildInfo.line,
        subcommands: [Serve.self, Check.self, Rules.self, SetsCommand.self, Reload.self, SessionCommand.self, Accounting.self, Top.self, Version.self],
        defaultSubcommand: Serve.self
    )
}
