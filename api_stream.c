#include "api_stream.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_proc.h"
#include "api_term.h"
#include "follow.h"
#include "json.h"
#include "limits.h"
#include "proc.h"
#include "server.h"
#include "timer.h"
#include "util.h"
#include "ws.h"
#include "wsconn.h"

#define PUMP_FRAMES  16                       /* messages per reader per loop round */
#define MSG_MAX      (LIMIT_STREAM_CHUNK * 6 + 65536)   /* a chunk JSON-escaped, worst case */
#define WAITERS_MAX  (4 * LIMIT_CONNECTIONS)  /* parked ?wait= requests (gone clients' too) */

enum kind {
    K_SSE,   /* GET .../stream: Server-Sent Events */
    K_WS,    /* GET .../stream with an upgrade */
    K_SDK,   /* WS /execute/stream: starts the process itself, SDK message shapes */
};

enum sdk_state { SDK_WAIT, SDK_RUN, SDK_COMPLETE };

/* One client following one record from its own offsets. */
struct reader {
    enum kind kind;
    const struct api_ctx *c;
    struct wsconn *w;          /* NULL until the server hands the connection over */
    struct follow f;           /* f.p: NULL before the SDK's execute, or once the record is
                                * gone; f.off: next stdout, stderr offset to send */
    int gone;                  /* the record was evicted or forgotten under us */
    int closing;               /* the last message is out: no more sends */
    enum sdk_state sdk;
    int64_t next_at;           /* K_SDK: no frame before this (LIMIT_SDK_GAP_MS spacing) */
    int64_t first_by;          /* K_SDK: the execute message is due by then */
    int result_sent;           /* K_SDK: result sent, complete next */
    int completes;             /* K_SDK: complete sent this many times */
    struct timer timer;
};

/* A parked GET /execute/processes/{id}?wait=. */
struct waiter {
    uint64_t token;
    struct proc *p;            /* NULL once the record is gone */
    struct timer timer;
    struct waiter *prev, *next;
};

static struct waiter *waiters;
static int nwaiters;
static struct buf msg;                        /* every message is built here, then sent */

static void pump(struct reader *r);

/* ---- messages ---- */

static struct buf *msg_start(void)
{
    if (!msg.max)
        buf_init(&msg, MSG_MAX);
    buf_reset(&msg);
    return &msg;
}

static void msg_send(struct reader *r)
{
    if (!msg.failed)
        wsconn_send(r->w, WS_TEXT, msg.data, msg.len);
    if (msg.cap > 2 * LIMIT_STREAM_CHUNK)   /* a record's rendering was large: give it back */
        buf_free(&msg);
}

static void put_now(struct buf *b)
{
    char ts[25];
    util_rfc3339(util_wall_ms(), ts);
    json_put_key(b, "timestamp");
    json_put_cstr(b, ts);
}

static const char *const stream_names[2] = { "stdout", "stderr" };

/* SSE: "id: <stdout offset>,<stderr offset>" (where a reconnect resumes), the event name,
 * then the data line; the JSON never holds a raw newline. */
static void sse_head(struct reader *r, struct buf *b, const char *event)
{
    buf_printf(b, "id: %llu,%llu\nevent: %s\ndata: ", (unsigned long long)r->f.off[0],
               (unsigned long long)r->f.off[1], event);
}

static void send_output(struct reader *r, int s, uint64_t at, const char *data, size_t n)
{
    struct buf *b = msg_start();
    if (r->kind == K_SSE) {
        sse_head(r, b, stream_names[s]);
        buf_putc(b, '{');
    } else {
        buf_putc(b, '{');
        json_put_key(b, "type");
        json_put_cstr(b, stream_names[s]);
    }
    json_put_key(b, "data");
    json_put_str(b, data, n);
    if (r->kind == K_SDK) {
        put_now(b);
    } else {
        json_put_key(b, "offset");
        json_put_int(b, (int64_t)at);
    }
    buf_puts(b, r->kind == K_SSE ? "}\n\n" : "}");
    msg_send(r);
}

