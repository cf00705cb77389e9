// Thin C helpers over libnetfilter_conntrack + libmnl for markdns.
//
// One `markdns_ct` holds a persistent, non-blocking NETLINK_NETFILTER socket and a
// preallocated request/response buffer. A lookup sends one IPCTNL_MSG_CT_GET and reads
// one reply: the kernel answers a GET in the sender's context, so the reply is already
// queued when sendto() returns and the non-blocking read never waits.
//
// The lookup is by the REPLY-direction tuple (src = our local address/port, dst = the
// client's address/port). That tuple is the same whether or not the query reached us
// through DNAT/REDIRECT, so a single GET finds the entry in both cases.
#ifndef MARKDNS_CNETFILTER_CONNTRACK_SHIM_H
#define MARKDNS_CNETFILTER_CONNTRACK_SHIM_H

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <linux/netlink.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <libmnl/libmnl.h>
#include <libnetfilter_conntrack/libnetfilter_conntrack.h>

#define MARKDNS_CT_BUFSIZE 8192

typedef struct markdns_ct {
    struct mnl_socket *nl;
    unsigned int portid;
    unsigned int seq;
    char buf[MARKDNS_CT_BUFSIZE];
} markdns_ct;

/// Opens the persistent socket. Returns NULL and sets errno on failure.
static inline markdns_ct *markdns_ct_open(void) {
    markdns_ct *ctx = (markdns_ct *)calloc(1, sizeof(markdns_ct));
    if (ctx == NULL) { errno = ENOMEM; return NULL; }
    ctx->nl = mnl_socket_open2(NETLINK_NETFILTER, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (ctx->nl == NULL) { int e = errno; free(ctx); errno = e; return NULL; }
    if (mnl_socket_bind(ctx->nl, 0, MNL_SOCKET_AUTOPID) < 0) {
        int e = errno; mnl_socket_close(ctx->nl); free(ctx); errno = e; return NULL;
    }
    ctx->portid = mnl_socket_get_portid(ctx->nl);
    ctx->seq = (unsigned int)getpid() ^ 0x5a5a0000u;
    return ctx;
}

static inline void markdns_ct_close(markdns_ct *ctx) {
    if (ctx == NULL) return;
    mnl_socket_close(ctx->nl);
    free(ctx);
}

static inline int markdns_ct_fd(const markdns_ct *ctx) { return mnl_socket_get_fd(ctx->nl); }

/// Only the connmark of a GET answer matters: read CTA_MARK straight from the top-level
/// attributes instead of parsing the whole entry (nfct_nlmsg_parse was 70% of a lookup).
typedef struct markdns__mark_state { uint32_t mark; int seen; } markdns__mark_state;

static inline int markdns__mark_attr_cb(const struct nlattr *attr, void *data) {
    markdns__mark_state *st = (markdns__mark_state *)data;
    if (mnl_attr_get_type(attr) == CTA_MARK) {
        if (mnl_attr_validate(attr, MNL_TYPE_U32) < 0) return MNL_CB_ERROR;
        st->mark = ntohl(mnl_attr_get_u32(attr));
        st->seen = 1;
    }
    return MNL_CB_OK;
}

static inline int markdns__mark_cb(const struct nlmsghdr *nlh, void *data) {
    if (mnl_nlmsg_get_payload_len(nlh) < sizeof(struct nfgenmsg)) return MNL_CB_ERROR;
    return mnl_attr_parse(nlh, sizeof(struct nfgenmsg), markdns__mark_attr_cb, data) < 0 ? MNL_CB_ERROR : MNL_CB_OK;
}

/// Looks up the conntrack entry whose reply tuple is (src -> dst, sport -> dport) and
/// returns its connmark.
///
/// family: AF_INET or AF_INET6; l4proto: IPPROTO_UDP or IPPROTO_TCP; src/dst: 4 or 16
/// bytes in network order; ports in host order.
/// Returns 1 with *mark set when found, 0 when there is no such entry (ENOENT), or a
/// negative errno on any other failure.
static inline int markdns_ct_get_mark_by_reply(markdns_ct *ctx, int family, uint8_t l4proto,
                                               const void *src, const void *dst,
                                               uint16_t sport, uint16_t dport,
                                               uint32_t *mark) {
    if (family != AF_INET && family != AF_INET6) return -EAFNOSUPPORT;
    // The request is built with libmnl: nfct_nlmsg_build() always emits CTA_TUPLE_ORIG
    // (and insists on ATTR_ORIG_L3PROTO), and the kernel prefers the original tuple when
    // both are present, so a reply-tuple GET cannot be expressed through it.
    struct nlmsghdr *nlh = mnl_nlmsg_put_header(ctx->buf);
    nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET;
    nlh->nlmsg_flags = NLM_F_REQUEST;  // no ACK: success is the data message alone
    unsigned int seq = ++ctx->seq;
    nlh->nlmsg_seq = seq;
    struct nfgenmsg *nfh = (struct nfgenmsg *)mnl_nlmsg_put_extra_header(nlh, sizeof(struct nfgenmsg));
    nfh->nfgen_family = (uint8_t)family;
    nfh->version = NFNETLINK_V0;
    nfh->res_id = 0;

    struct nlattr *tuple = mnl_attr_nest_start(nlh, CTA_TUPLE_REPLY);
    struct nlattr *ip = mnl_attr_nest_start(nlh, CTA_TUPLE_IP);
    if (family == AF_INET) {
        mnl_attr_put(nlh, CTA_IP_V4_SRC, 4, src);
        mnl_attr_put(nlh, CTA_IP_V4_DST, 4, dst);
    } else {
        mnl_attr_put(nlh, CTA_IP_V6_SRC, 16, src);
        mnl_attr_put(nlh, CTA_IP_V6_DST, 16, dst);
    }
    mnl_attr_nest_end(nlh, ip);
    struct nlattr *proto = mnl_attr_nest_start(nlh, CTA_TUPLE_PROTO);
    mnl_attr_put_u8(nlh, CTA_PROTO_NUM, l4proto);
    mnl_attr_put_u16(nlh, CTA_PROTO_SRC_PORT, htons(sport));
    mnl_attr_put_u16(nlh, CTA_PROTO_DST_PORT, htons(dport));
    mnl_attr_nest_end(nlh, proto);
    mnl_attr_nest_end(nlh, tuple);

    if (mnl_socket_sendto(ctx->nl, nlh, nlh->nlmsg_len) < 0) return -errno;

    markdns__mark_state st = { 0, 0 };
    // Read until the answer to this sequence number: a reply to an earlier request that
    // was given up on may still be queued ahead of ours (bounded).
    for (int attempt = 0; attempt < 8; attempt++) {
        ssize_t n = mnl_socket_recvfrom(ctx->nl, ctx->buf, sizeof(ctx->buf));
        if (n < 0) return -errno;
        int rc = mnl_cb_run(ctx->buf, (size_t)n, seq, ctx->portid, markdns__mark_cb, &st);
        if (rc < 0) {
            if (errno == ESRCH) continue;    // stale reply with an older sequence number
            if (errno == ENOENT) return 0;
            return errno > 0 ? -errno : -EPROTO;
        }
        // The kernel omits CTA_MARK when the mark is 0.
        *mark = st.seen ? st.mark : 0;
        return 1;
    }
    return -EAGAIN;
}

// ---------------------------------------------------------------------------------------
// Table dump for accounting (`markdns accounting`, the conntrack byte metrics).

/// One dumped entry: connmark, layer-4 protocol and the accounting counters (0 when
/// net.netfilter.nf_conntrack_acct was off when the entry was created).
typedef struct markdns_ct_entry {
    uint32_t mark;
    uint8_t l4proto;
    uint64_t orig_bytes, orig_packets, reply_bytes, reply_packets;
} markdns_ct_entry;

typedef void (*markdns_ct_dump_fn)(const markdns_ct_entry *entry, void *arg);

typedef struct markdns__dump_state {
    struct nf_conntrack *ct;
    markdns_ct_dump_fn fn;
    void *arg;
} markdns__dump_state;

static inline uint64_t markdns__u64(const struct nf_conntrack *ct, enum nf_conntrack_attr a) {
    return nfct_attr_is_set(ct, a) ? nfct_get_attr_u64(ct, a) : 0;
}

static inline int markdns__dump_cb(const struct nlmsghdr *nlh, void *data) {
    markdns__dump_state *st = (markdns__dump_state *)data;
    nfct_attr_unset(st->ct, ATTR_MARK);
    nfct_attr_unset(st->ct, ATTR_ORIG_COUNTER_BYTES);
    nfct_attr_unset(st->ct, ATTR_ORIG_COUNTER_PACKETS);
    nfct_attr_unset(st->ct, ATTR_REPL_COUNTER_BYTES);
    nfct_attr_unset(st->ct, ATTR_REPL_COUNTER_PACKETS);
    if (nfct_nlmsg_parse(nlh, st->ct) < 0) return MNL_CB_OK;  // skip what cannot be parsed
    markdns_ct_entry e;
    e.mark = nfct_attr_is_set(st->ct, ATTR_MARK) ? nfct_get_attr_u32(st->ct, ATTR_MARK) : 0;
    e.l4proto = nfct_attr_is_set(st->ct, ATTR_L4PROTO) ? nfct_get_attr_u8(st->ct, ATTR_L4PROTO) : 0;
    e.orig_bytes = markdns__u64(st->ct, ATTR_ORIG_COUNTER_BYTES);
    e.orig_packets = markdns__u64(st->ct, ATTR_ORIG_COUNTER_PACKETS);
    e.reply_bytes = markdns__u64(st->ct, ATTR_REPL_COUNTER_BYTES);
    e.reply_packets = markdns__u64(st->ct, ATTR_REPL_COUNTER_PACKETS);
    st->fn(&e, st->arg);
    return MNL_CB_OK;
}

/// Sends a ctnetlink dump request for `family` on `nl` and runs `cb` over every entry until
/// NLMSG_DONE. Returns 0, or a negative errno.
static inline int markdns__dump_run(struct mnl_socket *nl, char *buf, size_t size, int family, unsigned int seq,
                                    mnl_cb_t cb, void *data) {
    struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
    nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET;
    nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    nlh->nlmsg_seq = seq;
    struct nfgenmsg *nfh = (struct nfgenmsg *)mnl_nlmsg_put_extra_header(nlh, sizeof(struct nfgenmsg));
    nfh->nfgen_family = (uint8_t)family;
    nfh->version = NFNETLINK_V0;
    nfh->res_id = 0;
    if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) return -errno;
    unsigned int portid = mnl_socket_get_portid(nl);
    for (;;) {
        ssize_t n = mnl_socket_recvfrom(nl, buf, size);
        if (n < 0) return -errno;
        int rc = mnl_cb_run(buf, (size_t)n, seq, portid, cb, data);
        if (rc < 0) return errno > 0 ? -errno : -EPROTO;
        if (rc == MNL_CB_STOP) return 0;  // NLMSG_DONE
    }
}

