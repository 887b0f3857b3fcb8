#include "hook.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <bearssl.h>

#include "http.h"
#include "limits.h"
#include "loop.h"
#include "resolve.h"
#include "tls.h"
#include "util.h"

#define DEFAULT_CA_FILE "/etc/ssl/certs/ca-certificates.crt"
#define HOST_CAP 256
#define ERROR_CAP 120

/* A delivery's steps: attached to a running record (not listed), then listed (due,
 * active or in backoff) from the record's end until settled (delivered or failed). */
enum step { S_WAIT_EXIT, S_DUE, S_ACTIVE, S_BACKOFF, S_SETTLED };

struct hook {
    struct hook_state st;
    enum step step;
    struct proc *p;
    int tls;
    uint16_t port;
    char *host;                 /* NUL-terminated, brackets of an IPv6 literal removed */
    char *authority;            /* for Host: as in the URL */
    char *path;                 /* path and query, "/" when empty */
    char *extra;                /* the client's headers, "Name: value\r\n"... */
    int own_type, own_agent;    /* the client set Content-Type / User-Agent */
    unsigned char *secret;
    size_t secret_len;
    char error[ERROR_CAP];
    int64_t due_us;
    struct hook *prev, *next;   /* the list, in the order deliveries became due */
    struct conn *c;             /* while active */
};

enum phase { C_RESOLVE, C_CONNECT, C_EXCHANGE };

/* One attempt's connection; at most LIMIT_HOOK_ACTIVE exist. */
struct conn {
    struct hook *h;
    enum phase phase;
    int fd;
    struct resolve *rq;
    struct tls *tls;
    int64_t connect_deadline, deadline;
    struct buf head, body;      /* the request: header section, then the payload */
    size_t sent;
    int status;                 /* of the final response, 0 until its head is in */
    struct http_framing f;
    struct http_chunked ch;
    uint64_t drained;
    char in[LIMIT_HOOK_HEAD];   /* the response head; then scratch for chunked decoding */
    size_t in_len;
    char why[ERROR_CAP];
};

static struct hook_config cfg;
static struct hook *list_head, *list_tail;
static long nlisted;
static struct conn *active[LIMIT_HOOK_ACTIVE];
static int nactive;
static int stopping;
static char https_off[200];     /* why https callbacks are refused, from hook_init */
static unsigned long long ndelivered, nfailed;

static void attempt_end(struct conn *c, int status, const char *why);

/* ---- the list of deliveries due, active or in backoff ---- */

static void list_add(struct hook *h)
{
    h->prev = list_tail;
    h->next = NULL;
    if (list_tail)
        list_tail->next = h;
    else
        list_head = h;
    list_tail = h;
    nlisted++;
}

static void list_del(struct hook *h)
{
    if (h->prev)
        h->prev->next = h->next;
    else
        list_head = h->next;
    if (h->next)
        h->next->prev = h->prev;
    else
        list_tail = h->prev;
    h->prev = h->next = NULL;
    nlisted--;
}

/* ---- requests ---- */