static void send_gap(struct reader *r, int s, uint64_t gap, uint64_t at)
{
    struct buf *b = msg_start();
    if (r->kind == K_SSE) {
        sse_head(r, b, "gap");
        buf_putc(b, '{');
    } else {
        buf_putc(b, '{');
        json_put_key(b, "type");
        json_put_cstr(b, "gap");
    }
    json_put_key(b, "stream");
    json_put_cstr(b, stream_names[s]);
    json_put_key(b, "gap");
    json_put_int(b, (int64_t)gap);
    json_put_key(b, "offset");
    json_put_int(b, (int64_t)at);
    buf_puts(b, r->kind == K_SSE ? "}\n\n" : "}");
    msg_send(r);
}

/* An error message: SSE "event: error", WebSocket {type:"error", error, code}. */
static void send_error(struct reader *r, const char *code, const char *text)
{
    struct buf *b = msg_start();
    if (r->kind == K_SSE)
        buf_puts(b, "event: error\ndata: ");
    buf_putc(b, '{');
    if (r->kind != K_SSE) {
        json_put_key(b, "type");
        json_put_cstr(b, "error");
    }
    json_put_key(b, "error");
    json_put_cstr(b, text);
    json_put_key(b, "message");
    json_put_cstr(b, text);
    json_put_key(b, "code");
    json_put_cstr(b, code);
    buf_puts(b, r->kind == K_SSE ? "}\n\n" : "}");
    msg_send(r);
}

/* The last message of a process stream: the record, without its output (sent already). */
static void send_exit(struct reader *r)
{
    struct buf *b = msg_start();
    if (r->kind == K_SSE) {
        sse_head(r, b, "exit");
        api_proc_record(b, r->f.p, 0);
        buf_puts(b, "\n\n");
    } else {
        buf_puts(b, "{\"type\":\"exit\",");
        size_t at = b->len;
        api_proc_record(b, r->f.p, 0);
        if (!b->failed && b->len > at && b->data[at] == '{')   /* merge the record's members */
            memmove(b->data + at, b->data + at + 1, --b->len - at);
    }
    msg_send(r);
}

/* K_SDK: result, then (spaced) complete; both carry exit_code and execution_time, since
 * the SDK may lose either. p NULL: the run never started (complete says so). */
static void send_sdk_final(struct reader *r, const char *type)
{
    struct proc *p = r->f.p;
    struct buf *b = msg_start();
    buf_putc(b, '{');
    json_put_key(b, "type");
    json_put_cstr(b, type);
    if (!strcmp(type, "complete")) {
        json_put_key(b, "success");
        json_put_bool(b, p && p->reason == PROC_R_EXIT && p->exit_code == 0);
    }
    json_put_key(b, "exit_code");
    if (p)
        json_put_int(b, p->exit_code);
    else
        json_put_null(b);
    json_put_key(b, "execution_time");
    json_put_num(b, p ? proc_runtime(p) : 0, 3);
    if (p && !strcmp(type, "result")) {
        json_put_key(b, "status");
        json_put_cstr(b, p->reason == PROC_R_EXIT && p->exit_code == 0 ? "completed" : "failed");
        json_put_key(b, "process_id");
        json_put_cstr(b, p->id);
    }
    put_now(b);
    buf_putc(b, '}');
    msg_send(r);
}

/* ---- reading the rings ---- */

/* K_SDK's last message. The SDK waits for "complete" forever when it loses it (several
 * frames in one TCP read, e.g. when node stalls under load), and closes the socket once it
 * has it: so complete is sent again every LIMIT_SDK_REPEAT_MS until the client closes, at
 * most LIMIT_SDK_REPEATS times, then the server closes. Returns 1 (a message was sent). */
static int sdk_complete(struct reader *r)
{
    send_sdk_final(r, "complete");
    r->sdk = SDK_COMPLETE;
    if (++r->completes >= LIMIT_SDK_REPEATS) {
        r->closing = 1;
        wsconn_close(r->w, WS_CLOSE_NORMAL, NULL);
    }
    return 1;
}

