import ArgumentParser
import CBuildInfo

/// The one place the version is written; scripts/package.sh reads it from here.
enum BuildInfo {
    static let version = "0.1.0"
    static var commit: String { String(cString: markdns_build_commit()) }
    static var line: String { "markdns \(version) (commit \(commit))" }
}

struct Version: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the version and the commit markdns was built from (as --version does).")

    func run() { print(BuildInfo.line) }
}
