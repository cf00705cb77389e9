#if canImport(Glibc)
import Glibc
#endif

/// Runs a system tool (nft, iptables-restore, ...) with posix_spawn and waits for it: no
/// Foundation `Process` (importing Foundation links ICU into the static binary).
enum ExternalCommand {
    struct NotFound: Error, CustomStringConvertible {
        let tool: String
        var description: String { "\(tool) not found in /usr/sbin, /sbin, /usr/bin, /bin or PATH" }
    }

    /// The first executable `tool` in the system directories, then in PATH.
    static func locate(_ tool: String) throws -> String {
        var dirs = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
        if let path = getenv("PATH") { dirs += String(cString: path).split(separator: ":").map(String.init) }
        for dir in dirs where access("\(dir)/\(tool)", X_OK) == 0 { return "\(dir)/\(tool)" }
        throw NotFound(tool: tool)
    }

    /// Runs `tool args...` with `input` on its standard input (or /dev/null), its output and
    /// errors going to ours. Returns its exit status (128 + signal when killed).
    @discardableResult
    static func run(_ tool: String, _ args: [String], input: String? = nil, quiet: Bool = false) throws -> Int32 {
        let path = try locate(tool)
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { throw SpawnError(tool: tool, code: errno) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, fds[0], 0)
        posix_spawn_file_actions_addclose(&actions, fds[1])
        if quiet {
            posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
            posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        }
        let argv = ([path] + args).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, path, &actions, nil, argv, environ)
        close(fds[0])
        guard rc == 0 else {
            close(fds[1])
            throw SpawnError(tool: tool, code: rc)
        }
        if let input {
            // A tool that exits early must not kill us with SIGPIPE: write() then fails instead.
            signal(SIGPIPE, SIG_IGN)
            var bytes = Array(input.utf8)
            var done = 0
            while done < bytes.count {
                let n = bytes.withUnsafeMutableBytes { write(fds[1], $0.baseAddress! + done, $0.count - done) }
                if n < 0 { if errno == EINTR { continue } else { break } }
                done += n
            }
        }
        close(fds[1])
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let signalled = status & 0x7f
        return signalled == 0 ? (status >> 8) & 0xff : 128 + signalled
    }

    struct SpawnError: Error, CustomStringConvertible {
        let tool: String
        let code: Int32
        var description: String { "cannot run \(tool): \(String(cString: strerror(code)))" }
    }
}