/// Dumps the whole conntrack table (IPv4 and IPv6) of the caller's network namespace on a
/// socket of its own (blocking, 5 s receive timeout) and calls `fn` for each entry.
/// Returns 0 when the dump is complete, or a negative errno.
static inline int markdns_ct_dump(markdns_ct_dump_fn fn, void *arg) {
    struct mnl_socket *nl = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC);
    if (nl == NULL) return -errno;
    if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) { int e = errno; mnl_socket_close(nl); return -e; }
    struct timeval tv = { .tv_sec = 5, .tv_usec = 0 };
    setsockopt(mnl_socket_get_fd(nl), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    size_t size = 65536;  // at least MNL_SOCKET_DUMP_SIZE (32 KiB), which older libmnl lacks
    char *buf = (char *)malloc(size);
    markdns__dump_state st = { nfct_new(), fn, arg };
    if (buf == NULL || st.ct == NULL) {
        free(buf); if (st.ct) nfct_destroy(st.ct); mnl_socket_close(nl); return -ENOMEM;
    }
    int result = markdns__dump_run(nl, buf, size, AF_UNSPEC, (unsigned int)getpid() ^ 0x00a5a500u,
                                   markdns__dump_cb, &st);
    nfct_destroy(st.ct);
    free(buf);
    mnl_socket_close(nl);
    return result;
}