/* Sends the next message the reader is due, if any. Returns 1 when one was sent. */
static int step(struct reader *r)
{
    if (r->gone && r->kind == K_SDK)
        return sdk_complete(r);
    if (r->gone) {
        send_error(r, "PROCESS_NOT_FOUND", "the record was removed while streaming");
        r->closing = 1;
        wsconn_close(r->w, WS_CLOSE_NORMAL, NULL);
        return 1;
    }
    if (!r->f.p)
        return 0;
    struct follow_span o;
    switch (follow_next(&r->f, FOLLOW_WHOLE_CHARS, &o)) {
    case FOLLOW_GAP:
        send_gap(r, o.stream, o.gap, o.at);
        return 1;
    case FOLLOW_DATA:
        send_output(r, o.stream, o.at, o.data, o.n);
        return 1;
    case FOLLOW_NONE:
        break;
    }
    int running = r->f.p->state != PROC_FINISHED;
    if (running)
        return 0;
    if (r->kind == K_SDK && !r->result_sent) {
        send_sdk_final(r, "result");
        r->result_sent = 1;
        return 1;
    }
    if (r->kind == K_SDK)
        return sdk_complete(r);
    send_exit(r);
    r->closing = 1;
    wsconn_close(r->w, WS_CLOSE_NORMAL, NULL);
    return 1;
}

/* Sends what the reader is due while its socket takes it: never more than one message
 * waits in wsconn, the rest stays in the ring. */
static void pump(struct reader *r)
{
    for (int i = 0; i < PUMP_FRAMES; i++) {
        if (!r->w || r->closing || wsconn_pending(r->w))
            return;   /* not yet taken over, done, or ops->writable calls again */
        int64_t now = util_mono_us();
        if (r->kind == K_SDK && now < r->next_at) {
            timer_arm(&r->timer, r->next_at);
            return;
        }
        if (!step(r))
            return;
        if (r->kind == K_SDK) {
            r->next_at = now + (int64_t)(r->sdk == SDK_COMPLETE ? LIMIT_SDK_REPEAT_MS
                                                                 : LIMIT_SDK_GAP_MS) * 1000;
            if (!r->closing)
                timer_arm(&r->timer, r->next_at);
            return;
        }
    }
    timer_arm(&r->timer, util_mono_us());   /* a fast client: go on next round, let others in */
}

/* ---- proc observer ---- */

/* A follower's record gained output, finished or went away. */
static void on_follow(struct follow *f, enum proc_event ev)
{
    struct reader *r = (struct reader *)((char *)f - offsetof(struct reader, f));
    if (ev == PROC_EV_OUTPUT) {
        pump(r);   /* reads the rings only: safe inside proc's notification */
        return;
    }
    if (ev == PROC_EV_EVICTED)
        r->gone = !r->closing;
    timer_arm(&r->timer, util_mono_us());   /* the last messages render the record: not in here */
}

/* Parked ?wait= requests: answered from their timers. */
static void on_proc(const struct proc *p, enum proc_event ev, int sig)
{
    (void)sig;
    if (ev != PROC_EV_FINISHED && ev != PROC_EV_EVICTED)
        return;
    int64_t now = util_mono_us();
    for (struct waiter *w = waiters; w; w = w->next) {
        if (w->p != p)
            continue;
        if (ev == PROC_EV_EVICTED)
            w->p = NULL;
        timer_arm(&w->timer, now);
    }
}

static void observe(void)
{
    proc_observe(on_proc);   /* registering again is a no-op */
}

/* ---- reader lifetime ---- */

static void reader_free(struct reader *r)
{
    timer_cancel(&r->timer);
    follow_stop(&r->f);
    free(r);
}

static void on_reader_timer(void *ctx)
{
    struct reader *r = ctx;
    if (r->kind == K_SDK && r->sdk == SDK_WAIT && r->w && !r->closing &&
        util_mono_us() >= r->first_by) {
        send_error(r, "INVALID_REQUEST", "no execute message came");
        r->gone = 1;   /* complete (with no exit code) follows, spaced */
        r->next_at = util_mono_us() + (int64_t)LIMIT_SDK_GAP_MS * 1000;
        timer_arm(&r->timer, r->next_at);
        return;
    }
    pump(r);
}

