/* HS256 JSON Web Tokens (RFC 7519 / RFC 7515): verification and minting.
 * Pure: the caller passes `now`; no syscalls, no globals, no allocation. */
#ifndef SANDBOX_JWT_H
#define SANDBOX_JWT_H
#include <stddef.h>
#include <stdint.h>

#include <bearssl_hmac.h>

/* The HMAC key schedule, built once per secret (jwt_key_init) and reused per request. */
struct jwt_key {
    br_hmac_key_context kc;
};

/* What a verification decided. Only JWT_OK admits the request. */
enum jwt_result {
    JWT_OK = 0,
    JWT_MALFORMED,        /* not three base64url parts, bad base64url, header/claims not JSON objects */
    JWT_TOO_LONG,         /* longer than LIMIT_TOKEN_BYTES */
    JWT_BAD_ALG,          /* header alg is not exactly "HS256" (incl. "none"), or crit present */
    JWT_BAD_SIGNATURE,    /* HMAC mismatch */
    JWT_NO_EXP,           /* exp claim missing or not a number */
    JWT_EXPIRED,          /* now >= exp + leeway (RFC 7519 4.1.4: valid before exp) */
    JWT_NOT_YET_VALID,    /* now + leeway < nbf */
    JWT_ISSUED_IN_FUTURE, /* now + leeway < iat */
    JWT_BAD_CLAIM,        /* nbf/iat present but not a number */
    JWT_BAD_AUDIENCE,     /* policy aud set and not equal to (or listed in) aud */
    JWT_BAD_SUBJECT,      /* policy sub set and not equal to sub */
};

/* policy may be NULL: no aud/sub check and no leeway. */
struct jwt_policy {
    const char *audience;  /* NULL: not checked */
    const char *subject;   /* NULL: not checked */
    int64_t leeway;        /* seconds */
};

/* Builds the key context from the secret bytes. The secret itself may be wiped afterwards. */
void jwt_key_init(struct jwt_key *key, const void *secret, size_t len);

/* Verifies token[0..len) at time `now` (Unix seconds). The signature is checked over the
 * exact bytes "header.payload" before any claim is read; the comparison is constant-time.
 * Each part must be strict base64url: no padding, no other characters, zero unused bits.
 * The token is not NUL-terminated and not kept; nothing is allocated. Uses ~40 KiB of stack. */
enum jwt_result jwt_verify(const struct jwt_key *key, const char *token, size_t len,
                           int64_t now, const struct jwt_policy *policy);

/* HMAC-SHA256 of msg[0..len) under key into out (exposed for the test vectors). */
void jwt_mac(const struct jwt_key *key, const void *msg, size_t len, unsigned char out[32]);

/* A short reason for logs, e.g. "token expired" for JWT_EXPIRED. */
const char *jwt_result_str(enum jwt_result r);

/* Mints header {"alg":"HS256","typ":"JWT"} . claims . signature into out (NUL-terminated).
 * claims is a JSON object text used as is. Returns the token length, or -1 if cap is short
 * or the token would pass LIMIT_TOKEN_BYTES (jwt_verify would refuse it). */
int jwt_sign(const struct jwt_key *key, const char *claims, size_t claims_len, char *out,
             size_t cap);

#endif
