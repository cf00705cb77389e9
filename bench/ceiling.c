// bench/ceiling.c — the least work a marking DNS forwarder can do, as a yardstick for
// bench/forward.sh (CEILING=1). Not part of markdns and not a usable server: one thread,
// no validation, no timeouts, no cache, IDs reused, IPv4 only.
//
//   ceiling LISTEN_IP PORT UPSTREAM_IP PORT relay   forward every query; the upstream
//                                                     socket carries the query's packet mark
//                                                     (SO_RCVMARK -> SO_MARK), one socket per mark
//   ceiling LISTEN_IP PORT - - answer               answer every query itself (A 192.0.2.1):
//                                                     the load generator's own ceiling
//
// Batches of 64 with recvmmsg/sendmmsg, epoll, nothing else.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define BATCH 64
#define SLOT 4096
#define MAX_MARKS 16
#ifndef SO_RCVMARK
#define SO_RCVMARK 75
#endif

struct pending { struct sockaddr_in client; uint16_t id; uint8_t used; };
static struct pending table[65536];
static char in[BATCH][SLOT], ctl[BATCH][64];
static struct sockaddr_in from[BATCH];
static struct mmsghdr msgs[BATCH], out[MAX_MARKS + 1][BATCH];
static struct iovec iov[BATCH], oiov[BATCH];
static struct sockaddr_in oaddr[BATCH];
static int nout[MAX_MARKS + 1], nslots;
static uint32_t marks[MAX_MARKS];
static int upfd[MAX_MARKS], nmarks;
static struct sockaddr_in upstream;
static int ep;

static int upstream_for(uint32_t mark) {
    for (int i = 0; i < nmarks; i++) if (marks[i] == mark) return i;
    if (nmarks == MAX_MARKS) return -1;
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    if (mark) setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof mark);
    if (connect(fd, (struct sockaddr *)&upstream, sizeof upstream) != 0) { perror("connect"); exit(1); }
    struct epoll_event e = { .events = EPOLLIN, .data.fd = fd };
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
    marks[nmarks] = mark; upfd[nmarks] = fd;
    return nmarks++;
}

static void queue(int group, void *bytes, size_t len, struct sockaddr_in *to) {
    struct mmsghdr *m = &out[group][nout[group]++];
    int i = nslots++;  // iovec and address slots are shared by all groups of a batch
    memset(m, 0, sizeof *m);
    oiov[i] = (struct iovec){ bytes, len };
    m->msg_hdr.msg_iov = &oiov[i];
    m->msg_hdr.msg_iovlen = 1;
    if (to) { oaddr[i] = *to; m->msg_hdr.msg_name = &oaddr[i]; m->msg_hdr.msg_namelen = sizeof *to; }
}

int main(int argc, char **argv) {
    if (argc != 6) { fprintf(stderr, "usage: ceiling LISTEN_IP PORT UPSTREAM_IP PORT relay|answer\n"); return 2; }
    int answer = strcmp(argv[5], "answer") == 0;
    int one = 1, ls = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in la = { .sin_family = AF_INET, .sin_port = htons(atoi(argv[2])) };
    inet_pton(AF_INET, argv[1], &la.sin_addr);
    setsockopt(ls, SOL_SOCKET, SO_RCVMARK, &one, sizeof one);
    if (bind(ls, (struct sockaddr *)&la, sizeof la) != 0) { perror("bind"); return 1; }
    if (!answer) {
        upstream = (struct sockaddr_in){ .sin_family = AF_INET, .sin_port = htons(atoi(argv[4])) };
        inet_pton(AF_INET, argv[3], &upstream.sin_addr);
    }
    ep = epoll_create1(0);
    struct epoll_event e = { .events = EPOLLIN, .data.fd = ls };
    epoll_ctl(ep, EPOLL_CTL_ADD, ls, &e);
    uint16_t next = 0;
    static const unsigned char rr[] = { 0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 1, 0x2c, 0, 4, 192, 0, 2, 1 };
    for (;;) {
        struct epoll_event ev[MAX_MARKS + 1];
        int n = epoll_wait(ep, ev, MAX_MARKS + 1, -1);
        for (int k = 0; k < n; k++) {
            int fd = ev[k].data.fd;
            for (int i = 0; i < BATCH; i++) {
                iov[i] = (struct iovec){ in[i], SLOT - sizeof rr };
                memset(&msgs[i].msg_hdr, 0, sizeof msgs[i].msg_hdr);
                msgs[i].msg_hdr.msg_iov = &iov[i];
                msgs[i].msg_hdr.msg_iovlen = 1;
                msgs[i].msg_hdr.msg_name = &from[i];
                msgs[i].msg_hdr.msg_namelen = sizeof from[i];
                msgs[i].msg_hdr.msg_control = ctl[i];
                msgs[i].msg_hdr.msg_controllen = sizeof ctl[i];
            }
            int got = recvmmsg(fd, msgs, BATCH, MSG_DONTWAIT, NULL);
            if (got <= 0) continue;
            memset(nout, 0, sizeof nout);
            nslots = 0;
            for (int i = 0; i < got; i++) {
                unsigned char *p = (unsigned char *)in[i];
                unsigned len = msgs[i].msg_len;
                if (len < 12) continue;
                if (fd == ls && answer) {
                    p[2] |= 0x80; p[3] = 0x80; p[6] = 0; p[7] = 1;
                    memcpy(p + len, rr, sizeof rr);
                    queue(0, p, len + sizeof rr, &from[i]);
                } else if (fd == ls) {
                    uint32_t mark = 0;
                    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msgs[i].msg_hdr); c; c = CMSG_NXTHDR(&msgs[i].msg_hdr, c))
                        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_MARK) memcpy(&mark, CMSG_DATA(c), 4);
                    int g = upstream_for(mark);
                    if (g < 0) continue;
                    uint16_t id = next++;
                    table[id] = (struct pending){ from[i], (uint16_t)(p[0] << 8 | p[1]), 1 };
                    p[0] = id >> 8; p[1] = id;
                    queue(g + 1, p, len, NULL);
                } else {
                    uint16_t id = p[0] << 8 | p[1];
                    if (!table[id].used) continue;
                    table[id].used = 0;
                    p[0] = table[id].id >> 8; p[1] = table[id].id;
                    queue(0, p, len, &table[id].client);
                }
            }
            if (nout[0]) sendmmsg(ls, out[0], nout[0], 0);
            for (int g = 0; g < nmarks; g++) if (nout[g + 1]) sendmmsg(upfd[g], out[g + 1], nout[g + 1], 0);
        }
    }
}