/* scheme://authority[path][?query], no userinfo, no fragment, visible ASCII only. */
static int parse_url(const char *url, struct hook *h, char *why, size_t cap)
{
    size_t n = strlen(url), skip;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)url[i] <= 0x20 || (unsigned char)url[i] >= 0x7f) {
            snprintf(why, cap, "callback_url must be printable ASCII without spaces");
            return -1;
        }
    if (!strncasecmp(url, "http://", 7))
        skip = 7, h->tls = 0, h->port = 80;
    else if (!strncasecmp(url, "https://", 8))
        skip = 8, h->tls = 1, h->port = 443;
    else {
        snprintf(why, cap, "callback_url must start with http:// or https://");
        return -1;
    }
    const char *auth = url + skip;
    size_t alen = strcspn(auth, "/?#");
    if (auth[alen] == '#' || strchr(auth, '#')) {
        snprintf(why, cap, "callback_url must not have a fragment (#)");
        return -1;
    }
    if (memchr(auth, '@', alen)) {
        snprintf(why, cap, "callback_url must not carry user:password@");
        return -1;
    }
    const char *host = auth, *hend, *colon = NULL;
    if (*host == '[') {
        hend = memchr(host, ']', alen);
        if (!hend) {
            snprintf(why, cap, "callback_url has an unclosed [IPv6] host");
            return -1;
        }
        host++;
        if (hend + 1 < auth + alen) {
            if (hend[1] != ':')
                goto bad_host;
            colon = hend + 1;
        }
    } else {
        colon = memchr(auth, ':', alen);
        hend = colon ? colon : auth + alen;
    }
    if (hend == host || (size_t)(hend - host) >= HOST_CAP)
        goto bad_host;
    if (colon) {
        const char *pp = colon + 1, *pe = auth + alen;
        long port = 0;
        if (pp == pe || pe - pp > 5)
            goto bad_port;
        for (; pp < pe; pp++) {
            if (*pp < '0' || *pp > '9')
                goto bad_port;
            port = port * 10 + (*pp - '0');
        }
        if (port < 1 || port > 65535)
            goto bad_port;
        h->port = (uint16_t)port;
    }
    h->host = strndup(host, (size_t)(hend - host));
    h->authority = strndup(auth, alen);
    h->path = strdup(auth[alen] ? auth + alen : "/");
    if (h->path && h->path[0] == '?') {   /* "http://h?q": the path is "/" */
        char *p = malloc(strlen(h->path) + 2);
        if (p)
            sprintf(p, "/%s", h->path);
        free(h->path);
        h->path = p;
    }
    if (!h->host || !h->authority || !h->path)
        return -2;
    struct sockaddr_storage sa;
    socklen_t sl;
    if (resolve_local(h->host, h->port, &sa, &sl) < 0)   /* only syntax matters here */
        goto bad_host;
    return 0;
bad_host:
    snprintf(why, cap, "callback_url has no valid host");
    return -1;
bad_port:
    snprintf(why, cap, "callback_url has an invalid port");
    return -1;
}

static int reserved_header(const char *name)
{
    static const char *const ours[] = { "host", "content-length", "transfer-encoding",
                                        "connection", "te", "upgrade", "trailer", NULL };
    for (int i = 0; ours[i]; i++)
        if (!strcasecmp(name, ours[i]))
            return 1;
    return !strcasecmp(name, cfg.ts_header) || !strcasecmp(name, cfg.sig_header);
}

