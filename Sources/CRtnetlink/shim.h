// The kernel's neighbour table (ARP and IPv6 neighbour discovery) through rtnetlink and
// libmnl: one RTM_GETNEIGH dump of every family, entries with a link-layer address only.
// For MAC client selectors and MAC sessions, which need each client MAC's IPv4 and IPv6
// addresses (/proc/net/arp has IPv4 only). Needs no capability.
#ifndef MARKDNS_CRTNETLINK_SHIM_H
#define MARKDNS_CRTNETLINK_SHIM_H

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/neighbour.h>
#include <libmnl/libmnl.h>

/// One neighbour: `family` AF_INET (addr[0..3]) or AF_INET6 (addr[0..15]), its MAC, and
/// its NUD_* state.
typedef struct markdns_neigh {
    uint8_t family;
    uint8_t addr[16];
    uint8_t lladdr[6];
    uint16_t state;
} markdns_neigh;

typedef struct markdns_neigh_ctx {
    markdns_neigh *out;
    int capacity;
    int n;
    int failed;
} markdns_neigh_ctx;

static int markdns_neigh_attr(const struct nlattr *attr, void *data) {
    const struct nlattr **tb = (const struct nlattr **)data;
    if (mnl_attr_type_valid(attr, NDA_MAX) < 0) return MNL_CB_OK;
    tb[mnl_attr_get_type(attr)] = attr;
    return MNL_CB_OK;
}

static int markdns_neigh_entry(const struct nlmsghdr *nlh, void *data) {
    markdns_neigh_ctx *ctx = (markdns_neigh_ctx *)data;
    if (nlh->nlmsg_type != RTM_NEWNEIGH) return MNL_CB_OK;
    if (mnl_nlmsg_get_payload_len(nlh) < sizeof(struct ndmsg)) return MNL_CB_OK;
    const struct ndmsg *nd = (const struct ndmsg *)mnl_nlmsg_get_payload(nlh);
    const struct nlattr *tb[NDA_MAX + 1];
    memset(tb, 0, sizeof tb);
    if (mnl_attr_parse(nlh, sizeof(*nd), markdns_neigh_attr, tb) < 0) return MNL_CB_OK;
    size_t alen = nd->ndm_family == AF_INET ? 4 : nd->ndm_family == AF_INET6 ? 16 : 0;
    if (alen == 0 || !tb[NDA_DST] || !tb[NDA_LLADDR]) return MNL_CB_OK;
    if (mnl_attr_get_payload_len(tb[NDA_DST]) != alen || mnl_attr_get_payload_len(tb[NDA_LLADDR]) != 6) return MNL_CB_OK;
    if (ctx->n == ctx->capacity) {
        int grown = ctx->capacity ? ctx->capacity * 2 : 64;
        markdns_neigh *more = (markdns_neigh *)realloc(ctx->out, (size_t)grown * sizeof *more);
        if (!more) { ctx->failed = 1; return MNL_CB_ERROR; }
        ctx->out = more;
        ctx->capacity = grown;
    }
    markdns_neigh *e = &ctx->out[ctx->n++];
    memset(e, 0, sizeof *e);
    e->family = nd->ndm_family;
    memcpy(e->addr, mnl_attr_get_payload(tb[NDA_DST]), alen);
    memcpy(e->lladdr, mnl_attr_get_payload(tb[NDA_LLADDR]), 6);
    e->state = nd->ndm_state;
    return MNL_CB_OK;
}

/// Dumps the neighbour table into a malloc'd array (`*out`, free it with free(); NULL when
/// empty). Returns the number of entries, or -errno (then nothing to free).
static inline int markdns_neigh_dump(markdns_neigh **out) {
    *out = NULL;
    struct mnl_socket *nl = mnl_socket_open(NETLINK_ROUTE);
    if (!nl) return -errno;
    if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
        int e = errno;
        mnl_socket_close(nl);
        return -e;
    }
    char buf[32768];  // MNL_SOCKET_DUMP_SIZE: a dump message is at most a page or 8 KB
    struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
    nlh->nlmsg_type = RTM_GETNEIGH;
    nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    unsigned int seq = (unsigned int)time(NULL);
    nlh->nlmsg_seq = seq;
    struct ndmsg *nd = (struct ndmsg *)mnl_nlmsg_put_extra_header(nlh, sizeof(struct ndmsg));
    nd->ndm_family = AF_UNSPEC;
    unsigned int portid = mnl_socket_get_portid(nl);
    if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) {
        int e = errno;
        mnl_socket_close(nl);
        return -e;
    }
    markdns_neigh_ctx ctx = { NULL, 0, 0, 0 };
    int rc = 0;
    for (;;) {
        ssize_t n = mnl_socket_recvfrom(nl, buf, sizeof buf);
        if (n < 0) { rc = -errno; break; }
        int r = mnl_cb_run(buf, (size_t)n, seq, portid, markdns_neigh_entry, &ctx);
        if (r < 0) { rc = -errno; break; }
        if (r == MNL_CB_STOP) break;
    }
    mnl_socket_close(nl);
    if (ctx.failed) rc = -ENOMEM;
    if (rc < 0) { free(ctx.out); return rc; }
    *out = ctx.out;
    return ctx.n;
}

#endif
