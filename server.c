#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "util.h"

#define ACCEPT_BURST   64      /* accepts per loop round, so a flood cannot starve others */
#define CHUNK_READ     LIMIT_HEADER_BYTES  /* chunked reads: leftover always fits in conn.in */
#define REPLY_HEADERS  4096    /* extra reply headers per response */
#define KEEP_BYTES     65536   /* body/reply buffers up to this are kept for the next request */

enum conn_state {
    ST_HEAD,     /* reading a request line and headers (or idle between requests) */
    ST_BODY,     /* reading a request body */
    ST_PARKED,   /* the handler answers later (a synchronous run) */
    ST_WRITE,    /* writing a reply */
    ST_LINGER,   /* write side shut; draining input so the peer reads our last reply */
    ST_STREAM,   /* a request body streaming to a sink (server_set_body_hook) */
};

struct conn {
    int fd;
    int slot;
    int second;               /* accepted on the second listener (server_listen_second) */
    enum conn_state state;
    uint32_t reqgen;          /* matches the token of the current request */
    uint64_t token;           /* the dispatched request's token until its reply is sent; 0 */
    int64_t deadline;         /* monotonic us; 0 = none */
    int64_t started;          /* when this request's first byte came */
    int keep_alive;
    int head;                 /* current request is HEAD */
    /* request */
    size_t in_len;
    size_t head_len;          /* bytes of in[] used by the current request line + headers */
    size_t leftover;          /* bytes after a chunked body, parked in body until dispatched */
    struct http_request req;
    struct http_framing framing;
    struct http_chunked chunked;
    struct buf body;
    size_t body_held;         /* body.cap as counted in bodies_held */
    char rid[LIMIT_REQUEST_ID + 1];
    char method[16];
    char path[96];            /* for the log line only */
    /* reply */
    struct server_reply rep;
    size_t rep_held;          /* rep.body.cap as counted in replies_held (large ones only) */
    char head_out[512 + REPLY_HEADERS];
    size_t head_out_len;
    size_t out_off;           /* bytes of head_out + body already written */
    /* a streamed request body (ST_STREAM) */
    struct server_sink sink;
    int streaming;            /* sink holds a body: end or abort still owed */
    char *sbuf;               /* LIMIT_FILES_IO bytes while streaming */
    size_t s_pend;            /* decoded bytes at sbuf[0..) the sink has not taken */
    uint64_t s_got;           /* Content-Length bodies: raw bytes read so far */
    int s_done;               /* the whole body is decoded */
    int s_busy;               /* the sink took less than offered: not reading */
    uint64_t file_sent;       /* file-backed reply: bytes of it sent */
    /* takeover: the owner the connection goes to once the head is written */
    const struct server_owner *owner;
    void *owner_ctx;
    /* last, so conn_new can zero everything before it without touching 16 KiB */
    char in[LIMIT_HEADER_BYTES];
};

static struct conn *conns[LIMIT_CONNECTIONS];
static int nconns;
static int listen_fd = -1;
static int spare_fd = -1;     /* released to accept-and-close when out of descriptors */
static size_t bodies_held;    /* request body buffers over all connections */
static size_t replies_held;   /* large reply buffers (> KEEP_BYTES) over all connections */
static int stopping;
static server_handler *handler;
static server_body_hook *body_hook;
static void (*on_reply)(uint64_t token, const struct server_reply *rep);
static void *handler_ctx;
/* A second listener with its own handler and body hook (E2B's protocol on its own port):
 * its connections share every slot, limit and deadline of the first one's. */
static struct {
    int fd;
    server_handler *handler;
    server_body_hook *body_hook;
    void *ctx;
} second = { -1, NULL, NULL, NULL };
static uint32_t reqgen_next;
static char rid_prefix[9];
static uint32_t rid_counter;
/* Connection takeover: connections handed to an owner (still counted against
 * LIMIT_CONNECTIONS), and the owners seen, to be told when the server stops. */
#define OWNERS_MAX 8
static int owned;
static const struct server_owner *owners[OWNERS_MAX];
static int nowners;

static void conn_process(struct conn *c);

/* A slot came free: both listeners accept again (on_accept paused them when full). */
static void listeners_resume(void)
{
    if (stopping)
        return;
    if (listen_fd >= 0)
        loop_set(listen_fd, POLLIN);
    if (second.fd >= 0)
        loop_set(second.fd, POLLIN);
}

/* ---- connection lifetime ---- */

/* Bodies are read before the handler authenticates the request, so each connection's
 * LIMIT_BODY_BYTES is also bounded in sum (LIMIT_BODY_TOTAL): test_hostile pinned 480 MiB
 * with 60 unauthenticated half-sent bodies. Call wherever c->body may have grown or shrunk. */
static void conn_body_account(struct conn *c)
{
    bodies_held = bodies_held - c->body_held + c->body.cap;
    c->body_held = c->body.cap;
}

/* A reply waits in memory until its client reads it (a stalled reader keeps it for up to
 * LIMIT_WRITE_MS), so large ones are bounded in sum too (LIMIT_REPLY_TOTAL): fifty clients
 * asking for a 500 MiB list and never reading would otherwise hold 25 GiB. */
