// Thin C helpers over libnftnl + libmnl for markdns's `[[set]]` writes.
//
// One `markdns_nft` holds a persistent, non-blocking NETLINK_NETFILTER socket. A write is
// one nfnetlink batch (BATCH_BEGIN, NEWSETELEM, DELSETELEM, NEWSETELEM, BATCH_END) for one
// set of `table inet markdns`: the first NEWSETELEM makes sure every element exists (it
// is not an error for one to exist: no NLM_F_EXCL), the DELSETELEM and second NEWSETELEM
// replace them with fresh timeouts in the same transaction, so a refresh works on kernels
// before 6.10 too (which ignore the timeout of an element that exists). Every message
// asks for an ack; the kernel handles a batch in the sender's context, so the acks are
// queued before sendto() returns.
#ifndef MARKDNS_CNFTNL_SHIM_H
#define MARKDNS_CNFTNL_SHIM_H

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <linux/netlink.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nf_tables.h>
#include <libmnl/libmnl.h>
#include <libnftnl/common.h>
#include <libnftnl/set.h>

/// Messages in a batch besides BEGIN and END.
#define MARKDNS_NFT_MESSAGES 3
/// Upper bound of one element's bytes in a message (nest, key nest, 16-byte key, timeout).
#define MARKDNS_NFT_ELEM_BYTES 64
#define MARKDNS_NFT_MSG_OVERHEAD 256

typedef struct markdns_nft {
    struct mnl_socket *nl;
    unsigned int portid;
} markdns_nft;

/// Opens the socket. Returns NULL and sets errno on failure.
static inline markdns_nft *markdns_nft_open(void) {
    markdns_nft *ctx = (markdns_nft *)calloc(1, sizeof(markdns_nft));
    if (ctx == NULL) { errno = ENOMEM; return NULL; }
    ctx->nl = mnl_socket_open2(NETLINK_NETFILTER, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (ctx->nl == NULL) { int e = errno; free(ctx); errno = e; return NULL; }
    if (mnl_socket_bind(ctx->nl, 0, MNL_SOCKET_AUTOPID) < 0) {
        int e = errno; mnl_socket_close(ctx->nl); free(ctx); errno = e; return NULL;
    }
    ctx->portid = mnl_socket_get_portid(ctx->nl);
    return ctx;
}

static inline void markdns_nft_close(markdns_nft *ctx) {
    if (ctx == NULL) return;
    mnl_socket_close(ctx->nl);
    free(ctx);
}

static inline int markdns_nft_fd(const markdns_nft *ctx) { return mnl_socket_get_fd(ctx->nl); }

/// Bytes a batch of `count` elements needs at most.
static inline size_t markdns_nft_batch_bound(uint32_t count) {
    return 2 * MNL_NLMSG_HDRLEN + 64
        + MARKDNS_NFT_MESSAGES * (MARKDNS_NFT_MSG_OVERHEAD + (size_t)count * MARKDNS_NFT_ELEM_BYTES);
}

static inline struct nftnl_set *markdns__set(const char *table, const char *set, const uint8_t *keys,
                                             uint32_t keylen, const uint64_t *timeouts_ms, uint32_t count) {
    struct nftnl_set *s = nftnl_set_alloc();
    if (s == NULL) return NULL;
    nftnl_set_set_str(s, NFTNL_SET_TABLE, table);
    nftnl_set_set_str(s, NFTNL_SET_NAME, set);
    for (uint32_t i = 0; i < count; i++) {
        struct nftnl_set_elem *e = nftnl_set_elem_alloc();
        if (e == NULL) { nftnl_set_free(s); return NULL; }
        nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, keys + (size_t)i * keylen, keylen);
        if (timeouts_ms != NULL) nftnl_set_elem_set_u64(e, NFTNL_SET_ELEM_TIMEOUT, timeouts_ms[i]);
        nftnl_set_elem_add(s, e);
    }
    return s;
}

