// Batched datagram I/O, one-shot epoll and getrandom for the UDP fast path
// (RawUDPListener, ReadinessNotifier, SecureRandom).
//
// Swift's Glibc module is built without _GNU_SOURCE, so it lacks recvmmsg/sendmmsg and
// struct mmsghdr. Defining _GNU_SOURCE here would make clang see two different definitions
// of the same system structs (fd_set, ...) in this module and in SwiftGlibc, a hard error
// on a clean build. So nothing is redefined: the GNU functions are declared with their
// glibc prototypes and the message header is our own struct of the same layout.
#ifndef MARKDNS_CBATCHIO_H
#define MARKDNS_CBATCHIO_H
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>

/* struct mmsghdr of <sys/socket.h> under _GNU_SOURCE: same members, same layout. */
typedef struct markdns_mmsghdr {
    struct msghdr msg_hdr;
    unsigned int msg_len;
} markdns_mmsghdr;

struct mmsghdr;
extern int recvmmsg(int fd, struct mmsghdr *vmessages, unsigned int vlen, int flags, struct timespec *tmo);
extern int sendmmsg(int fd, struct mmsghdr *vmessages, unsigned int vlen, int flags);

static inline int markdns_recvmmsg(int fd, markdns_mmsghdr *msgs, unsigned int n) {
    return recvmmsg(fd, (struct mmsghdr *)msgs, n, 0, 0);
}

static inline int markdns_sendmmsg(int fd, markdns_mmsghdr *msgs, unsigned int n) {
    return sendmmsg(fd, (struct mmsghdr *)msgs, n, 0);
}

// epoll with one-shot read interest; each descriptor is reported by its 64-bit token
// (struct epoll_event is packed on x86-64, so it stays on this side).
static inline int markdns_epoll_create(void) { return epoll_create1(EPOLL_CLOEXEC); }

static inline int markdns_epoll_watch(int ep, int fd, uint64_t token, int add) {
    struct epoll_event ev = { .events = EPOLLIN | EPOLLONESHOT, .data.u64 = token };
    return epoll_ctl(ep, add ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, fd, &ev);
}

static inline int markdns_epoll_watch_always(int ep, int fd, uint64_t token) {
    struct epoll_event ev = { .events = EPOLLIN, .data.u64 = token };
    return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
}

static inline int markdns_epoll_unwatch(int ep, int fd) {
    return epoll_ctl(ep, EPOLL_CTL_DEL, fd, 0);
}

/* Waits for readiness; writes up to `max` (<= 64) tokens. Returns their count, or -1. */
static inline int markdns_epoll_wait(int ep, uint64_t *tokens, int max) {
    struct epoll_event events[64];
    if (max > 64) max = 64;
    int n = epoll_wait(ep, events, max, -1);
    for (int i = 0; i < n; i++) tokens[i] = events[i].data.u64;
    return n;
}

static inline int markdns_eventfd(void) { return eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK); }

/* CSPRNG bytes (blocking until the pool is initialised, as at boot); -1 on error. */
static inline long markdns_getrandom(void *buf, long len) { return getrandom(buf, (size_t)len, 0); }
#endif