static void conn_reply_account(struct conn *c)
{
    size_t cap = c->rep.body.cap > KEEP_BYTES ? c->rep.body.cap : 0;
    replies_held = replies_held - c->rep_held + cap;
    c->rep_held = cap;
}

static void conn_stream_stop(struct conn *c, int aborted);
static void reply_file_drop(struct server_reply *r);

static void conn_close(struct conn *c)
{
    conn_stream_stop(c, 1);
    reply_file_drop(&c->rep);
    loop_del(c->fd);
    close(c->fd);
    conns[c->slot] = NULL;
    nconns--;
    buf_free(&c->body);
    conn_body_account(c);
    buf_free(&c->rep.body);
    conn_reply_account(c);
    buf_free(&c->rep.headers);
    if (c->owner)   /* taken, but gone before the head went out: the owner frees its ctx */
        c->owner->take(c->owner_ctx, -1, NULL, 0);
    free(c);
    listeners_resume();
}

/* The head of a taken connection is written: the connection becomes its owner's. The slot
 * stays counted (owned) until server_release. */
static void conn_handover(struct conn *c)
{
    const struct server_owner *o = c->owner;
    int fd = c->fd;
    loop_del(fd);
    conns[c->slot] = NULL;
    nconns--;
    owned++;
    buf_free(&c->body);
    conn_body_account(c);
    buf_free(&c->rep.body);
    conn_reply_account(c);
    buf_free(&c->rep.headers);
    o->take(c->owner_ctx, fd, c->in, c->in_len);
    free(c);
}

static void conn_watch(struct conn *c, short events)
{
    loop_set(c->fd, events);
}

static void conn_linger(struct conn *c, int64_t now)
{
    shutdown(c->fd, SHUT_WR);
    c->state = ST_LINGER;
    c->deadline = now + (int64_t)LIMIT_LINGER_MS * 1000;
    conn_watch(c, POLLIN);
}

static void conn_idle(struct conn *c, int64_t now)
{
    c->state = ST_HEAD;
    c->head_len = 0;
    c->started = 0;
    c->deadline = now + (int64_t)LIMIT_IDLE_MS * 1000;
    /* an idle keep-alive connection pins no large buffer of its last request or reply */
    if (c->body.cap > KEEP_BYTES)
        buf_free(&c->body);
    if (c->rep.body.cap > KEEP_BYTES)
        buf_free(&c->rep.body);
    conn_reply_account(c);
    buf_reset(&c->body);
    conn_body_account(c);
    conn_watch(c, POLLIN);
}

/* ---- replies ---- */

static const char *http_date(void)
{
    static char date[32];
    static time_t cached;
    time_t now = time(NULL);
    if (now != cached) {
        util_http_date(now, date);
        cached = now;
    }
    return date;
}

static void conn_log(struct conn *c, int64_t now)
{
    size_t bytes = c->head_out_len + (c->head ? 0 : c->rep.body.len + c->file_sent);
    log_line("level=info event=request id=%s method=%s path=%s status=%d bytes=%zu us=%lld%s%s",
             c->rid, c->method, c->path, c->rep.status, bytes,
             (long long)(now - c->started), c->rep.note ? " " : "",
             c->rep.note ? c->rep.note : "");
    metrics_request(c->rep.status, now - c->started);
}

static void reply_file_drop(struct server_reply *r)
{
    if (r->file.set)
        close(r->file.fd);
    r->file.set = 0;
}

/* The file part of a reply, after the headers: sendfile from the page cache, at most
 * LIMIT_FILES_SEND bytes per loop round so one fast reader does not hold the loop.
 * Returns 1 when all is sent, 0 to go on at POLLOUT, -1 on error (a file that shrank
 * under us too: the Content-Length already promised its bytes). */
static int conn_flush_file(struct conn *c)
{
    struct server_reply *r = &c->rep;
    uint64_t round = 0;
    while (c->file_sent < r->file.len) {
        if (round >= LIMIT_FILES_SEND) {
            c->deadline = util_mono_us() + (int64_t)LIMIT_WRITE_MS * 1000;
            return 0;
        }
        uint64_t left = r->file.len - c->file_sent;
        off_t off = (off_t)(r->file.off + c->file_sent);
        size_t want = left < LIMIT_FILES_SEND ? (size_t)left : LIMIT_FILES_SEND;
        ssize_t n = sendfile(c->fd, r->file.fd, &off, want);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            c->deadline = util_mono_us() + (int64_t)LIMIT_WRITE_MS * 1000;
            return 0;
        }
        if (n <= 0)
            return -1;
        c->file_sent += (uint64_t)n;
        round += (uint64_t)n;
    }
    return 1;
}

