// Per-thread capability and prctl helpers for dropping root (markdns serve --user).
//
// prctl() and syscall() are variadic, so Swift cannot call them; these wrappers can.
// Every call here acts on the CALLING THREAD only: the keep-caps flag, the bounding set,
// no_new_privs and the capability sets are per-thread attributes in Linux (glibc's
// setuid()/setgid()/setgroups() are the exception: glibc repeats them on every thread).
// All functions return 0 (or a non-negative value) on success and -errno on failure.
#ifndef MARKDNS_CPRIVILEGES_SHIM_H
#define MARKDNS_CPRIVILEGES_SHIM_H

#include <errno.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/capability.h>

#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_CLEAR_ALL 4
#endif
#ifndef PR_CAP_AMBIENT_RAISE
#define PR_CAP_AMBIENT_IS_SET 1
#define PR_CAP_AMBIENT_RAISE 2
#endif

/// PR_SET_KEEPCAPS: keep the permitted set when all UIDs leave 0 (setuid).
static inline int markdns_set_keepcaps(int on) {
    return prctl(PR_SET_KEEPCAPS, (unsigned long)on, 0UL, 0UL, 0UL) == 0 ? 0 : -errno;
}

/// PR_SET_NO_NEW_PRIVS: execve can never grant privileges again.
static inline int markdns_set_no_new_privs(void) {
    return prctl(PR_SET_NO_NEW_PRIVS, 1UL, 0UL, 0UL, 0UL) == 0 ? 0 : -errno;
}

/// Drops every capability not in `keep` (bit n = capability n) from the bounding set.
/// Needs CAP_SETPCAP, so it runs before the capabilities are narrowed.
static inline int markdns_limit_bounding_set(uint64_t keep) {
    for (unsigned long cap = 0; cap < 64; cap++) {
        if (keep & (1ULL << cap)) continue;
        int in = prctl(PR_CAPBSET_READ, cap, 0UL, 0UL, 0UL);
        if (in < 0) {
            if (errno == EINVAL) break;  // past the kernel's last capability
            return -errno;
        }
        if (in == 1 && prctl(PR_CAPBSET_DROP, cap, 0UL, 0UL, 0UL) != 0) return -errno;
    }
    return 0;
}

/// Empties the ambient set (it is per-thread and would survive an execve).
static inline int markdns_clear_ambient(void) {
    return prctl(PR_CAP_AMBIENT, (unsigned long)PR_CAP_AMBIENT_CLEAR_ALL, 0UL, 0UL, 0UL) == 0 ? 0 : -errno;
}

/// Adds capability `cap` to the ambient set: a program this thread runs (execve) gets it in
/// its permitted and effective sets. It must be permitted and inheritable already.
static inline int markdns_raise_ambient(unsigned long cap) {
    return prctl(PR_CAP_AMBIENT, (unsigned long)PR_CAP_AMBIENT_RAISE, cap, 0UL, 0UL) == 0 ? 0 : -errno;
}

/// 1 when `cap` is in the calling thread's ambient set, 0 when not, -errno on failure.
static inline int markdns_ambient_is_set(unsigned long cap) {
    int rc = prctl(PR_CAP_AMBIENT, (unsigned long)PR_CAP_AMBIENT_IS_SET, cap, 0UL, 0UL);
    return rc < 0 ? -errno : rc;
}

/// capset(2) on the calling thread: the permitted, effective and inheritable sets as given.
static inline int markdns_capset(uint64_t permitted, uint64_t effective, uint64_t inheritable) {
    struct __user_cap_header_struct header = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct data[2];
    data[0].permitted = (uint32_t)permitted;
    data[1].permitted = (uint32_t)(permitted >> 32);
    data[0].effective = (uint32_t)effective;
    data[1].effective = (uint32_t)(effective >> 32);
    data[0].inheritable = (uint32_t)inheritable;
    data[1].inheritable = (uint32_t)(inheritable >> 32);
    return syscall(SYS_capset, &header, data) == 0 ? 0 : -errno;
}

/// capget(2) on the calling thread.
static inline int markdns_capget(uint64_t *permitted, uint64_t *effective, uint64_t *inheritable) {
    struct __user_cap_header_struct header = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct data[2];
    if (syscall(SYS_capget, &header, data) != 0) return -errno;
    *permitted = (uint64_t)data[0].permitted | ((uint64_t)data[1].permitted << 32);
    *effective = (uint64_t)data[0].effective | ((uint64_t)data[1].effective << 32);
    *inheritable = (uint64_t)data[0].inheritable | ((uint64_t)data[1].inheritable << 32);
    return 0;
}

#endif