/// Encodes the batch for `count` elements of `set` (keys of `keylen` bytes back to back,
/// timeouts in ms) into `buf` (at least `markdns_nft_batch_bound(count)` bytes), with
/// sequence numbers seq (BEGIN) to seq + MARKDNS_NFT_MESSAGES + 1 (END). Returns the
/// length, or -1 (errno ENOMEM, or EMSGSIZE when `cap` is too small).
static inline long markdns_nft_encode(char *buf, size_t cap, uint32_t seq, const char *table, const char *set,
                                      const uint8_t *keys, uint32_t keylen, const uint64_t *timeouts_ms,
                                      uint32_t count) {
    if (cap < markdns_nft_batch_bound(count)) { errno = EMSGSIZE; return -1; }
    struct nftnl_set *with_timeouts = markdns__set(table, set, keys, keylen, timeouts_ms, count);
    struct nftnl_set *keys_only = markdns__set(table, set, keys, keylen, NULL, count);
    if (with_timeouts == NULL || keys_only == NULL) {
        if (with_timeouts) nftnl_set_free(with_timeouts);
        if (keys_only) nftnl_set_free(keys_only);
        errno = ENOMEM;
        return -1;
    }
    struct mnl_nlmsg_batch *batch = mnl_nlmsg_batch_start(buf, cap);
    nftnl_batch_begin((char *)mnl_nlmsg_batch_current(batch), seq);
    mnl_nlmsg_batch_next(batch);
    const uint16_t types[MARKDNS_NFT_MESSAGES] = { NFT_MSG_NEWSETELEM, NFT_MSG_DELSETELEM, NFT_MSG_NEWSETELEM };
    for (int m = 0; m < MARKDNS_NFT_MESSAGES; m++) {
        uint16_t flags = NLM_F_ACK | (types[m] == NFT_MSG_NEWSETELEM ? NLM_F_CREATE : 0);
        struct nlmsghdr *nlh = nftnl_nlmsg_build_hdr((char *)mnl_nlmsg_batch_current(batch), types[m],
                                                     NFPROTO_INET, flags, seq + 1 + m);
        nftnl_set_elems_nlmsg_build_payload(nlh, m == 1 ? keys_only : with_timeouts);
        mnl_nlmsg_batch_next(batch);
    }
    nftnl_batch_end((char *)mnl_nlmsg_batch_current(batch), seq + 1 + MARKDNS_NFT_MESSAGES);
    mnl_nlmsg_batch_next(batch);
    long len = (long)mnl_nlmsg_batch_size(batch);
    mnl_nlmsg_batch_stop(batch);
    nftnl_set_free(with_timeouts);
    nftnl_set_free(keys_only);
    return len;
}

/// Sends an encoded batch. Returns 0, or -errno.
static inline int markdns_nft_send(markdns_nft *ctx, const char *buf, size_t len) {
    ssize_t n = mnl_socket_sendto(ctx->nl, buf, len);
    if (n < 0) return -errno;
    return 0;
}

/// Reads the acks queued on the socket (without waiting): for each NLMSG_ERROR message,
/// its sequence number and error (0: ack, else a positive errno) go to `seqs`/`errs`, at
/// most `max`. Returns how many (0: a datagram without any), -EAGAIN when nothing is
/// queued, or another -errno.
static inline int markdns_nft_read_acks(markdns_nft *ctx, char *buf, size_t cap, uint32_t *seqs, int32_t *errs,
                                        int max) {
    ssize_t n = mnl_socket_recvfrom(ctx->nl, buf, cap);
    if (n < 0) return (errno == EWOULDBLOCK) ? -EAGAIN : -errno;
    int count = 0;
    const struct nlmsghdr *nlh = (const struct nlmsghdr *)buf;
    int left = (int)n;
    while (mnl_nlmsg_ok(nlh, left) && count < max) {
        if (nlh->nlmsg_type == NLMSG_ERROR && nlh->nlmsg_len >= MNL_NLMSG_HDRLEN + sizeof(struct nlmsgerr)) {
            const struct nlmsgerr *err = (const struct nlmsgerr *)mnl_nlmsg_get_payload(nlh);
            seqs[count] = nlh->nlmsg_seq;
            errs[count] = err->error < 0 ? -err->error : err->error;
            count++;
        }
        nlh = mnl_nlmsg_next(nlh, &left);
    }
    return count;
}

#endif