/* Tries to write what is left; returns 1 when the reply is fully written. */
static int conn_flush(struct conn *c)
{
    size_t body_len = c->head ? 0 : c->rep.body.len;
    size_t total = c->head_out_len + body_len;
    while (c->out_off < total) {
        struct iovec iov[2];
        int n = 0;
        if (c->out_off < c->head_out_len)
            iov[n++] = (struct iovec){ c->head_out + c->out_off, c->head_out_len - c->out_off };
        size_t boff = c->out_off > c->head_out_len ? c->out_off - c->head_out_len : 0;
        if (boff < body_len)
            iov[n++] = (struct iovec){ c->rep.body.data + boff, body_len - boff };
        ssize_t w = writev(c->fd, iov, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (w <= 0)
            return -1;
        c->out_off += (size_t)w;
        c->deadline = util_mono_us() + (int64_t)LIMIT_WRITE_MS * 1000;
    }
    return c->rep.file.set && !c->head ? conn_flush_file(c) : 1;
}

/* Returns 1 when the connection is ready for its next request, 0 when it is closing. */
static int conn_finish_write(struct conn *c)
{
    int64_t now = util_mono_us();
    conn_log(c, now);
    reply_file_drop(&c->rep);
    if (c->owner) {
        conn_handover(c);
        return 0;
    }
    if (!c->keep_alive || stopping) {
        conn_linger(c, now);
        return 0;
    }
    conn_idle(c, now);
    return 1;
}

/* Replaces whatever reply was built with an error in the API's JSON shape. */
static void reply_error(struct conn *c, int status, const char *code, const char *msg)
{
    struct server_reply *r = &c->rep;
    buf_reset(&r->body);
    buf_reset(&r->headers);
    reply_file_drop(r);
    r->status = status;
    r->content_type = NULL;
    /* msg and code are our own constants (no escaping needed); "message" repeats "error"
     * because the SDKs show only that field */
    buf_printf(&r->body, "{\"error\":\"%s\",\"message\":\"%s\",\"code\":\"%s\","
               "\"request_id\":\"%s\"}", msg, msg, code, c->rid);
}

/* The head of a taken connection's answer: its body is the owner's and lasts until close,
 * so no Content-Length; a 101 has no body at all (no Content-Type). */
static int conn_head_taken(struct conn *c)
{
    struct server_reply *r = &c->rep;
    const char *ct = r->status == 101 ? NULL
                     : r->content_type ? r->content_type : "application/json; charset=utf-8";
    buf_reset(&r->body);
    return snprintf(c->head_out, sizeof c->head_out,
                    "HTTP/1.1 %d %s\r\nDate: %s\r\n%s%s%sX-Request-ID: %s\r\n%s%.*s\r\n",
                    r->status, http_status_reason(r->status), http_date(),
                    ct ? "Content-Type: " : "", ct ? ct : "", ct ? "\r\n" : "", c->rid,
                    r->status == 101 ? "" : "Connection: close\r\n",
                    (int)r->headers.len, r->headers.data ? r->headers.data : "");
}

/* Serializes the status line and headers, then writes as much as the socket takes.
 * Returns 1 when written and ready for the next request, 0 when the rest goes out on
 * POLLOUT or the connection is closing, -1 when it was closed (c is gone). */
static int conn_send(struct conn *c)
{
    struct server_reply *r = &c->rep;
    /* Past LIMIT_REPLY_TOTAL a large reply to a GET (nothing happened that a retry would
     * repeat) is dropped for a 503. One large reply always goes out, so no answer is too
     * big to give; replies to other methods (a synchronous run's output) are not refused:
     * their work is done, and they are few (one per parked run). */
    int safe = strcmp(c->method, "GET") == 0 || strcmp(c->method, "HEAD") == 0;
    size_t others = replies_held - c->rep_held;
    if (safe && !r->body.failed && r->body.cap > KEEP_BYTES && others > 0 &&
        others + r->body.cap > LIMIT_REPLY_TOTAL) {
        buf_free(&r->body);
        reply_error(c, 503, "INTERNAL_ERROR", "busy: too many large responses unread, retry later");
    }
    if (r->body.failed)   /* the handler's reply did not fit: say so instead */
        reply_error(c, 500, "INTERNAL_ERROR", "response too large");
    if (r->headers.failed)
        buf_reset(&r->headers);
    if (stopping)
        c->keep_alive = 0;
    if (on_reply && c->token)
        on_reply(c->token, r);
    c->token = 0;
    int n = c->owner ? conn_head_taken(c) :
            snprintf(c->head_out, sizeof c->head_out,
                     "HTTP/1.1 %d %s\r\nDate: %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "X-Request-ID: %s\r\n%s%.*s\r\n",
                     r->status, http_status_reason(r->status), http_date(),
                     r->content_type ? r->content_type : "application/json; charset=utf-8",
                     r->file.set ? (size_t)r->file.len : r->body.len, c->rid,
                     !c->keep_alive ? "Connection: close\r\n"
                     : c->req.minor == 0 ? "Connection: keep-alive\r\n" : "",
                     (int)r->headers.len, r->headers.data ? r->headers.data : "");
    c->head_out_len = n > 0 && (size_t)n < sizeof c->head_out ? (size_t)n : 0;
    c->out_off = 0;
    c->file_sent = 0;
    conn_reply_account(c);
    c->state = ST_WRITE;
    int done = conn_flush(c);
    if (done < 0) {
        conn_close(c);
        return -1;
    }
    if (done)
        return conn_finish_write(c);
    conn_watch(c, POLLOUT);
    return 0;
}

/* An answer the server gives by itself (limits, malformed requests), then closes. */
static int conn_error(struct conn *c, int status, const char *code, const char *msg)
{
    reply_error(c, status, code, msg);
    c->rep.note = NULL;
    c->keep_alive = 0;
    if (!c->started)
        c->started = util_mono_us();
    return conn_send(c);
}

/* ---- requests ---- */

static int rid_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '-' || ch == '_' || ch == '.' || ch == ':';
}

