import ArgumentParser

#if canImport(Glibc)
import Glibc
#endif

/// `markdns reload --pid PID`: sends SIGHUP to a running markdns, which re-reads its policy
/// file (and hosts files). The systemd unit's ExecReload uses it, so reloading needs no
/// `kill` binary (on Debian /bin/kill is in procps, which a minimal system lacks).
struct Reload: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Ask a running markdns to reload its policy file (sends it SIGHUP).",
        discussion: """
            The process must be a markdns (its /proc/PID/comm says so). The reload itself happens \
            in the daemon: a bad file is logged there and the previous policy stays in force.
            """)

    @Option(name: .long, help: ArgumentHelp("Process ID of the markdns to reload (systemd: $MAINPID).", valueName: "pid"))
    var pid: Int32

    func validate() throws {
        guard pid > 0 else { throw ValidationError("--pid must be a positive process ID") }
    }

    func run() throws {
        // Refuse to signal anything but a markdns: a stale or wrong PID must not HUP another process.
        if let comm = try? PolicyLoading.readFile("/proc/\(pid)/comm") {
            let name = comm.split(separator: "\n").first.map(String.init) ?? ""
            guard name == "markdns" else {
                FileHandleStderr.write("markdns: process \(pid) is '\(name)', not markdns; not signalled\n")
                throw ExitCode(1)
            }
        }
        guard kill(pid_t(pid), SIGHUP) == 0 else {
            FileHandleStderr.write("markdns: cannot signal process \(pid): \(String(cString: strerror(errno)))\n")
            throw ExitCode(1)
        }
    }
}
