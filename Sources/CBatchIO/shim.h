// Batched datagram I/O, epoll, eventfd and getrandom for the UDP data plane
// (RawUDPListener, DataPlaneLoop, SecureRandom).
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

// epoll: each descriptor is reported by its 64-bit token (struct epoll_event is packed on
// x86-64, so it stays on this side). Level-triggered read interest: the data-plane thread
// that waits is the one that reads, so nothing needs re-arming.
static inline int markdns_epoll_create(void) { return epoll_create1(EPOLL_CLOEXEC); }

static inline int markdns_epoll_watch(int ep, int fd, uint64_t token) {
    struct epoll_event ev = { .events = EPOLLIN, .data.u64 = token };
    return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
}

static inline int markdns_epoll_unwatch(int ep, int fd) {
    return epoll_ctl(ep, EPOLL_CTL_DEL, fd, 0);
}

/* Stream sockets (pooled upstream connections on the data-plane thread) also want to know
   when they can write (a connect finishing, a full send buffer draining): read interest,
   plus write interest while `writable` is set. */
static inline int markdns_epoll_watch_stream(int ep, int fd, uint64_t token, int writable) {
    struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP | (writable ? EPOLLOUT : 0), .data.u64 = token };
    return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
}

static inline int markdns_epoll_rewatch_stream(int ep, int fd, uint64_t token, int writable) {
    struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP | (writable ? EPOLLOUT : 0), .data.u64 = token };
    return epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
}

/* What a stream socket's event says, as markdns_epoll_wait reports it. */
enum { MARKDNS_EV_READ = 1, MARKDNS_EV_WRITE = 2, MARKDNS_EV_ERROR = 4 };

/* Waits up to `timeout_ms` (-1: no limit) for readiness; writes up to `max` (<= 64) tokens
   and, in `flags`, what each is ready for (MARKDNS_EV_*). Returns their count (0 on
   timeout), or -1. */
static inline int markdns_epoll_wait(int ep, uint64_t *tokens, uint8_t *flags, int max, int timeout_ms) {
    struct epoll_event events[64];
    if (max > 64) max = 64;
    int n = epoll_wait(ep, events, max, timeout_ms);
    for (int i = 0; i < n; i++) {
        uint32_t e = events[i].events;
        tokens[i] = events[i].data.u64;
        flags[i] = (uint8_t)(((e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP)) ? MARKDNS_EV_READ : 0)
                             | ((e & EPOLLOUT) ? MARKDNS_EV_WRITE : 0)
                             | ((e & EPOLLERR) ? MARKDNS_EV_ERROR : 0));
    }
    return n;
}

static inline int markdns_eventfd(void) { return eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK); }

/* CSPRNG bytes (blocking until the pool is initialised, as at boot); -1 on error. */
static inline long markdns_getrandom(void *buf, long len) { return getrandom(buf, (size_t)len, 0); }
#endif