/* Echo the client's X-Request-ID when it is short and plain; else make one. */
static void conn_request_id(struct conn *c)
{
    const struct http_header *h = http_find_header(&c->req, "x-request-id");
    if (h && h->value_len > 0 && h->value_len <= LIMIT_REQUEST_ID) {
        size_t i = 0;
        while (i < h->value_len && rid_char(h->value[i]))
            i++;
        if (i == h->value_len) {
            memcpy(c->rid, h->value, i);
            c->rid[i] = 0;
            return;
        }
    }
    snprintf(c->rid, sizeof c->rid, "req_%s%08x", rid_prefix, ++rid_counter);
}

static void conn_note_request(struct conn *c)
{
    size_t m = c->req.method_len < sizeof c->method - 1 ? c->req.method_len : sizeof c->method - 1;
    memcpy(c->method, c->req.method, m);
    c->method[m] = 0;
    size_t p = c->req.target_len < sizeof c->path - 1 ? c->req.target_len : sizeof c->path - 1;
    memcpy(c->path, c->req.target, p);
    c->path[p] = 0;
    char *q = strchr(c->path, '?');
    if (q)
        *q = 0;   /* queries stay out of logs: they may carry names users consider private */
}

/* Drops the current request's bytes from in[], keeping what was pipelined after it. */
static void conn_consume(struct conn *c, size_t n)
{
    memmove(c->in, c->in + n, c->in_len - n);
    c->in_len -= n;
}

/* Calls the handler, drops `consume` bytes of in[] (the body may have been viewed there),
 * then sends the reply. Returns as conn_send does; 0 when parked. */
static int conn_dispatch(struct conn *c, const char *body, size_t body_len, size_t consume)
{
    struct server_request rq = { .http = &c->req, .request_id = c->rid };
    c->head = c->req.method_len == 4 && memcmp(c->req.method, "HEAD", 4) == 0;
    rq.method = c->head ? "GET" : c->req.method;
    rq.method_len = c->head ? 3 : c->req.method_len;
    rq.head = c->head;
    http_split_target(c->req.target, c->req.target_len, &rq.path, &rq.path_len, &rq.query,
                      &rq.query_len);
    rq.body = body;
    rq.body_len = body_len;
    c->reqgen = ++reqgen_next;
    rq.token = (uint64_t)c->slot << 32 | c->reqgen;
    c->token = rq.token;

    struct server_reply *r = &c->rep;
    buf_reset(&r->body);
    buf_reset(&r->headers);
    r->status = 500;
    r->content_type = NULL;
    r->note = NULL;
    r->file.set = 0;
    int rc = c->second ? second.handler(second.ctx, &rq, r) : handler(handler_ctx, &rq, r);
    r->note = rq.note;
    conn_consume(c, consume);
    if (c->leftover) {
        memcpy(c->in, c->body.data + c->body.len, c->leftover);
        c->in_len = c->leftover;
        c->leftover = 0;
    }
    if (rc == SERVER_TAKEN && stopping) {   /* its owner was already told to stop */
        rq.owner->take(rq.owner_ctx, -1, NULL, 0);
        reply_error(c, 503, "INTERNAL_ERROR", "shutting down");
        c->keep_alive = 0;
    } else if (rc == SERVER_TAKEN) {
        c->owner = rq.owner;
        c->owner_ctx = rq.owner_ctx;
        c->keep_alive = 0;
        int known = 0;
        for (int i = 0; i < nowners; i++)
            known |= owners[i] == rq.owner;
        if (!known && nowners < OWNERS_MAX)
            owners[nowners++] = rq.owner;
    }
    if (rc == SERVER_PARKED) {
        c->state = ST_PARKED;
        c->deadline = 0;   /* the process's own timeout bounds the wait */
        conn_watch(c, POLLRDHUP);
        return 0;
    }
    return conn_send(c);
}

static int status_for_parse(int r, const char **code, const char **msg)
{
    *code = "INVALID_REQUEST";
    switch (r) {
    case HTTP_HEADERS_TOO_LARGE: *msg = "request header fields too large"; return 431;
    case HTTP_URI_TOO_LONG:      *msg = "request-target too long"; return 414;
    case HTTP_BAD_VERSION:       *msg = "HTTP version not supported"; return 505;
    default:                     *msg = "malformed HTTP request"; return 400;
    }
}

static int conn_framing_error(struct conn *c, int status)
{
    switch (status) {
    case 501: return conn_error(c, 501, "INVALID_REQUEST", "transfer coding not implemented");
    case 417: return conn_error(c, 417, "INVALID_REQUEST", "expectation not supported");
    default:  return conn_error(c, status, "INVALID_REQUEST", "malformed HTTP request framing");
    }
}

static void conn_continue(struct conn *c)
{
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    if (c->framing.expect_continue && c->req.minor == 1) {
        /* 25 bytes into an empty socket buffer: a short write here means the peer is gone. */
        if (send(c->fd, cont, sizeof cont - 1, MSG_NOSIGNAL) < 0 && errno != EAGAIN)
            c->keep_alive = 0;
        c->framing.expect_continue = 0;
    }
}

