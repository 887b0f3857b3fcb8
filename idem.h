/* Idempotency-Key (issue 12): a state-changing request (POST, PUT, PATCH, DELETE) that
 * repeats a key seen in the last LIMIT_IDEM_TTL_MS gets the first answer again (status,
 * content type, extra headers, body) and nothing runs twice. The official SDKs re-send a
 * request after a 5xx, a reset or a client timeout, even one that started something.
 *
 * A key is scoped by caller (the bearer token), method and path: the same key on another
 * route or from another token is another key. Memory is bounded (limits.h): at most
 * LIMIT_IDEM_KEYS keys and LIMIT_IDEM_TOTAL_BYTES of kept answers, oldest forgotten first.
 * Only hashes of the key and of the body are kept, never the key itself.
 *
 * No syscalls, no clock (the caller passes now), no logging; one allocation per kept answer. */
#ifndef SANDBOX_IDEM_H
#define SANDBOX_IDEM_H
#include <stddef.h>
#include <stdint.h>

/* Who asked what; none of it is NUL-terminated, none of it is kept. */
struct idem_key {
    const char *caller;   /* the bearer token ("" without auth) */
    size_t caller_len;
    const char *method;
    size_t method_len;
    const char *path;     /* without the query */
    size_t path_len;
    const char *key;      /* the Idempotency-Key header's value */
    size_t key_len;
};

/* An answer as it went out. The pointers of one idem_begin gave stay valid until the next
 * idem_* call. content_type must be a static string (or NULL for the JSON default). */
struct idem_answer {
    int status;
    const char *content_type;
    const char *headers;   /* extra header lines, each ending in CRLF */
    size_t headers_len;
    const char *body;
    size_t body_len;
};

enum idem_result {
    IDEM_FIRST,      /* a new key: run the request; idem_answered(token) keeps its answer */
    IDEM_REPLAY,     /* a repeat: *out is the first answer; run nothing */
    IDEM_PENDING,    /* a repeat while the first request has no answer yet (a parked
                      * synchronous run, or one whose client left before its answer) */
    IDEM_MISMATCH,   /* a repeat with another body: a client bug, nothing is run */
    IDEM_NOT_KEPT,   /* a repeat whose first answer was over LIMIT_IDEM_REPLY_BYTES */
};

/* 1 when v[0..len) is a usable key: 1..LIMIT_IDEM_KEY_BYTES visible ASCII characters. */
int idem_key_valid(const char *v, size_t len);

/* Looks the key up at now_ms (monotonic), forgetting expired keys first. For a new key,
 * remembers it as pending under token (the request that will answer it). */
enum idem_result idem_begin(const struct idem_key *k, const char *body, size_t body_len,
                            uint64_t token, int64_t now_ms, struct idem_answer *out);

/* The answer of the request `token`, as it is sent. Kept for the pending key of that
 * request, if any (otherwise ignored). A 5xx answer is not kept and the key is forgotten:
 * such a request started nothing (API.md), so its retry may run. */
void idem_answered(uint64_t token, const struct idem_answer *a);

/* Keys remembered now, and bytes of answers kept (for /info and the tests). */
size_t idem_keys(void);
size_t idem_bytes(void);

#endif
