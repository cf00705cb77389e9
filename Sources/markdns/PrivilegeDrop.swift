import CPrivileges

#if canImport(Glibc)
import Glibc
#endif

/// Dropping root after start-up (`serve --user NAME [--group NAME]`): the process takes
/// the user's (or the given) group, no supplementary groups and the user's UID, and keeps
/// only CAP_NET_ADMIN, which it needs for as long as it runs (SO_MARK on every new upstream
/// socket, and each ctnetlink lookup is checked against the sending thread). Ports are
/// bound by then, so CAP_NET_BIND_SERVICE is not kept.
///
/// Threads: the event loop is already running when this happens (the listeners and the
/// ctnetlink socket are opened first). glibc's setgroups/setgid/setuid change the IDs of
/// every thread, but the keep-caps flag and the capability sets are per thread: a thread
/// that did not set keep-caps before the switch loses every capability, and one that did
/// keeps its permitted set with an empty effective set until it calls capset itself.
/// So: each event loop thread runs `prepareThread` and parks; the calling (main) thread
/// prepares itself and switches the identity once (`switchIdentity`); each thread then
/// runs `finishThread` before its loop serves again (Forwarder.withLoopsParked). No query
/// is handled in between, so no lookup or upstream socket ever meets a thread without
/// CAP_NET_ADMIN. Any other thread (the Captive Portal API's) ends with no capability at all.
///
/// Sessions run `nft -f -` (the session sets) from the session control loop: with
/// `inheritNetAdmin`, CAP_NET_ADMIN is also inheritable and ambient, so that child, and only
/// ever with that one capability (the bounding set), can still write the ruleset. Without
/// sessions nothing is inherited: a program markdns ran would have no capability at all.
struct PrivilegeDrop: Sendable {
    /// CAP_NET_ADMIN (linux/capability.h), the only capability kept.
    static let kept: UInt64 = 1 << 12

    let user: String
    let uid: uid_t
    let gid: gid_t

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// Looks the user (and group) up: names or numeric IDs. The group defaults to the
    /// user's primary group.
    static func resolve(user: String, group: String?) throws(Failure) -> PrivilegeDrop {
        guard geteuid() == 0 else {
            throw Failure(description: "--user needs markdns to start as root (it runs as uid \(geteuid()); under systemd use User=/DynamicUser= with AmbientCapabilities instead)")
        }
        guard let (uid, primary) = lookupUser(user) else { throw Failure(description: "--user: no such user '\(user)'") }
        var gid = primary
        if let group {
            guard let g = lookupGroup(group) else { throw Failure(description: "--group: no such group '\(group)'") }
            gid = g
        }
        guard uid != 0 else { throw Failure(description: "--user: '\(user)' is root; give an unprivileged user") }
        return PrivilegeDrop(user: user, uid: uid, gid: gid)
    }

    /// On each thread that keeps CAP_NET_ADMIN, while still root: bounding set narrowed,
    /// keep-caps on, no new privileges through execve.
    static func prepareThread() throws(Failure) {
        try check(markdns_limit_bounding_set(kept), "cannot narrow the capability bounding set")
        try check(markdns_set_keepcaps(1), "PR_SET_KEEPCAPS")
        try check(markdns_set_no_new_privs(), "PR_SET_NO_NEW_PRIVS")
    }

    /// Once, on any thread (glibc applies it to every thread of the process).
    func switchIdentity() throws(Failure) {
        if setgroups(0, nil) != 0 { throw Failure(description: "setgroups: \(errnoString())") }
        if setgid(gid) != 0 { throw Failure(description: "setgid(\(gid)): \(errnoString())") }
        if setuid(uid) != 0 { throw Failure(description: "setuid(\(uid)): \(errnoString())") }
        // Root must be gone for good.
        guard getuid() == uid, geteuid() == uid, getegid() == gid, setuid(0) != 0 else {
            throw Failure(description: "root could be regained after setuid(\(uid)); refusing to run")
        }
    }

    /// On each thread that prepared, after the switch: permitted = effective =
    /// {CAP_NET_ADMIN}; inheritable and ambient {CAP_NET_ADMIN} with `inheritNetAdmin`, else
    /// empty; keep-caps off again. Checked.
    static func finishThread(inheritNetAdmin: Bool) throws(Failure) {
        let inherit = inheritNetAdmin ? kept : 0
        try check(markdns_capset(kept, kept, inherit), "capset")
        try check(markdns_clear_ambient(), "clearing the ambient capabilities")
        if inheritNetAdmin { try check(markdns_raise_ambient(12), "raising CAP_NET_ADMIN in the ambient set") }
        try check(markdns_set_keepcaps(0), "PR_SET_KEEPCAPS")
        var permitted: UInt64 = 0, effective: UInt64 = 0, inheritable: UInt64 = 0
        try check(markdns_capget(&permitted, &effective, &inheritable), "capget")
        let ambient = markdns_ambient_is_set(12)
        guard permitted == kept, effective == kept, inheritable == inherit, ambient == (inheritNetAdmin ? 1 : 0) else {
            throw Failure(description: "capabilities after the drop are permitted=\(hex(permitted)) effective=\(hex(effective)) inheritable=\(hex(inheritable)) ambient CAP_NET_ADMIN=\(ambient), expected only CAP_NET_ADMIN\(inheritNetAdmin ? " (inheritable and ambient too)" : "")")
        }
    }

    private static func check(_ rc: Int32, _ what: String) throws(Failure) {
        guard rc >= 0 else { throw Failure(description: "\(what): \(String(cString: strerror(-rc)))") }
    }

    private static func hex(_ v: UInt64) -> String { "0x" + String(v, radix: 16) }

    private func errnoString() -> String { String(cString: strerror(errno)) }

    private static func lookupUser(_ name: String) -> (uid_t, gid_t)? {
        var entry = passwd()
        var result: UnsafeMutablePointer<passwd>? = nil
        var buffer = [CChar](repeating: 0, count: 16_384)
        let rc = UInt32(name).map { getpwuid_r($0, &entry, &buffer, buffer.count, &result) }
            ?? getpwnam_r(name, &entry, &buffer, buffer.count, &result)
        guard rc == 0, result != nil else { return nil }
        return (entry.pw_uid, entry.pw_gid)
    }

    private static func lookupGroup(_ name: String) -> gid_t? {
        var entry = group()
        var result: UnsafeMutablePointer<group>? = nil
        var buffer = [CChar](repeating: 0, count: 16_384)
        let rc = UInt32(name).map { getgrgid_r($0, &entry, &buffer, buffer.count, &result) }
            ?? getgrnam_r(name, &entry, &buffer, buffer.count, &result)
        guard rc == 0, result != nil else { return nil }
        return entry.gr_gid
    }
}