/* Feeds `added` raw bytes at body[before..] to the chunked decoder. Returns 1 when the body
 * is complete, 0 when more is needed, -1 when malformed. Bytes after the body (a pipelined
 * request) stay right after the decoded data until conn_dispatch moves them into in[]:
 * in[] still holds the headers the handler will read. */
static int conn_chunked_feed(struct conn *c, size_t before, size_t added)
{
    size_t n = added;
    ssize_t r = http_chunked_decode(&c->chunked, c->body.data + before, &n);
    c->body.len = before + n;
    if (r == HTTP_INCOMPLETE)
        return 0;
    if (r < 0)
        return -1;
    c->leftover = (size_t)r;   /* fewer than CHUNK_READ, so it fits in[] */
    return 1;
}

/* The request has a body: answer now if it is all here, else wait in ST_BODY.
 * Returns as conn_send does (0 while waiting). */
static int conn_start_body(struct conn *c)
{
    size_t avail = c->in_len - c->head_len;
    if (c->framing.body == HTTP_BODY_LENGTH && avail >= c->framing.length) {
        /* the whole body is already here: handle it in place, no copy */
        size_t len = (size_t)c->framing.length;
        return conn_dispatch(c, c->in + c->head_len, len, c->head_len + len);
    }
    buf_reset(&c->body);
    if (bodies_held > LIMIT_BODY_TOTAL)
        return conn_error(c, 503, "INTERNAL_ERROR", "busy: too many request bodies in flight");
    if (buf_append(&c->body, c->in + c->head_len, avail) < 0)
        return conn_error(c, 500, "INTERNAL_ERROR", "out of memory");
    conn_body_account(c);
    c->in_len = 0;
    /* avail 0: body.data may still be NULL, and NULL + 0 is undefined (UBSan in the
     * sanitizer pass); no bytes cannot complete a chunked body anyway */
    if (c->framing.body == HTTP_BODY_CHUNKED && avail > 0) {
        int done = conn_chunked_feed(c, 0, avail);
        if (done < 0)
            return conn_error(c, 400, "INVALID_REQUEST", "malformed chunked body");
        if (done)
            return conn_dispatch(c, c->body.data, c->body.len, 0);
    }
    c->state = ST_BODY;
    c->deadline = util_mono_us() + (int64_t)LIMIT_BODY_MS * 1000;
    conn_continue(c);
    return 0;
}

/* ---- streamed request bodies (server_set_body_hook) ---- */

#define STREAM_NOT (-2)   /* conn_stream_start: the hook wants the body buffered */

/* Ends a stream early or after its end callback: abort owed unless ended. */
static void conn_stream_stop(struct conn *c, int aborted)
{
    if (!c->streaming)
        return;
    c->streaming = 0;
    if (aborted)
        c->sink.abort(c->sink.ctx);
    free(c->sbuf);
    c->sbuf = NULL;
}

/* Offers the sink what is decoded; ends the request once all is decoded and taken.
 * Returns as conn_send does; 0 while the body goes on or the sink is busy. */
static int conn_stream_drain(struct conn *c)
{
    if (c->s_pend > 0) {
        size_t took = c->sink.data(c->sink.ctx, c->sbuf, c->s_pend);
        if (took < c->s_pend) {   /* busy: stop reading until server_body_resume */
            memmove(c->sbuf, c->sbuf + took, c->s_pend - took);
            c->s_pend -= took;
            c->s_busy = 1;
            c->deadline = 0;
            conn_watch(c, 0);
            return 0;
        }
        c->s_pend = 0;
    }
    c->s_busy = 0;
    if (!c->s_done) {
        c->deadline = util_mono_us() + (int64_t)LIMIT_BODY_MS * 1000;   /* per progress */
        conn_watch(c, POLLIN);
        return 0;
    }
    c->streaming = 0;
    c->sink.end(c->sink.ctx, &c->rep);
    free(c->sbuf);
    c->sbuf = NULL;
    return conn_send(c);
}

/* n raw body bytes arrived at sbuf[s_pend..]: decode them (chunked in place; bytes after
 * the last chunk go back to in[] for the next request), then drain. */
static int conn_stream_input(struct conn *c, size_t n)
{
    if (c->framing.body == HTTP_BODY_CHUNKED) {
        if (n == 0)
            return conn_stream_drain(c);
        size_t k = n;
        ssize_t r = http_chunked_decode(&c->chunked, c->sbuf + c->s_pend, &k);
        c->s_pend += k;
        if (r < HTTP_INCOMPLETE || (r >= 0 && (size_t)r > sizeof c->in - c->in_len)) {
            conn_stream_stop(c, 1);
            return conn_error(c, 400, "INVALID_REQUEST", "malformed chunked body");
        }
        if (r >= 0) {
            memcpy(c->in + c->in_len, c->sbuf + c->s_pend, (size_t)r);
            c->in_len += (size_t)r;
            c->s_done = 1;
        }
    } else {
        c->s_pend += n;
        c->s_got += n;
        c->s_done = c->s_got == c->framing.length;
    }
    return conn_stream_drain(c);
}