// ---------------------------------------------------------------------------------------
// Connmark update in place (sessions): every entry whose original source is one address
// gets `(mark & ~mask) ^ value` (the kernel's CTA_MARK + CTA_MARK_MASK arithmetic, as
// `conntrack -U --mark V/M`), by IPCTNL_MSG_CT_NEW without NLM_F_CREATE: nothing deleted.

typedef struct markdns__update_state {
    int family;
    const void *addr;
    uint32_t value, mask;
    struct mnl_socket *upd;
    unsigned int upd_portid, seq;
    char *ubuf;
    int updated;
    int error;
} markdns__update_state;

static inline int markdns__nested(const struct nlattr *a, int type, const struct nlattr **out) {
    const struct nlattr *n;
    mnl_attr_for_each_nested(n, a) {
        if (mnl_attr_get_type(n) == type) { *out = n; return 1; }
    }
    return 0;
}

static inline int markdns__update_cb(const struct nlmsghdr *nlh, void *data) {
    markdns__update_state *st = (markdns__update_state *)data;
    if (mnl_nlmsg_get_payload_len(nlh) < sizeof(struct nfgenmsg)) return MNL_CB_OK;
    const struct nfgenmsg *g = (const struct nfgenmsg *)mnl_nlmsg_get_payload(nlh);
    if (g->nfgen_family != st->family) return MNL_CB_OK;
    const struct nlattr *a, *orig = NULL, *zone = NULL;
    mnl_attr_for_each(a, nlh, sizeof(struct nfgenmsg)) {
        int t = mnl_attr_get_type(a);
        if (t == CTA_TUPLE_ORIG) orig = a;
        else if (t == CTA_ZONE) zone = a;
    }
    const struct nlattr *ip = NULL, *src = NULL;
    if (orig == NULL || !markdns__nested(orig, CTA_TUPLE_IP, &ip)) return MNL_CB_OK;
    int alen = st->family == AF_INET ? 4 : 16;
    if (!markdns__nested(ip, st->family == AF_INET ? CTA_IP_V4_SRC : CTA_IP_V6_SRC, &src)) return MNL_CB_OK;
    if (mnl_attr_get_payload_len(src) != (uint16_t)alen || memcmp(mnl_attr_get_payload(src), st->addr, (size_t)alen) != 0)
        return MNL_CB_OK;

    struct nlmsghdr *u = mnl_nlmsg_put_header(st->ubuf);
    u->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_NEW;
    u->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;   // no NLM_F_CREATE: update an existing entry only
    u->nlmsg_seq = ++st->seq;
    struct nfgenmsg *h = (struct nfgenmsg *)mnl_nlmsg_put_extra_header(u, sizeof(struct nfgenmsg));
    h->nfgen_family = (uint8_t)st->family;
    h->version = NFNETLINK_V0;
    h->res_id = 0;
    // The original tuple exactly as the dump gave it (TCP, UDP, ICMP: whatever it holds).
    mnl_attr_put(u, CTA_TUPLE_ORIG | NLA_F_NESTED, mnl_attr_get_payload_len(orig), mnl_attr_get_payload(orig));
    if (zone != NULL) mnl_attr_put(u, CTA_ZONE, mnl_attr_get_payload_len(zone), mnl_attr_get_payload(zone));
    mnl_attr_put_u32(u, CTA_MARK, htonl(st->value & st->mask));
    mnl_attr_put_u32(u, CTA_MARK_MASK, htonl(st->mask));
    if (mnl_socket_sendto(st->upd, u, u->nlmsg_len) < 0) { st->error = errno; return MNL_CB_OK; }
    ssize_t n = mnl_socket_recvfrom(st->upd, st->ubuf, MARKDNS_CT_BUFSIZE);
    if (n < 0) { st->error = errno; return MNL_CB_OK; }
    int rc = mnl_cb_run(st->ubuf, (size_t)n, st->seq, st->upd_portid, NULL, NULL);
    if (rc < 0) {
        // ENOENT: the entry ended between the dump and the update; nothing to do.
        if (errno != ENOENT) st->error = errno;
    } else {
        st->updated++;
    }
    return MNL_CB_OK;
}

