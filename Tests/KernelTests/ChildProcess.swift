import Foundation

/// A child process started with posix_spawn and reaped with waitpid. (Foundation's
/// Process was seen to hang in waitUntilExit under the test runner, leaving zombies.)
/// Standard streams are files, never pipes, so nothing can block on a leaked pipe end.
final class ChildProcess: @unchecked Sendable {
    let pid: pid_t
    private var status: Int32?

    struct SpawnError: Error, CustomStringConvertible {
        let description: String
    }

    init(_ args: [String], stdin: String = "/dev/null", stdout: String, stderr: String) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, stdin, O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdout, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        if stderr == stdout {
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
        } else {
            posix_spawn_file_actions_addopen(&actions, 2, stderr, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        }
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        // The child starts with default signal handling and an empty mask.
        var none = sigset_t(), all = sigset_t()
        sigemptyset(&none)
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attr, &none)
        posix_spawnattr_setsigdefault(&attr, &all)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let cargs: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) } + [nil]
        defer { cargs.forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawnp(&pid, args[0], &actions, &attr, cargs, environ)
        guard rc == 0 else { throw SpawnError(description: "cannot start \(args[0]): \(String(cString: strerror(rc)))") }
        self.pid = pid
    }

    /// Non-blocking: reaps the child if it has exited.
    var isRunning: Bool {
        if status != nil { return false }
        var st: Int32 = 0
        let r = waitpid(pid, &st, WNOHANG)
        if r == pid { status = Self.decode(st); return false }
        return r == 0
    }

    @discardableResult
    func wait() -> Int32 {
        if let status { return status }
        var st: Int32 = 0
        while waitpid(pid, &st, 0) < 0 && errno == EINTR {}
        let s = Self.decode(st)
        status = s
        return s
    }

    func signal(_ sig: Int32) {
        if isRunning { kill(pid, sig) }
    }

    /// SIGTERM, then SIGKILL after `grace` seconds; returns the exit status.
    @discardableResult
    func stop(grace: Double = 5) -> Int32 {
        signal(SIGTERM)
        let deadline = Date().addingTimeInterval(grace)
        while isRunning && Date() < deadline { usleep(20_000) }
        if isRunning { kill(pid, SIGKILL) }
        return wait()
    }

    private static func decode(_ st: Int32) -> Int32 {
        // WIFEXITED / WEXITSTATUS / WTERMSIG by hand (macros are not imported).
        let sig = st & 0x7F
        return sig == 0 ? (st >> 8) & 0xFF : 128 + sig
    }
}