/* Asks the body hook about the request whose headers are in. Returns STREAM_NOT to buffer
 * the body as usual, else as conn_send does (0 while streaming). */
static int conn_stream_start(struct conn *c)
{
    struct server_request rq = { .http = &c->req, .request_id = c->rid };
    c->head = c->req.method_len == 4 && memcmp(c->req.method, "HEAD", 4) == 0;
    rq.method = c->head ? "GET" : c->req.method;
    rq.method_len = c->head ? 3 : c->req.method_len;
    rq.head = c->head;
    http_split_target(c->req.target, c->req.target_len, &rq.path, &rq.path_len, &rq.query,
                      &rq.query_len);
    rq.body = "";
    c->reqgen = ++reqgen_next;
    rq.token = (uint64_t)c->slot << 32 | c->reqgen;
    struct server_reply *r = &c->rep;
    buf_reset(&r->body);
    buf_reset(&r->headers);
    r->status = 500;
    r->content_type = NULL;
    r->note = NULL;
    r->file.set = 0;
    struct server_sink sink = { 0 };
    int rc = c->second ? second.body_hook(second.ctx, &rq, r, &sink)
                       : body_hook(handler_ctx, &rq, r, &sink);
    r->note = rq.note;
    if (rc == SERVER_ANSWERED) {   /* the body stays unread: close after the answer */
        c->keep_alive = 0;
        conn_consume(c, c->head_len);
        return conn_send(c);
    }
    if (rc != SERVER_STREAM)
        return STREAM_NOT;
    c->sbuf = malloc(LIMIT_FILES_IO);
    if (!c->sbuf) {
        sink.abort(sink.ctx);
        return conn_error(c, 503, "INTERNAL_ERROR", "busy: out of memory for the body");
    }
    c->sink = sink;
    c->streaming = 1;
    c->s_pend = 0;
    c->s_got = 0;
    c->s_done = 0;
    c->s_busy = 0;
    memset(&c->chunked, 0, sizeof c->chunked);
    size_t avail = c->in_len - c->head_len;   /* < LIMIT_FILES_IO: it fitted in[] */
    if (c->framing.body == HTTP_BODY_LENGTH && avail > c->framing.length)
        avail = (size_t)c->framing.length;   /* the rest is a pipelined request */
    memcpy(c->sbuf, c->in + c->head_len, avail);
    conn_consume(c, c->head_len + avail);
    c->state = ST_STREAM;
    conn_continue(c);
    return conn_stream_input(c, avail);
}

static void conn_read_stream(struct conn *c)
{
    if (c->s_busy)
        return;
    size_t want = LIMIT_FILES_IO - c->s_pend;
    if (c->framing.body == HTTP_BODY_LENGTH && c->framing.length - c->s_got < want)
        want = (size_t)(c->framing.length - c->s_got);
    /* chunked: what follows the last chunk must fit back into in[] */
    if (c->framing.body == HTTP_BODY_CHUNKED && sizeof c->in - c->in_len < want)
        want = sizeof c->in - c->in_len;
    if (want == 0)
        return;
    ssize_t n = read(c->fd, c->sbuf + c->s_pend, want);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        conn_close(c);   /* cut off mid-body: the sink aborts, nothing to answer */
        return;
    }
    if (n < 0)
        return;
    if (conn_stream_input(c, (size_t)n) > 0)
        conn_process(c);
}

/* Parses and answers the request at the start of in[]. Returns 1 when it was answered
 * and the connection is ready for the next one, else 0 (waiting, or closed). */
static int conn_next_request(struct conn *c)
{
    if (!c->started) {
        c->started = util_mono_us();
        c->deadline = c->started + (int64_t)LIMIT_HEADER_MS * 1000;
    }
    int r = http_parse_request(c->in, c->in_len, &c->req);
    if (r == HTTP_INCOMPLETE && c->in_len < sizeof c->in) {
        /* a field line that already dooms the request (a second Content-Length, say) is
         * answered now: the client may never send the blank line that ends the block */
        int early = http_request_early(&c->req);
        if (!early)
            return 0;
        conn_request_id(c);
        conn_note_request(c);
        return conn_framing_error(c, early) > 0;
    }
    if (r < 0) {
        const char *code = "INVALID_REQUEST", *msg = "request header fields too large";
        int status = r == HTTP_INCOMPLETE ? 431 : status_for_parse(r, &code, &msg);
        snprintf(c->rid, sizeof c->rid, "req_%s%08x", rid_prefix, ++rid_counter);
        strcpy(c->method, "-");
        strcpy(c->path, "-");
        conn_error(c, status, code, msg);
        return 0;
    }
    c->head_len = (size_t)r;
    conn_request_id(c);
    conn_note_request(c);
    int status = http_request_framing(&c->req, &c->framing);
    if (status)
        return conn_framing_error(c, status) > 0;
    c->keep_alive = c->framing.keep_alive;
    if ((c->second ? second.body_hook : body_hook) && c->framing.body != HTTP_BODY_NONE) {
        int sr = conn_stream_start(c);
        if (sr != STREAM_NOT)
            return sr > 0;
    }
    if (c->framing.body == HTTP_BODY_NONE)
        return conn_dispatch(c, "", 0, c->head_len) > 0;
    if (c->framing.body == HTTP_BODY_LENGTH && c->framing.length > LIMIT_BODY_BYTES)
        return conn_error(c, 413, "PAYLOAD_TOO_LARGE", "request body too large") > 0;
    memset(&c->chunked, 0, sizeof c->chunked);
    return conn_start_body(c) > 0;
}