static struct reader *reader_new(const struct api_ctx *c, enum kind kind)
{
    struct reader *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->kind = kind;
    r->c = c;
    timer_init(&r->timer, on_reader_timer, r);
    follow_start(&r->f, NULL, on_follow);
    return r;
}

/* K_SDK: the client's one {type:"execute", code, language, timeout, workdir, env}. It is
 * decoded exactly as POST /execute/background's body. */
static void sdk_execute(struct reader *r, const char *data, size_t len)
{
    struct server_request rq = { .method = "POST", .method_len = 4, .body = data,
                                 .body_len = len, .request_id = "ws" };
    struct server_reply rp = { .status = 200 };
    buf_init(&rp.body, 65536);
    buf_init(&rp.headers, 1024);
    struct json_token *t = api_parse_body(&rq, &rp);
    struct proc *p = NULL;
    if (t) {
        int i = json_get(data, t, 0, "type");
        if (i >= 0 && (t[i].type != JSON_STRING || t[i].len != 7 ||
                       memcmp(data + t[i].start, "execute", 7) != 0))
            api_error(&rq, &rp, 400, "INVALID_REQUEST", "expected {\"type\": \"execute\", \"code\": ...}");
        else
            p = api_proc_start(r->c, &rq, &rp, 1, LIMIT_TIMEOUT_BG_S);
        free(t);
    }
    if (p) {
        r->f.p = p;
        r->sdk = SDK_RUN;
        pump(r);
    } else {
        /* the error as the route would answer it, as {type:"error", ...}; then complete */
        struct buf *b = msg_start();
        buf_puts(b, "{\"type\":\"error\",");
        if (rp.body.len > 1 && !rp.body.failed)
            buf_append(b, rp.body.data + 1, rp.body.len - 1);
        else
            buf_puts(b, "\"error\":\"cannot start\",\"code\":\"EXECUTION_FAILED\"}");
        msg_send(r);
        r->gone = 1;
        r->next_at = util_mono_us() + (int64_t)LIMIT_SDK_GAP_MS * 1000;
        timer_arm(&r->timer, r->next_at);
    }
    buf_free(&rp.body);
    buf_free(&rp.headers);
}

/* K_WS: what a follower may send. stdin and resize belong to the stdin/terminal work. */
static void ws_command(struct reader *r, const char *data, size_t len)
{
    struct server_request rq = { .body = data, .body_len = len, .request_id = "ws" };
    struct server_reply rp = { .status = 200 };
    buf_init(&rp.body, 4096);
    buf_init(&rp.headers, 256);
    struct json_token *t = api_parse_body(&rq, &rp);
    const char *err = "expected {\"type\": \"signal\", \"signal\": ...}";
    char text[160];
    const char *code = "INVALID_REQUEST";
    if (t) {
        int i = json_get(data, t, 0, "type");
        int s = json_get(data, t, 0, "signal");
        if (i >= 0 && t[i].type == JSON_STRING && t[i].len == 6 &&
            !memcmp(data + t[i].start, "signal", 6)) {
            int sig = s >= 0 && t[s].type == JSON_STRING
                      ? proc_signal_parse(data + t[s].start, t[s].len) : SIGTERM;
            if (sig <= 0)
                err = "unknown signal";
            else if (!r->f.p || proc_kill(r->f.p, sig) < 0)
                err = "process is not running", code = "PROCESS_NOT_FOUND";
            else
                err = NULL;
        } else if (i >= 0 && t[i].type == JSON_STRING && r->f.p) {
            /* stdin, stdin_close, resize (and their errors): api_term.h, issue 15 */
            code = api_term_control(r->f.p, data, len, text, sizeof text);
            err = code ? text : NULL;
        } else if (i >= 0 && t[i].type == JSON_STRING) {
            err = "message type not supported on this stream";
        }
        free(t);
    }
    if (err && !wsconn_pending(r->w))
        send_error(r, code, err);
    buf_free(&rp.body);
    buf_free(&rp.headers);
}

