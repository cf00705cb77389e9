// SHA-256 of a certificate's SubjectPublicKeyInfo, for `tls-pin`: BoringSSL's one-shot
// SHA256() as swift-nio-ssl builds it. NIOSSL compiles BoringSSL with every symbol prefixed
// `CNIOBoringSSL_` and does not offer its C module as a product, so it is declared here and
// resolved at link time against the copy NIOSSL already links into the binary: one BoringSSL,
// no second copy (swift-crypto would bring its own, CCryptoBoringSSL), nothing vendored. If
// NIOSSL ever renames it, the link fails; nothing falls back.
#ifndef MARKDNS_CBORINGSSL_DIGEST_H
#define MARKDNS_CBORINGSSL_DIGEST_H

#include <stddef.h>
#include <stdint.h>

// crypto/fipsmodule/sha/sha256.c.inc: writes 32 bytes to `out` and returns it.
uint8_t *CNIOBoringSSL_SHA256(const uint8_t *data, size_t len, uint8_t out[32]);

#endif