static void conn_process(struct conn *c)
{
    while (c->state == ST_HEAD && c->in_len > 0)
        if (!conn_next_request(c))
            return;
}

/* Body bytes arrived while in ST_BODY. */
static void conn_read_body(struct conn *c)
{
    size_t before = c->body.len;
    /* Content-Length: never read past this request. Chunked: at most CHUNK_READ, so the
     * bytes after the last chunk always fit back into in[]. Memory grows with what
     * arrives, not with what the client announced. */
    size_t want = CHUNK_READ;
    if (c->framing.body == HTTP_BODY_LENGTH && (size_t)c->framing.length - before < want)
        want = (size_t)c->framing.length - before;
    if (c->body.len + want > c->body.cap && bodies_held > LIMIT_BODY_TOTAL) {
        conn_error(c, 503, "INTERNAL_ERROR", "busy: too many request bodies in flight");
        return;
    }
    if (buf_reserve(&c->body, want) < 0) {
        conn_error(c, 413, "PAYLOAD_TOO_LARGE", "request body too large");
        return;
    }
    conn_body_account(c);
    ssize_t n = read(c->fd, c->body.data + before, want);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        conn_close(c);   /* the client gave up mid-body: nothing to answer */
        return;
    }
    if (n < 0)
        return;
    if (c->framing.body == HTTP_BODY_LENGTH) {
        c->body.len += (size_t)n;
        if (c->body.len == c->framing.length && conn_dispatch(c, c->body.data, c->body.len, 0) > 0)
            conn_process(c);
        return;
    }
    int done = conn_chunked_feed(c, before, (size_t)n);
    if (done < 0) {
        conn_error(c, 400, "INVALID_REQUEST", "malformed chunked body");
    } else if (c->body.len > LIMIT_BODY_BYTES) {
        conn_error(c, 413, "PAYLOAD_TOO_LARGE", "request body too large");
    } else if (done && conn_dispatch(c, c->body.data, c->body.len, 0) > 0) {
        conn_process(c);
    }
}

static void conn_readable(struct conn *c)
{
    if (c->state == ST_STREAM) {
        conn_read_stream(c);
        return;
    }
    if (c->state == ST_BODY) {
        conn_read_body(c);
        return;
    }
    if (c->state == ST_LINGER) {
        char sink[4096];
        ssize_t n = read(c->fd, sink, sizeof sink);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
            conn_close(c);
        return;
    }
    if (c->in_len == sizeof c->in)
        return;   /* conn_process answers 431 for a full buffer */
    ssize_t n = read(c->fd, c->in + c->in_len, sizeof c->in - c->in_len);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        conn_close(c);   /* EOF before a complete request: nothing to answer */
        return;
    }
    if (n < 0)
        return;
    c->in_len += (size_t)n;
    conn_process(c);
}

static void conn_on_event(void *ctx, int fd, short revents)
{
    struct conn *c = ctx;
    (void)fd;
    if (c->state == ST_PARKED) {
        if (revents & (POLLRDHUP | POLLHUP | POLLERR))
            conn_close(c);   /* the process goes on; its record keeps the result */
        return;
    }
    if (c->state == ST_WRITE) {
        if (revents & (POLLERR | POLLHUP)) {
            conn_close(c);
            return;
        }
        int done = conn_flush(c);
        if (done < 0)
            conn_close(c);
        else if (done && conn_finish_write(c))
            conn_process(c);   /* a pipelined request may already be in in[] */
        return;
    }
    if (c->state == ST_STREAM && c->s_busy) {   /* not reading; only a hangup matters */
        if (revents & (POLLHUP | POLLERR))
            conn_close(c);
        return;
    }
    if (revents & (POLLIN | POLLHUP | POLLERR | POLLRDHUP))
        conn_readable(c);
}

/* ---- accepting ---- */

static void conn_new(int fd, int is_second)
{
    int slot = 0;
    while (slot < LIMIT_CONNECTIONS && conns[slot])
        slot++;
    struct conn *c = slot < LIMIT_CONNECTIONS ? malloc(sizeof *c) : NULL;
    if (!c || loop_add(fd, POLLIN, conn_on_event, c) < 0) {
        free(c);
        close(fd);
        return;
    }
    memset(c, 0, offsetof(struct conn, in));
    c->fd = fd;
    c->slot = slot;
    c->second = is_second;
    buf_init(&c->body, LIMIT_BODY_BYTES + CHUNK_READ);
    buf_init(&c->rep.body, LIMIT_RESPONSE_BYTES);
    buf_init(&c->rep.headers, REPLY_HEADERS);
    conns[slot] = c;
    nconns++;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    conn_idle(c, util_mono_us());
    c->deadline = util_mono_us() + (int64_t)LIMIT_HEADER_MS * 1000;
}

