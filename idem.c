#include "idem.h"

#include <stdlib.h>
#include <string.h>

#include <bearssl_hash.h>

#include "limits.h"

enum state { PENDING, DONE, NOT_KEPT };

struct entry {
    unsigned char id[32];     /* SHA-256 of caller, method, path and key */
    unsigned char body[32];   /* SHA-256 of the request body */
    int64_t expires_ms;
    uint64_t token;           /* the request that answers it, while PENDING */
    enum state state;
    int status;
    const char *content_type;
    char *data;               /* headers, then body: one allocation */
    size_t headers_len, body_len;
};

/* A ring in arrival order, which is expiry order too: the oldest is always at head. */
static struct entry ring[LIMIT_IDEM_KEYS];
static size_t head, count, kept_bytes;

static struct entry *at(size_t i) { return &ring[(head + i) % LIMIT_IDEM_KEYS]; }

static void drop_oldest(void)
{
    struct entry *e = at(0);
    kept_bytes -= e->headers_len + e->body_len;
    free(e->data);
    memset(e, 0, sizeof *e);
    head = (head + 1) % LIMIT_IDEM_KEYS;
    count--;
}

/* Each part is hashed after its length, so ("ab","c") and ("a","bc") differ. */
static void hash_part(br_sha256_context *h, const char *p, size_t n)
{
    uint64_t len = n;
    br_sha256_update(h, &len, sizeof len);
    br_sha256_update(h, p, n);
}

static void hash_key(const struct idem_key *k, unsigned char out[32])
{
    br_sha256_context h;
    br_sha256_init(&h);
    hash_part(&h, k->caller, k->caller_len);
    hash_part(&h, k->method, k->method_len);
    hash_part(&h, k->path, k->path_len);
    hash_part(&h, k->key, k->key_len);
    br_sha256_out(&h, out);
}

int idem_key_valid(const char *v, size_t len)
{
    if (len == 0 || len > LIMIT_IDEM_KEY_BYTES)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (v[i] <= 0x20 || v[i] >= 0x7f)
            return 0;
    return 1;
}

enum idem_result idem_begin(const struct idem_key *k, const char *body, size_t body_len,
                            uint64_t token, int64_t now_ms, struct idem_answer *out)
{
    while (count && at(0)->expires_ms <= now_ms)
        drop_oldest();
    unsigned char id[32], bh[32];
    hash_key(k, id);
    br_sha256_context h;
    br_sha256_init(&h);
    br_sha256_update(&h, body, body_len);
    br_sha256_out(&h, bh);
    for (size_t i = 0; i < count; i++) {
        struct entry *e = at(i);
        if (memcmp(e->id, id, sizeof id) != 0)
            continue;
        if (memcmp(e->body, bh, sizeof bh) != 0)
            return IDEM_MISMATCH;
        if (e->state == PENDING)
            return IDEM_PENDING;
        if (e->state == NOT_KEPT)
            return IDEM_NOT_KEPT;
        *out = (struct idem_answer){ e->status, e->content_type, e->data, e->headers_len,
                                     e->data + e->headers_len, e->body_len };
        return IDEM_REPLAY;
    }
    if (count == LIMIT_IDEM_KEYS)
        drop_oldest();   /* a full table forgets its oldest key before it expires */
    struct entry *e = at(count++);
    memset(e, 0, sizeof *e);
    memcpy(e->id, id, sizeof id);
    memcpy(e->body, bh, sizeof bh);
    e->expires_ms = now_ms + LIMIT_IDEM_TTL_MS;
    e->token = token;
    e->state = PENDING;
    return IDEM_FIRST;
}

/* Index of the pending entry of token, or count. */
static size_t find_pending(uint64_t token)
{
    size_t i = 0;
    while (i < count && !(at(i)->state == PENDING && at(i)->token == token))
        i++;
    return i;
}

void idem_answered(uint64_t token, const struct idem_answer *a)
{
    size_t i = find_pending(token);
    if (i == count)
        return;
    size_t n = a->headers_len + a->body_len;
    if (a->status >= 500) {
        /* forget the key: a zero id matches none (no SHA-256 is all zeros); the slot
         * stays until its turn to expire, so the ring keeps its arrival order */
        struct entry *e = at(i);
        memset(e->id, 0, sizeof e->id);   /* matches no key (a real SHA-256 is never 0) */
        e->state = NOT_KEPT;
        e->token = 0;
        return;
    }
    if (n > LIMIT_IDEM_REPLY_BYTES) {
        at(i)->state = NOT_KEPT;
        return;
    }
    /* room in the byte budget: the oldest answers go first (never this one's own entry) */
    while (kept_bytes + n > LIMIT_IDEM_TOTAL_BYTES && find_pending(token) > 0)
        drop_oldest();
    i = find_pending(token);
    struct entry *e = at(i);
    char *data = malloc(n ? n : 1);
    if (!data) {
        e->state = NOT_KEPT;   /* out of memory: a repeat is refused, never re-run */
        return;
    }
    if (a->headers_len)
        memcpy(data, a->headers, a->headers_len);
    if (a->body_len)
        memcpy(data + a->headers_len, a->body, a->body_len);
    e->data = data;
    e->headers_len = a->headers_len;
    e->body_len = a->body_len;
    e->status = a->status;
    e->content_type = a->content_type;
    e->state = DONE;
    kept_bytes += n;
}

size_t idem_keys(void)
{
    return count;
}

size_t idem_bytes(void)
{
    return kept_bytes;
}
