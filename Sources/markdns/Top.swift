import ArgumentParser
import FoundationEssentials
import MarkCore
import MarkStats

struct Top: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The heaviest clients per mark, from a running markdns's --metrics listener (/clients).")

    @Option(name: .long, help: ArgumentHelp("The --metrics address of the running markdns.", valueName: "addr:port"))
    var metrics: String

    @Option(name: .short, help: "Clients per mark.")
    var n: Int = 10

    @Flag(name: .long, help: "Print the JSON as served.")
    var json = false

    func validate() throws {
        _ = try Endpoint.parse(metrics)
        guard n > 0 else { throw ValidationError("-n must be positive") }
    }

    func run() throws {
        let endpoint = try Endpoint.parse(metrics)
        let body: [UInt8]
        do {
            body = try HTTPGet.fetch(endpoint, path: "/clients?n=\(n)")
        } catch {
            FileHandleStderr.write("markdns: \(error)\n")
            throw ExitCode(1)
        }
        if json {
            print(String(decoding: body, as: UTF8.self), terminator: "")
            return
        }
        guard let report = try? JSONDecoder().decode(ClientsReport.self, from: Data(body)) else {
            FileHandleStderr.write("markdns: \(metrics)/clients did not return a clients report\n")
            throw ExitCode(1)
        }
        print(report.table(), terminator: "")
    }
}
