import ArgumentParser
import Conntrack
import FoundationEssentials
import MarkCore
import MarkPolicy
import MarkStats

struct Accounting: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Bytes and packets per connmark across every conntrack flow (DNS and not), masked and named as in the policy.")

    @Option(name: .long, help: ArgumentHelp("Policy file (TOML) for the mask and the mark names.", valueName: "file"))
    var config: String?

    @Flag(name: .long, help: "Print JSON instead of a table.")
    var json = false

    @Flag(name: .long, help: "Set net.netfilter.nf_conntrack_acct=1 when it is off (counts flows created from then on).")
    var enableAcct = false

    func run() throws {
        let policy: PolicyConfig
        do {
            policy = try config.map { try PolicyLoading.load($0) } ?? PolicyConfig(pools: [])
        } catch {
            FileHandleStderr.write("\(error)\n")
            throw ExitCode(1)
        }
        switch ConntrackDump.accountingEnabled() {
        case false?:
            if enableAcct, ConntrackDump.enableAccounting() {
                FileHandleStderr.write("markdns: set net.netfilter.nf_conntrack_acct=1; flows created before now count 0 bytes\n")
            } else {
                FileHandleStderr.write("markdns: warning: net.netfilter.nf_conntrack_acct is 0, byte and packet counts are 0 (--enable-acct or sysctl -w net.netfilter.nf_conntrack_acct=1)\n")
            }
        case nil:
            FileHandleStderr.write("markdns: warning: cannot read net.netfilter.nf_conntrack_acct (is nf_conntrack loaded?)\n")
        case true?:
            break
        }
        let flows: [FlowCounters]
        do {
            flows = try ConntrackDump.flows()
        } catch {
            FileHandleStderr.write("markdns: \(error.description)\n")
            throw ExitCode(1)
        }
        let totals = MarkAccounting.totals(flows, policy: policy)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
            encoder.keyEncodingStrategy = .convertToSnakeCase
            print(String(decoding: try encoder.encode(totals), as: UTF8.self))
        } else {
            print(MarkAccounting.table(totals), terminator: "")
        }
    }
}
