/* BearSSL's TLS client, set up for webhooks: TLS 1.2, ECDHE with AES-GCM or
 * ChaCha20-Poly1305, P-256/X25519 key exchange (P-384 too), RSA and ECDSA certificates,
 * chains checked against trust anchors decoded once from a PEM bundle, the server name
 * checked against the certificate's DNS names, or, for an IP literal, its IP addresses
 * (no SNI then: RFC 6066 3). The engine does no I/O: the caller drives it (hook.c). */
#ifndef SANDBOX_TLS_H
#define SANDBOX_TLS_H
#include <bearssl.h>

/* Decodes the CERTIFICATE blocks of the PEM file at path into trust anchors, kept in one
 * block for the agent's life. Returns how many (0: the file is missing or holds none
 * usable; https is then refused), and a short reason in why when 0. */
int tls_init(const char *path, char *why, size_t cap);
/* Trust anchors loaded (0: no https). */
int tls_anchors(void);

struct tls;
/* A client engine for one connection to host (a DNS name, or an IP literal without
 * brackets), reset and ready to handshake. NULL when out of memory. */
struct tls *tls_new(const char *host);
br_ssl_engine_context *tls_engine(struct tls *t);
void tls_free(struct tls *t);
/* A short text for a BearSSL error code (br_ssl_engine_last_error). */
const char *tls_strerror(int err);

#endif