static int copy_headers(const struct hook_request *r, struct hook *h, char *why, size_t cap)
{
    struct buf b;
    buf_init(&b, LIMIT_HOOK_HEADER_BYTES + 4 * LIMIT_HOOK_HEADERS);
    if (r->nheaders > LIMIT_HOOK_HEADERS) {
        snprintf(why, cap, "callback_headers has more than %d entries", LIMIT_HOOK_HEADERS);
        return -1;
    }
    for (size_t i = 0; i < r->nheaders; i++) {
        const char *k = r->header_names[i], *v = r->header_values[i];
        if (!*k || strspn(k, "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz"
                             "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != strlen(k)) {
            snprintf(why, cap, "callback_headers: '%.40s' is not a valid header name", k);
            goto bad;
        }
        int ctl = 0;   /* field-value: HTAB, visible bytes and obs-text (RFC 9110 5.5) */
        for (const unsigned char *q = (const unsigned char *)v; *q; q++)
            ctl |= (*q < 0x20 && *q != '\t') || *q == 0x7f;
        if (ctl) {
            snprintf(why, cap, "callback_headers: the value of '%.40s' must not contain CR, LF "
                               "or other control characters", k);
            goto bad;
        }
        if (reserved_header(k)) {
            snprintf(why, cap, "callback_headers: '%.40s' is set by the agent and cannot be "
                               "overridden", k);
            goto bad;
        }
        h->own_type |= !strcasecmp(k, "content-type");
        h->own_agent |= !strcasecmp(k, "user-agent");
        buf_printf(&b, "%s: %s\r\n", k, v);
    }
    if (b.failed) {
        snprintf(why, cap, "callback_headers are larger than %d bytes", LIMIT_HOOK_HEADER_BYTES);
        goto bad;
    }
    buf_putc(&b, 0);
    h->extra = b.data;
    return b.failed ? -2 : 0;
bad:
    buf_free(&b);
    return -1;
}

/* ---- the exchange ---- */

static void conn_close(struct conn *c)
{
    if (c->rq)
        resolve_cancel(c->rq);
    c->rq = NULL;
    if (c->fd >= 0) {
        loop_del(c->fd);
        close(c->fd);
    }
    c->fd = -1;
    tls_free(c->tls);
    c->tls = NULL;
    buf_free(&c->head);
    buf_free(&c->body);
}

/* The request bytes from c->sent on, contiguous: the head, then the body. */
static const char *req_next(const struct conn *c, size_t *len)
{
    if (c->sent < c->head.len) {
        *len = c->head.len - c->sent;
        return c->head.data + c->sent;
    }
    *len = c->head.len + c->body.len - c->sent;
    return c->body.data + (c->sent - c->head.len);
}

/* Response bytes. Returns 1 when the exchange is complete (c->status set), 0 for more,
 * -1 malformed (c->why set). */
static int drain(struct conn *c, const char *data, size_t n)
{
    c->drained += n;
    switch (c->f.body) {
    case HTTP_BODY_NONE:
        return 1;
    case HTTP_BODY_LENGTH:
        if (c->drained >= c->f.length)
            return 1;
        break;
    case HTTP_BODY_CHUNKED:
        while (n) {   /* decoded in place in the scratch, a piece at a time */
            size_t k = n < sizeof c->in ? n : sizeof c->in, len = k;
            memcpy(c->in, data, k);
            ssize_t r = http_chunked_decode(&c->ch, c->in, &len);
            if (r != HTTP_INCOMPLETE)
                return 1;   /* the last chunk, or garbage: the status is what counts */
            data += k, n -= k;
        }
        break;
    case HTTP_BODY_CLOSE:
        break;
    }
    return c->drained > LIMIT_HOOK_DRAIN;   /* enough politeness: close */
}

static int feed(struct conn *c, const char *data, size_t n)
{
    while (!c->status) {
        size_t take = n < sizeof c->in - c->in_len ? n : sizeof c->in - c->in_len;
        memcpy(c->in + c->in_len, data, take);
        c->in_len += take;
        data += take, n -= take;
        struct http_response r;
        int len = http_parse_response(c->in, c->in_len, &r);
        if (len == HTTP_INCOMPLETE && c->in_len < sizeof c->in)
            return 0;   /* everything was taken: wait for more */
        if (len < 0) {
            snprintf(c->why, sizeof c->why, len == HTTP_INCOMPLETE
                     ? "response header larger than %d bytes" : "malformed HTTP response",
                     LIMIT_HOOK_HEAD);
            return -1;
        }
        size_t rest = c->in_len - (size_t)len;
        if (r.status < 200) {   /* interim (100 Continue, 103): the real answer follows */
            memmove(c->in, c->in + len, rest);
            c->in_len = rest;
            continue;
        }
        c->status = r.status;
        if (http_response_framing(&r, &c->f) < 0)
            return 1;           /* an unframeable body: we have the status, close */
        char tail[LIMIT_HOOK_HEAD];   /* body bytes read with the head (drain uses c->in) */
        memcpy(tail, c->in + len, rest);
        if (drain(c, tail, rest) || c->f.body == HTTP_BODY_NONE)
            return 1;
    }
    return n ? drain(c, data, n) : 0;
}

/* The server closed (or sent close_notify). */
static void on_eof(struct conn *c)
{
    if (c->status)
        attempt_end(c, c->status, NULL);
    else
        attempt_end(c, 0, "connection closed before a response");
}

static void pump_plain(struct conn *c)
{
    size_t len;
    while (c->sent < c->head.len + c->body.len) {
        const char *p = req_next(c, &len);
        ssize_t w = send(c->fd, p, len, MSG_NOSIGNAL);
        if (w > 0) {
            c->sent += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN)
            break;
        snprintf(c->why, sizeof c->why, "send: %s", strerror(errno));
        attempt_end(c, 0, c->why);
        return;
    }
    for (;;) {
        char b[16384];
        ssize_t r = recv(c->fd, b, sizeof b, 0);
        if (r > 0) {
            int d = feed(c, b, (size_t)r);
            if (d) {
                attempt_end(c, d > 0 ? c->status : 0, d > 0 ? NULL : c->why);
                return;
            }
            continue;
        }
        if (r == 0) {
            on_eof(c);
            return;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN)
            break;
        snprintf(c->why, sizeof c->why, "recv: %s", strerror(errno));
        attempt_end(c, c->status, c->status ? NULL : c->why);
        return;
    }
    loop_set(c->fd, (short)(POLLIN | (c->sent < c->head.len + c->body.len ? POLLOUT : 0)));
}

/* BearSSL's engine takes and gives bytes; this moves them between it and the socket until
 * neither side can go on, then waits for what the engine wants (STYLE.md). */
static void pump_tls(struct conn *c)
{
    br_ssl_engine_context *eng = tls_engine(c->tls);
    for (;;) {
        unsigned st = br_ssl_engine_current_state(eng);
        if (st & BR_SSL_CLOSED) {
            int err = br_ssl_engine_last_error(eng);
            if (err && !c->status) {
                snprintf(c->why, sizeof c->why, "tls: %s (%d)", tls_strerror(err), err);
                attempt_end(c, 0, c->why);
            } else {
                on_eof(c);
            }
            return;
        }
        int progress = 0;
        size_t len;
        unsigned char *b;
        if ((b = br_ssl_engine_sendrec_buf(eng, &len)) != NULL) {
            ssize_t w = send(c->fd, b, len, MSG_NOSIGNAL);
            if (w > 0) {
                br_ssl_engine_sendrec_ack(eng, (size_t)w);
                progress = 1;
            } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
                snprintf(c->why, sizeof c->why, "send: %s", strerror(errno));
                attempt_end(c, 0, c->why);
                return;
            }
        }
        if ((b = br_ssl_engine_recvapp_buf(eng, &len)) != NULL) {
            int d = feed(c, (const char *)b, len);
            br_ssl_engine_recvapp_ack(eng, len);
            if (d) {
                attempt_end(c, d > 0 ? c->status : 0, d > 0 ? NULL : c->why);
                return;
            }
            progress = 1;
        }
        if (c->sent < c->head.len + c->body.len &&
            (b = br_ssl_engine_sendapp_buf(eng, &len)) != NULL) {
            size_t have;
            const char *p = req_next(c, &have);
            size_t k = have < len ? have : len;
            memcpy(b, p, k);
            br_ssl_engine_sendapp_ack(eng, k);
            c->sent += k;
            if (c->sent == c->head.len + c->body.len)
                br_ssl_engine_flush(eng, 0);
            progress = 1;
        }
        if ((b = br_ssl_engine_recvrec_buf(eng, &len)) != NULL) {
            ssize_t r = recv(c->fd, b, len, 0);
            if (r > 0) {
                br_ssl_engine_recvrec_ack(eng, (size_t)r);
                progress = 1;
            } else if (r == 0) {   /* closed without close_notify */
                if (c->sent || c->status)
                    on_eof(c);
                else
                    attempt_end(c, 0, "tls: connection closed during the handshake");
                return;
            } else if (errno != EAGAIN && errno != EINTR) {
                snprintf(c->why, sizeof c->why, "recv: %s", strerror(errno));
                attempt_end(c, 0, c->why);
                return;
            }
        }
        if (!progress)
            break;
    }
    unsigned st = br_ssl_engine_current_state(eng);
    loop_set(c->fd, (short)((st & BR_SSL_RECVREC ? POLLIN : 0) | (st & BR_SSL_SENDREC ? POLLOUT : 0)));
}

