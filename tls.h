/* BearSSL's TLS client, set up for webhooks: TLS 1.2, ECDHE with AES-GCM or
 * ChaCha20-Poly1305, P-256/X25519 key exchange (P-384 too), RSA and ECDSA certificates,
 * chains checked against trust anchors decoded once from a PEM bundle, the server name
 * checked against the certificate's DNS names, or, for an IP literal, its IP addresses
 * (no SNI then: RFC 6066 3). The engine does no I/O: the caller drives it (hook.c). */
#ifndef SANDBOX_TLS_H
#define SANDBOX_TLS_H
#include <bearssl.h>

/* Checks that the PEM file at path holds CERTIFICATE blocks and remembers the path (the
 * blocks are decoded later, by tls_load_step). Returns how many (0: the file is missing
 * or holds none; https is then refused), with a short reason in why when 0. */
int tls_init(const char *path, char *why, size_t cap);
/* Decodes a few more certificates of the bundle into trust anchors (one block, kept for
 * the agent's life). Call between loop rounds until it returns 1 (done; then at once). */
int tls_load_step(void);
/* https can work: certificates in the bundle (before loading), usable anchors (after). */
int tls_available(void);
/* Trust anchors decoded so far (0 until tls_load_step is done). */
int tls_anchors(void);

struct tls;
/* A client engine for one connection to host (a DNS name, or an IP literal without
 * brackets), reset and ready to handshake; tls_load_step must be done. NULL when out of
 * memory. */
struct tls *tls_new(const char *host);
br_ssl_engine_context *tls_engine(struct tls *t);
void tls_free(struct tls *t);
/* A short text for a BearSSL error code (br_ssl_engine_last_error). */
const char *tls_strerror(int err);

#endif
