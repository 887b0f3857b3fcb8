/* Webhook delivery (core, protocol-neutral): when a record with a callback finishes, its
 * payload is POSTed to the callback URL over HTTP/1.1 or HTTPS (tls.h), without blocking
 * the loop (resolve.h for names, non-blocking connect, reads and writes). 2xx is
 * delivered; a connection failure, timeout, 429 or 5xx is retried after 1, 2, 4 ... 64
 * backoff units (8 attempts); any other status fails at once. At most
 * LIMIT_HOOK_ACTIVE deliveries run at once, the rest wait in order. A record is pinned
 * (proc.h: pins) from attach until its delivery is settled, so it is not evicted.
 * The front-end renders the payload (hook_config.render) and the state (hook_state). */
#ifndef SANDBOX_HOOK_H
#define SANDBOX_HOOK_H
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "proc.h"

/* Renders the payload for a finished record into out (JSON). Returns 0, or -1 when it
 * did not fit (out->failed). */
typedef int hook_render_fn(const struct proc *p, struct buf *out);
struct hook_state;

struct hook_config {
    const char *ca_file;          /* PEM bundle for https (NULL: the system's) */
    int64_t backoff_ms;           /* first retry delay; doubles up to 64x (0: 1000) */
    int64_t timeout_ms;           /* a whole attempt (0: LIMIT_HOOK_TOTAL_MS); connecting
                                   * gets LIMIT_HOOK_CONNECT_MS of it at most */
    const char *user_agent;       /* "sandbox-agent/0.1.0" */
    const char *ts_header;        /* header carrying the unix time, "X-HopX-Timestamp" */
    const char *sig_header;       /* "X-HopX-Signature": sha256=<hex HMAC(ts . body)> */
    hook_render_fn *render;
    /* told once per delivery when it settles (the agent logs it); may be NULL */
    void (*settled)(const struct proc *p, const struct hook_state *st);
};

/* Loads the trust anchors and registers the proc observer. Returns the number of trust
 * anchors (0: https callbacks will be refused; why says so). */
int hook_init(const struct hook_config *c, char *why, size_t cap);

/* What a client asks for. Strings need not outlive hook_new (they are copied). */
struct hook_request {
    const char *url;              /* http://host[:port]/path or https://... */
    const char *const *header_names;   /* extra headers, n of each */
    const char *const *header_values;
    size_t nheaders;
    const char *secret;           /* HMAC key bytes, NULL: unsigned */
    size_t secret_len;
};

/* Checks and copies a request before anything starts. Returns the delivery, or NULL with
 * why filled and *status the HTTP status to answer: 400 for a bad URL (scheme, host,
 * port, userinfo, fragment, control bytes), https without trust anchors, a header name
 * that is not a token, a value with CR/LF/NUL, a header we set ourselves; 500 when out of
 * memory. */
struct hook *hook_new(const struct hook_request *r, int *status, char *why, size_t cap);
/* Ties the delivery to a record just created (queued or running): it runs when the
 * record finishes. Pins the record until the delivery settles. */
void hook_attach(struct hook *h, struct proc *p);
/* Drops a delivery that was never attached (the process could not start). */
void hook_discard(struct hook *h);

enum hook_phase { HOOK_PENDING, HOOK_DELIVERED, HOOK_FAILED };
/* What the record shows. Valid until the record changes or is dropped. */
struct hook_state {
    const char *url;
    enum hook_phase phase;
    int attempts;                 /* started so far */
    int last_status;              /* HTTP status of the last answer, 0: none */
    const char *last_error;       /* why the last attempt failed, NULL: it did not */
    int64_t delivered_ms;         /* wall clock, 0 until delivered */
};
/* The state of p's delivery, or NULL when p has no callback. */
const struct hook_state *hook_state(const struct proc *p);

/* Deadlines and retries due by now; starts waiting deliveries while slots are free.
 * Returns the next deadline (monotonic us) or -1. */
int64_t hook_tick(int64_t now_us);
/* Shutdown: deliveries waiting on a backoff are tried now, once more each. */
void hook_shutdown(void);
/* For /info: trust anchors loaded, deliveries pending (finished records not yet settled)
 * and running now, and totals since start. */
struct hook_counts {
    int trust_anchors;
    long pending, active;
    unsigned long long delivered, failed;
};
void hook_counts(struct hook_counts *hc);
/* Deliveries not settled (due, running, or in backoff) whose record has finished. */
int hook_busy(void);

#endif