static void on_message(void *ctx, struct wsconn *w, int opcode, const char *data, size_t len)
{
    struct reader *r = ctx;
    r->w = w;   /* frames that came with the handshake arrive before wsconn_start returns */
    if (opcode != WS_TEXT || r->closing)
        return;
    if (r->kind == K_SDK && r->sdk == SDK_WAIT)
        sdk_execute(r, data, len);
    else if (r->kind == K_WS)
        ws_command(r, data, len);
}

static void on_writable(void *ctx, struct wsconn *w)
{
    struct reader *r = ctx;
    r->w = w;
    pump(r);
}

static void on_closed(void *ctx)
{
    reader_free(ctx);
}

static const struct wsconn_ops reader_ops = { on_message, on_writable, on_closed };

static void reader_take(void *ctx, int fd, const char *pending, size_t len)
{
    struct reader *r = ctx;
    if (r->kind == K_SDK && fd >= 0) {   /* armed before frames that came along arrive */
        r->first_by = util_mono_us() + (int64_t)LIMIT_STREAM_FIRST_MS * 1000;
        timer_arm(&r->timer, r->first_by);
    }
    struct wsconn *w = wsconn_take(fd, r->kind == K_SSE, pending, len, &reader_ops, r);
    if (w)   /* else on_closed freed r */
        on_writable(r, w);
}

static void stream_stop(void)
{
    wsconn_stop_all();
}

static const struct server_owner reader_owner = { reader_take, stream_stop };

/* ---- routes ---- */

/* Checks the upgrade; answers the errors. Returns 1 (upgrade: 101 headers set), 0 (not an
 * upgrade) or -1 (answered). */
