// Naming the calling thread. prctl() is variadic, so Swift cannot call it, and glibc's
// pthread_setname_np needs _GNU_SOURCE, which Swift's Glibc module is built without.
#ifndef MARKDNS_CTHREADS_SHIM_H
#define MARKDNS_CTHREADS_SHIM_H

#include <errno.h>
#include <sys/prctl.h>

/// PR_SET_NAME: the calling thread's name as ps/top show it (at most 15 bytes are kept).
static inline int markdns_set_thread_name(const char *name) {
    return prctl(PR_SET_NAME, (unsigned long)name, 0UL, 0UL, 0UL) == 0 ? 0 : -errno;
}

#endif
