/* The HS256 secret: loaded at start, rotated on SIGHUP, and the verification that knows about
 * the previous secret during a rotation. Reads files, never logs: every failure comes back as
 * a reason for the caller to print or log. The secret's bytes are wiped once the key
 * schedule is built; only struct jwt_key holds it. */
#ifndef SANDBOX_SECRET_H
#define SANDBOX_SECRET_H
#include <stddef.h>
#include <stdint.h>

#include "jwt.h"

/* The keys tokens are checked against. agent.c owns them; the request handlers read them
 * through their context (api.h). */
struct secret_keys {
    struct jwt_key key;
    int have_key;
    struct jwt_key prev_key;   /* the secret before the last rotation */
    int64_t prev_until_us;     /* prev_key admits tokens until then (monotonic); 0: never */
    long rotations;            /* SIGHUP reloads that took effect */
};

/* Loads path's bytes (one trailing newline dropped), or with path NULL the env variable
 * SANDBOX_AGENT_JWT_SECRET, into key. Returns 1 loaded, 0 when path is NULL and the variable
 * unset or empty, -1 when the file is unreadable, empty or over LIMIT_SECRET_BYTES (why
 * says which, NUL-terminated in why[0..cap)). */
int secret_load(const char *path, struct jwt_key *key, char *why, size_t cap);

/* SIGHUP: re-reads path (NULL: nothing to reload, returns 0). On success the current key
 * becomes k->prev_key, still admitting tokens for grace_s seconds from now_us (none when 0),
 * and the file's secret becomes current. Returns 1 rotated; 0 nothing to reload; -1 old
 * secret kept, why says why. */
int secret_rotate(struct secret_keys *k, const char *path, long grace_s, int64_t now_us,
                  char *why, size_t cap);

/* jwt_verify with the current key; on a bad signature, again with the previous key while
 * its grace lasts (now_us, monotonic), setting *used_prev. */
enum jwt_result secret_verify(const struct secret_keys *k, const char *token, size_t len,
                              int64_t now_s, int64_t now_us, const struct jwt_policy *policy,
                              int *used_prev);

#endif