static int upgrade(struct server_request *req, struct server_reply *rep)
{
    char accept[29];
    enum ws_upgrade u = ws_upgrade_check(req->http, accept);
    if (u == WS_UPGRADE_NONE)
        return 0;
    if (u == WS_UPGRADE_VERSION) {
        buf_puts(&rep->headers, "Sec-WebSocket-Version: 13\r\n");
        api_error(req, rep, 426, "INVALID_REQUEST", "WebSocket version 13 is required");
        return -1;
    }
    if (u == WS_UPGRADE_BAD) {
        api_error(req, rep, 400, "INVALID_REQUEST", "malformed WebSocket handshake");
        return -1;
    }
    rep->status = 101;
    buf_printf(&rep->headers, "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                              "Sec-WebSocket-Accept: %s\r\n", accept);
    return 1;
}

static int take(struct server_request *req, struct server_reply *rep, struct reader *r)
{
    if (!r) {
        api_error(req, rep, 500, "INTERNAL_ERROR", "out of memory");
        return 0;
    }
    req->owner = &reader_owner;
    req->owner_ctx = r;
    return SERVER_TAKEN;
}

int api_execute_stream(const struct api_ctx *c, struct server_request *req,
                       struct server_reply *rep, const char *param, size_t param_len)
{
    (void)param, (void)param_len;
    int u = req->head ? 0 : upgrade(req, rep);
    if (u < 0)
        return 0;
    if (u == 0) {
        buf_puts(&rep->headers, "Upgrade: websocket\r\n");
        api_error(req, rep, 426, "INVALID_REQUEST",
                  "this endpoint speaks WebSocket: send an upgrade request");
        return 0;
    }
    return take(req, rep, reader_new(c, K_SDK));
}

/* "?offset=N" (both streams), else "Last-Event-ID: O,E" (or one number for both).
 * Returns 0, or -1 when malformed. */
static int start_offsets(struct server_request *req, uint64_t off[2])
{
    char v[48];
    off[0] = off[1] = 0;
    int n = http_query_get(req->query, req->query_len, "offset", v, sizeof v);
    if (n == -2)
        return -1;
    if (n < 0) {
        const struct http_header *h = http_find_header(req->http, "last-event-id");
        if (!h)
            return 0;
        if (h->value_len >= sizeof v)
            return -1;
        memcpy(v, h->value, h->value_len);
        v[h->value_len] = 0;
    }
    char *end;
    if (v[0] < '0' || v[0] > '9')
        return -1;
    errno = 0;
    off[0] = off[1] = strtoull(v, &end, 10);
    if (*end == ',') {
        if (end[1] < '0' || end[1] > '9')
            return -1;
        off[1] = strtoull(end + 1, &end, 10);
    }
    return *end || errno ? -1 : 0;
}

int api_process_stream(const struct api_ctx *c, struct server_request *req,
                       struct server_reply *rep, const char *param, size_t param_len)
{
    struct proc *p = proc_find(param, param_len);
    if (!p) {
        char m[120];
        snprintf(m, sizeof m, "no such process: %.*s", (int)(param_len < 64 ? param_len : 64), param);
        api_error(req, rep, 404, "PROCESS_NOT_FOUND", m);
        return 0;
    }
    uint64_t off[2];
    if (start_offsets(req, off) < 0) {
        api_error(req, rep, 400, "INVALID_REQUEST",
                  "offset (or Last-Event-ID) must be a byte offset, or two as \"stdout,stderr\"");
        return 0;
    }
    if (req->head) {   /* a stream has no length to announce */
        rep->content_type = "text/event-stream";
        return 0;
    }
    int u = upgrade(req, rep);
    if (u < 0)
        return 0;
    if (u == 0) {
        rep->status = 200;
        rep->content_type = "text/event-stream";
        buf_puts(&rep->headers, "Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\n");
    }
    struct reader *r = reader_new(c, u ? K_WS : K_SSE);
    if (r) {
        r->f.p = p;
        r->f.off[0] = off[0];
        r->f.off[1] = off[1];
    }
    return take(req, rep, r);
}

/* ---- long poll ---- */

static void waiter_free(struct waiter *w)
{
    timer_cancel(&w->timer);
    if (w->prev)
        w->prev->next = w->next;
    else
        waiters = w->next;
    if (w->next)
        w->next->prev = w->prev;
    nwaiters--;
    free(w);
}

/* The record finished, was removed, or the wait ended: answer, if the client is there. */
static void on_waiter_timer(void *ctx)
{
    struct waiter *w = ctx;
    struct server_reply *rep = server_parked(w->token);
    if (rep) {
        buf_reset(&rep->body);
        if (w->p) {
            rep->status = 200;
            api_proc_record(&rep->body, w->p, 1);
        } else {
            rep->status = 404;
            buf_puts(&rep->body, "{\"error\":\"no such process: it was removed while waiting\","
                                 "\"message\":\"no such process: it was removed while waiting\","
                                 "\"code\":\"PROCESS_NOT_FOUND\"}");
        }
    }
    uint64_t token = w->token;
    waiter_free(w);
    if (rep)
        server_resume(token);
}

int api_stream_wait(struct server_request *req, struct server_reply *rep, struct proc *p)
{
    char v[32];
    int n = http_query_get(req->query, req->query_len, "wait", v, sizeof v);
    if (n == -1)
        return 0;
    char *end = v;
    double secs = n > 0 ? strtod(v, &end) : -1;
    if (n < 0 || end == v || *end || !isfinite(secs) || secs < 0) {
        api_error(req, rep, 400, "INVALID_REQUEST", "wait must be a number of seconds (at most 300)");
        return -1;
    }
    if (secs > LIMIT_WAIT_S)
        secs = LIMIT_WAIT_S;
    if (p->state == PROC_FINISHED || secs == 0 || nwaiters >= WAITERS_MAX)
        return 0;
    struct waiter *w = calloc(1, sizeof *w);
    if (!w)
        return 0;
    w->token = req->token;
    w->p = p;
    timer_init(&w->timer, on_waiter_timer, w);
    if (timer_arm(&w->timer, util_mono_us() + (int64_t)(secs * 1e6)) < 0) {
        free(w);
        return 0;
    }
    w->next = waiters;
    if (waiters)
        waiters->prev = w;
    waiters = w;
    nwaiters++;
    observe();
    return SERVER_PARKED;
}
