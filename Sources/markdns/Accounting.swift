import ArgumentParser
import Conntrack
import FoundationEssentials
import MarkCore
import MarkPolicy
import MarkSessions
import MarkStats
import Sessions

#if canImport(Glibc)
import Glibc
#endif

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
            print(perUser(policy, flows), terminator: "")
        }
    }

    /// Per user (range marks): the live sessions of the policy's session database and the
    /// flows of each one's own value. Empty without range marks or a readable database.
    /// (JSON per user: `markdns session list --json`, `/sessions` on the metrics listener.)
    private func perUser(_ policy: PolicyConfig, _ flows: [FlowCounters]) -> String {
        let ranges = Set(policy.marks.filter { $0.range != nil && $0.sessions }.map(\.name))
        guard !ranges.isEmpty, access(policy.sessions.database, R_OK) == 0,
              let store = try? SQLiteSessionStore(path: policy.sessions.database), let stored = try? store.load() else { return "" }
        let now = Int64(time(nil))
        let live = stored.filter { $0.isLive(at: now) && ranges.contains($0.markName) }.sorted { $0.client < $1.client }
        guard !live.isEmpty else { return "" }
        let traffic = JSONText.perUser(live, rangeMarks: ranges, flows: flows.map {
            (mark: $0.mark, bytes: $0.originalBytes + $0.replyBytes, packets: $0.originalPackets + $0.replyPackets)
        })
        var out = "\nPer user (sessions of range marks):\n"
        for s in live {
            let t = traffic[s.client.description] ?? JSONText.Traffic()
            out += "  \(s.user ?? "-")  \(s.markName) \("0x" + String(s.mark, radix: 16))  \(s.client)  bytes \(t.bytes)  packets \(t.packets)\n"
        }
        return out
    }
}