static void on_io(void *ctx, int fd, short revents)
{
    struct conn *c = ctx;
    (void)fd;
    if (c->phase == C_CONNECT) {
        int err = 0;
        socklen_t el = sizeof err;
        if (!(revents & (POLLOUT | POLLERR | POLLHUP)))
            return;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
        if (err) {
            snprintf(c->why, sizeof c->why, "connect: %s", strerror(err));
            attempt_end(c, 0, c->why);
            return;
        }
        c->phase = C_EXCHANGE;
        if (c->h->tls && !(c->tls = tls_new(c->h->host))) {
            attempt_end(c, 0, "out of memory for TLS");
            return;
        }
    }
    if (c->tls)
        pump_tls(c);
    else
        pump_plain(c);
}

static void start_connect(struct conn *c, const struct sockaddr_storage *sa, socklen_t len)
{
    c->fd = socket(sa->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        snprintf(c->why, sizeof c->why, "socket: %s", strerror(errno));
        attempt_end(c, 0, c->why);
        return;
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->phase = C_CONNECT;
    if (loop_add(c->fd, POLLOUT, on_io, c) < 0) {
        snprintf(c->why, sizeof c->why, "cannot watch: %s", strerror(errno));
        attempt_end(c, 0, c->why);
        return;
    }
    if (connect(c->fd, (const struct sockaddr *)sa, len) < 0 && errno != EINPROGRESS) {
        snprintf(c->why, sizeof c->why, "connect: %s", strerror(errno));
        attempt_end(c, 0, c->why);
    }
    /* connected at once or in progress: POLLOUT says which (on_io) */
}

static void on_resolved(void *ctx, int err, const struct sockaddr_storage *sa, socklen_t len)
{
    struct conn *c = ctx;
    c->rq = NULL;
    if (err) {
        snprintf(c->why, sizeof c->why, "cannot resolve %.60s: %s", c->h->host,
                 err == ENOENT ? "no such host" : err == ETIMEDOUT ? "DNS timed out"
                                                                   : "DNS failed");
        attempt_end(c, 0, c->why);
        return;
    }
    start_connect(c, sa, len);
}

/* The request, signed: HMAC-SHA256(secret, timestamp followed directly by the body). */
static int build_request(struct conn *c)
{
    struct hook *h = c->h;
    buf_init(&c->body, LIMIT_HOOK_PAYLOAD);
    buf_init(&c->head, LIMIT_HOOK_HEADER_BYTES + 2048 + LIMIT_HOOK_URL);
    if (cfg.render(h->p, &c->body) < 0 || c->body.failed)
        return -1;
    char ts[24];
    snprintf(ts, sizeof ts, "%lld", (long long)(util_wall_ms() / 1000));
    buf_printf(&c->head, "POST %s HTTP/1.1\r\nHost: %s\r\n", h->path, h->authority);
    if (!h->own_agent)
        buf_printf(&c->head, "User-Agent: %s\r\n", cfg.user_agent);
    if (!h->own_type)
        buf_puts(&c->head, "Content-Type: application/json\r\n");
    buf_printf(&c->head, "Content-Length: %zu\r\n%s: %s\r\n", c->body.len, cfg.ts_header, ts);
    if (h->secret) {
        br_hmac_key_context kc;
        br_hmac_context hc;
        unsigned char mac[32];
        char hex[65];
        br_hmac_key_init(&kc, &br_sha256_vtable, h->secret, h->secret_len);
        br_hmac_init(&hc, &kc, 0);
        br_hmac_update(&hc, ts, strlen(ts));
        br_hmac_update(&hc, c->body.data ? c->body.data : "", c->body.len);
        br_hmac_out(&hc, mac);
        for (int i = 0; i < 32; i++)
            sprintf(hex + 2 * i, "%02x", mac[i]);
        buf_printf(&c->head, "%s: sha256=%s\r\n", cfg.sig_header, hex);
        memset(&kc, 0, sizeof kc);
    }
    buf_printf(&c->head, "%sConnection: close\r\n\r\n", h->extra ? h->extra : "");
    return c->head.failed ? -1 : 0;
}

static void attempt_start(struct hook *h)
{
    struct conn *c = calloc(1, sizeof *c);
    h->st.attempts++;
    if (!c) {
        snprintf(h->error, sizeof h->error, "out of memory");
        h->st.last_error = h->error;
        h->step = S_BACKOFF;   /* try again later, like a failed connection */
        h->due_us = util_mono_us() + cfg.backoff_ms * 1000;
        return;
    }
    c->h = h;
    c->fd = -1;
    h->c = c;
    h->step = S_ACTIVE;
    active[nactive++] = c;
    int64_t now = util_mono_us();
    c->deadline = now + cfg.timeout_ms * 1000;
    c->connect_deadline = now + (int64_t)LIMIT_HOOK_CONNECT_MS * 1000;
    if (c->connect_deadline > c->deadline)
        c->connect_deadline = c->deadline;
    if (build_request(c) < 0) {
        attempt_end(c, -1, "payload too large to send");
        return;
    }
    if (h->tls && !tls_anchors()) {   /* the bundle held nothing BearSSL could use */
        attempt_end(c, -1, "https: no usable certificate in the CA bundle");
        return;
    }
    struct sockaddr_storage sa;
    socklen_t sl;
    int r = resolve_local(h->host, h->port, &sa, &sl);
    if (r > 0) {
        start_connect(c, &sa, sl);
        return;
    }
    c->phase = C_RESOLVE;
    c->rq = r == 0 ? resolve_start(h->host, h->port, on_resolved, c) : NULL;
    if (!c->rq) {
        snprintf(c->why, sizeof c->why, "cannot resolve %.60s: %s", h->host, strerror(errno));
        attempt_end(c, 0, c->why);
    }
}

static void settle(struct hook *h, enum hook_phase phase)
{
    h->st.phase = phase;
    h->step = S_SETTLED;
    if (phase == HOOK_DELIVERED)
        ndelivered++;
    else
        nfailed++;
    list_del(h);
    if (h->p) {
        h->p->pins--;   /* evictable again (proc.c evicts at its next create or reap) */
        if (cfg.settled)
            cfg.settled(h->p, &h->st);
    }
}

/* Ends an attempt: status is the HTTP status (0: no answer, -1: never retried). */
static void attempt_end(struct conn *c, int status, const char *why)
{
    struct hook *h = c->h;
    conn_close(c);
    for (int i = 0; i < nactive; i++)
        if (active[i] == c) {
            active[i] = active[--nactive];
            break;
        }
    h->c = NULL;
    h->st.last_status = status > 0 ? status : 0;
    if (status >= 200 && status < 300) {
        h->st.last_error = NULL;
        h->st.delivered_ms = util_wall_ms();
        settle(h, HOOK_DELIVERED);
        free(c);
        return;
    }
    if (why)
        snprintf(h->error, sizeof h->error, "%s", why);
    else
        snprintf(h->error, sizeof h->error, "HTTP %d", status);
    h->st.last_error = h->error;
    free(c);
    int retry = status == 0 || status == 429 || status >= 500;
    if (!retry || h->st.attempts >= LIMIT_HOOK_ATTEMPTS) {
        settle(h, HOOK_FAILED);
        return;
    }
    int shift = h->st.attempts - 1;
    int64_t units = (int64_t)1 << (shift < 6 ? shift : 6);
    if (units > LIMIT_HOOK_BACKOFF_MAX)
        units = LIMIT_HOOK_BACKOFF_MAX;
    h->step = S_BACKOFF;
    h->due_us = util_mono_us() + units * cfg.backoff_ms * 1000;
}

/* ---- records ---- */

static void on_proc_event(const struct proc *p, enum proc_event ev, int sig)
{
    (void)sig;
    struct hook *h = p->hook;
    if (!h)
        return;
    if (ev == PROC_EV_FINISHED && h->step == S_WAIT_EXIT) {
        h->step = S_DUE;
        h->due_us = 0;
        list_add(h);
    } else if (ev == PROC_EV_EVICTED) {
        /* forgotten or evicted: only settled records are (pins), but stay safe */
        if (h->c) {
            conn_close(h->c);
            for (int i = 0; i < nactive; i++)
                if (active[i] == h->c) {
                    active[i] = active[--nactive];
                    break;
                }
            free(h->c);
        }
        if (h->step != S_WAIT_EXIT && h->step != S_SETTLED)
            list_del(h);
        h->p = NULL;
        hook_discard(h);
    }
}

int hook_init(const struct hook_config *c, char *why, size_t cap)
{
    cfg = *c;
    if (!cfg.backoff_ms)
        cfg.backoff_ms = LIMIT_HOOK_BACKOFF_MS;
    if (!cfg.timeout_ms)
        cfg.timeout_ms = LIMIT_HOOK_TOTAL_MS;
    proc_observe(on_proc_event);
    int n = tls_init(cfg.ca_file ? cfg.ca_file : DEFAULT_CA_FILE, why, cap);
    if (n == 0)
        snprintf(https_off, sizeof https_off, "%s", why);
    return n;
}

struct hook *hook_new(const struct hook_request *r, int *status, char *why, size_t cap)
{
    struct hook *h = calloc(1, sizeof *h);
    *status = 500;
    if (!h) {
        snprintf(why, cap, "out of memory");
        return NULL;
    }
    int rc = strlen(r->url) > LIMIT_HOOK_URL ? -1 : parse_url(r->url, h, why, cap);
    if (rc == -1 && strlen(r->url) > LIMIT_HOOK_URL)
        snprintf(why, cap, "callback_url is longer than %d bytes", LIMIT_HOOK_URL);
    if (rc == 0 && h->tls && !tls_available()) {
        snprintf(why, cap, "https callbacks are unavailable: %s (set --ca-file)", https_off);
        rc = -1;
    }
    if (rc == 0)
        rc = copy_headers(r, h, why, cap);
    if (rc == 0 && r->secret) {
        if (r->secret_len > LIMIT_HOOK_SECRET) {
            snprintf(why, cap, "callback_signature_secret is longer than %d bytes",
                     LIMIT_HOOK_SECRET);
            rc = -1;
        } else if ((h->secret = malloc(r->secret_len ? r->secret_len : 1)) != NULL) {
            memcpy(h->secret, r->secret, r->secret_len);
            h->secret_len = r->secret_len;
        } else {
            rc = -2;
        }
    }
    if (rc == 0 && !(h->st.url = strdup(r->url)))
        rc = -2;
    if (rc == 0 && nlisted >= LIMIT_HOOK_PENDING) {
        snprintf(why, cap, "too many webhook deliveries pending; try again later");
        *status = 503;
        rc = -3;
    }
    if (rc < 0) {
        if (rc == -1)
            *status = 400;
        else if (rc == -2)
            snprintf(why, cap, "out of memory");
        hook_discard(h);
        return NULL;
    }
    return h;
}

void hook_attach(struct hook *h, struct proc *p)
{
    h->p = p;
    h->step = S_WAIT_EXIT;
    h->st.phase = HOOK_PENDING;
    p->hook = h;
    p->pins++;
    if (p->state == PROC_FINISHED) {   /* ended at once (spawn error): deliver that */
        h->step = S_DUE;
        list_add(h);
    }
}

void hook_discard(struct hook *h)
{
    if (!h)
        return;
    if (h->secret)
        memset(h->secret, 0, h->secret_len);
    free(h->secret);
    free((char *)h->st.url);
    free(h->host);
    free(h->authority);
    free(h->path);
    free(h->extra);
    free(h);
}

const struct hook_state *hook_state(const struct proc *p)
{
    return p->hook ? &p->hook->st : NULL;
}

int64_t hook_tick(int64_t now_us)
{
    int64_t next = resolve_tick(now_us);
    /* attempts past their deadline; ending one reorders active[], so scan again */
    for (int i = 0; i < nactive;) {
        struct conn *c = active[i];
        int early = c->phase == C_RESOLVE || c->phase == C_CONNECT;
        if (now_us >= c->deadline || (early && now_us >= c->connect_deadline)) {
            attempt_end(c, 0, early ? "timed out connecting" : "timed out waiting for the response");
            i = 0;
            continue;
        }
        int64_t d = early && c->connect_deadline < c->deadline ? c->connect_deadline : c->deadline;
        if (next < 0 || d < next)
            next = d;
        i++;
    }
    int anchors_ready = -1;   /* asked once per tick, when an https delivery is due */
    for (struct hook *h = list_head, *nx; h; h = nx) {
        nx = h->next;   /* starting h may settle it at once, never another */
        if (h->step == S_BACKOFF && h->due_us <= now_us)
            h->step = S_DUE;
        if (h->step == S_DUE && h->tls && anchors_ready < 0)
            anchors_ready = tls_load_step();   /* a slice of the bundle per loop round */
        if (h->step == S_DUE && h->tls && !anchors_ready) {
            next = now_us;   /* more of the bundle next round */
            continue;
        }
        if (h->step == S_DUE && nactive < LIMIT_HOOK_ACTIVE)
            attempt_start(h);
        /* still due: all slots busy; a slot frees in a loop callback or above, and the
         * loop calls hook_tick after every round, so no deadline is needed for it */
        if (h->step == S_BACKOFF && (next < 0 || h->due_us < next))
            next = h->due_us;
    }
    return next;
}

void hook_counts(struct hook_counts *hc)
{
    hc->trust_anchors = tls_anchors();
    hc->pending = nlisted;
    hc->active = nactive;
    hc->delivered = ndelivered;
    hc->failed = nfailed;
}

void hook_shutdown(void)
{
    stopping = 1;
    for (struct hook *h = list_head; h; h = h->next)
        if (h->step == S_BACKOFF)
            h->due_us = 0;
}

int hook_busy(void)
{
    int n = 0;
    for (struct hook *h = list_head; h; h = h->next)
        n += !(stopping && h->step == S_BACKOFF && h->due_us > 0);
    return n;
}