static void on_accept(void *ctx, int fd, short revents)
{
    int is_second = ctx != NULL;
    (void)revents;
    for (int i = 0; i < ACCEPT_BURST; i++) {
        if (nconns + owned >= LIMIT_CONNECTIONS) {
            loop_set(fd, 0);   /* resumed by conn_close; the kernel backlog holds the rest */
            return;
        }
        int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd >= 0) {
            conn_new(cfd, is_second);
            continue;
        }
        if (errno == EINTR || errno == ECONNABORTED)
            continue;
        if ((errno == EMFILE || errno == ENFILE) && spare_fd >= 0) {
            /* Out of descriptors: accept with the spare one and close at once, so the
             * pending connection does not keep poll() reporting the listener ready. */
            close(spare_fd);
            cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
            if (cfd >= 0)
                close(cfd);
            spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
            log_line("level=warn event=accept_dropped reason=\"out of descriptors\"");
        }
        return;
    }
}

/* ---- API ---- */

int server_start(int fd, server_handler *h, void *ctx)
{
    handler = h;
    handler_ctx = ctx;
    listen_fd = fd;
    util_random_hex(rid_prefix, 8);
    spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    return loop_add(fd, POLLIN, on_accept, NULL);
}

int server_listen_second(int fd, server_handler *h, server_body_hook *hook, void *ctx)
{
    second.fd = fd;
    second.handler = h;
    second.body_hook = hook;
    second.ctx = ctx;
    return loop_add(fd, POLLIN, on_accept, &second);
}

int64_t server_tick(int64_t now)
{
    int64_t next = -1;
    /* slots are taken lowest first: stop after the last live one, not at slot 1023 (this
     * runs every loop round, one per 64 KiB of a chatty child's output: 11% of its CPU) */
    int left = nconns;
    for (int i = 0; i < LIMIT_CONNECTIONS && left > 0; i++) {
        struct conn *c = conns[i];
        if (!c)
            continue;
        left--;
        if (!c->deadline)
            continue;
        if (c->deadline <= now) {
            if (c->state == ST_HEAD && c->in_len > 0 && c->started) {
                snprintf(c->rid, sizeof c->rid, "req_%s%08x", rid_prefix, ++rid_counter);
                strcpy(c->method, "-");
                strcpy(c->path, "-");
                conn_error(c, 408, "INVALID_REQUEST", "request header timeout");
            } else if (c->state == ST_BODY) {
                conn_error(c, 408, "INVALID_REQUEST", "request body timeout");
            } else if (c->state == ST_STREAM) {
                conn_stream_stop(c, 1);   /* no byte for LIMIT_BODY_MS */
                conn_error(c, 408, "INVALID_REQUEST", "request body timeout");
            } else {
                conn_close(c);   /* idle, stalled writer, or lingering: just go */
                continue;
            }
            c = conns[i];
            if (!c || !c->deadline)
                continue;
        }
        if (next < 0 || c->deadline < next)
            next = c->deadline;
    }
    return next;
}

struct server_reply *server_parked(uint64_t token)
{
    uint32_t slot = (uint32_t)(token >> 32);
    if (slot >= LIMIT_CONNECTIONS)
        return NULL;
    struct conn *c = conns[slot];
    if (!c || c->state != ST_PARKED || c->reqgen != (uint32_t)token)
        return NULL;
    return &c->rep;
}

void server_resume(uint64_t token)
{
    if (!server_parked(token))
        return;
    struct conn *c = conns[(uint32_t)(token >> 32)];
    if (conn_send(c) > 0)
        conn_process(c);
}

void server_on_reply(void (*fn)(uint64_t token, const struct server_reply *rep))
{
    on_reply = fn;
}

void server_shutdown(void)
{
    stopping = 1;
    if (listen_fd >= 0) {
        loop_del(listen_fd);
        close(listen_fd);
        listen_fd = -1;
    }
    if (second.fd >= 0) {
        loop_del(second.fd);
        close(second.fd);
        second.fd = -1;
    }
    for (int i = 0; i < LIMIT_CONNECTIONS; i++)
        if (conns[i] && conns[i]->state == ST_HEAD && conns[i]->in_len == 0)
            conn_close(conns[i]);
    for (int i = 0; i < nowners; i++)
        if (owners[i]->stop)
            owners[i]->stop();
}

void server_set_body_hook(server_body_hook *hook)
{
    body_hook = hook;
}

void server_body_resume(uint64_t token)
{
    uint32_t slot = (uint32_t)(token >> 32);
    if (slot >= LIMIT_CONNECTIONS)
        return;
    struct conn *c = conns[slot];
    if (!c || c->state != ST_STREAM || c->reqgen != (uint32_t)token || !c->s_busy)
        return;
    if (conn_stream_drain(c) > 0)
        conn_process(c);
}

void server_reply_file(struct server_reply *rep, int fd, uint64_t off, uint64_t len)
{
    reply_file_drop(rep);
    rep->file.set = 1;
    rep->file.fd = fd;
    rep->file.off = off;
    rep->file.len = len;
}

int server_connections(void)
{
    return nconns + owned;
}

void server_release(void)
{
    owned--;
    listeners_resume();
}