/// Sets our bits (`mask`) of the connmark of every conntrack entry whose original source is
/// `addr` (4 or 16 bytes, network order) to `value & mask`. Returns the number of entries
/// updated, or a negative errno (the first failure; other entries are still tried).
static inline int markdns_ct_set_mark_by_source(int family, const void *addr, uint32_t value, uint32_t mask) {
    if (family != AF_INET && family != AF_INET6) return -EAFNOSUPPORT;
    struct mnl_socket *nl = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC);
    if (nl == NULL) return -errno;
    struct mnl_socket *upd = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC);
    if (upd == NULL) { int e = errno; mnl_socket_close(nl); return -e; }
    if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0 || mnl_socket_bind(upd, 0, MNL_SOCKET_AUTOPID) < 0) {
        int e = errno; mnl_socket_close(nl); mnl_socket_close(upd); return -e;
    }
    struct timeval tv = { .tv_sec = 5, .tv_usec = 0 };
    setsockopt(mnl_socket_get_fd(nl), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(mnl_socket_get_fd(upd), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    size_t size = 65536;
    char *buf = (char *)malloc(size);
    char *ubuf = (char *)malloc(MARKDNS_CT_BUFSIZE);
    if (buf == NULL || ubuf == NULL) { free(buf); free(ubuf); mnl_socket_close(nl); mnl_socket_close(upd); return -ENOMEM; }
    markdns__update_state st = { family, addr, value, mask, upd, mnl_socket_get_portid(upd),
                                 (unsigned int)getpid() ^ 0x0c0c0000u, ubuf, 0, 0 };
    int result = markdns__dump_run(nl, buf, size, family, (unsigned int)getpid() ^ 0x00c0c000u, markdns__update_cb, &st);
    free(buf); free(ubuf);
    mnl_socket_close(nl); mnl_socket_close(upd);
    if (result < 0) return result;
    return st.error ? -st.error : st.updated;
}

#endif
