#include "secret.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "limits.h"

/* Stores the compiler may not drop: the secret must not outlive its key schedule. */
static void wipe(void *p, size_t n)
{
    volatile unsigned char *v = p;
    while (n--)
        *v++ = 0;
}

int secret_load(const char *path, struct jwt_key *key, char *why, size_t cap)
{
    unsigned char secret[LIMIT_SECRET_BYTES + 1];
    size_t len = 0;
    if (path) {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            snprintf(why, cap, "cannot read secret file %s: %s", path, strerror(errno));
            return -1;
        }
        ssize_t n = 0;
        while (len < sizeof secret && (n = read(fd, secret + len, sizeof secret - len)) > 0)
            len += (size_t)n;
        close(fd);
        if (n < 0 || len > LIMIT_SECRET_BYTES) {
            wipe(secret, sizeof secret);
            snprintf(why, cap, "secret file %s unreadable or over %d bytes", path,
                     LIMIT_SECRET_BYTES);
            return -1;
        }
        if (len && secret[len - 1] == '\n')
            len--;
    } else {
        const char *env = getenv("SANDBOX_AGENT_JWT_SECRET");
        if (!env || !*env)
            return 0;
        len = strlen(env);
        if (len > LIMIT_SECRET_BYTES) {
            snprintf(why, cap, "SANDBOX_AGENT_JWT_SECRET over %d bytes", LIMIT_SECRET_BYTES);
            return -1;
        }
        memcpy(secret, env, len);
    }
    if (len == 0) {
        snprintf(why, cap, "the JWT secret%s%s is empty", path ? " in " : "", path ? path : "");
        return -1;
    }
    jwt_key_init(key, secret, len);
    wipe(secret, sizeof secret);
    return 1;
}

int secret_rotate(struct secret_keys *k, const char *path, long grace_s, int64_t now_us,
                  char *why, size_t cap)
{
    if (!path)
        return 0;
    struct jwt_key fresh;
    if (secret_load(path, &fresh, why, cap) <= 0)
        return -1;   /* a half-written or emptied file must not lock every client out */
    k->prev_key = k->key;
    k->prev_until_us = grace_s > 0 ? now_us + (int64_t)grace_s * 1000000 : 0;
    if (!k->prev_until_us)
        wipe(&k->prev_key, sizeof k->prev_key);   /* never used again: do not keep it */
    k->key = fresh;
    k->have_key = 1;
    k->rotations++;
    wipe(&fresh, sizeof fresh);
    return 1;
}

enum jwt_result secret_verify(const struct secret_keys *k, const char *token, size_t len,
                              int64_t now_s, int64_t now_us, const struct jwt_policy *policy,
                              int *used_prev)
{
    *used_prev = 0;
    enum jwt_result r = jwt_verify(&k->key, token, len, now_s, policy);
    if (r == JWT_BAD_SIGNATURE && k->prev_until_us && now_us < k->prev_until_us) {
        r = jwt_verify(&k->prev_key, token, len, now_s, policy);
        *used_prev = r == JWT_OK;
    }
    return r;
}
