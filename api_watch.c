#include "api_watch.h"

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decode.h"
#include "json.h"
#include "limits.h"

#ifndef PATH_MAX   /* glibc's <limits.h> (the debug build) reaches ours by include_next */
#define PATH_MAX 4096
#endif
#ifndef NAME_MAX
#define NAME_MAX 255
#endif
#include "server.h"
#include "util.h"
#include "watch.h"
#include "ws.h"
#include "wsconn.h"

#ifndef PATH_MAX   /* the glibc debug build's <limits.h> reaches ours (-iquote .): see files.h */
#define PATH_MAX 4096
#endif

/* One client of WS /files/watch or SSE GET /files/watch. */
struct watcher {
    const struct api_ctx *c;
    int sse;
    struct wsconn *w;          /* NULL until the server hands the connection over */
    struct watch *watch;       /* NULL until a watch is open */
    char *ack;                 /* the "watching" message, until it is sent */
};

/* {action:"watch", path, recursive?} */
struct watch_req {
    const char *action;
    const char *path;
    int recursive;
};
#define F(x) offsetof(struct watch_req, x)
static const struct decode_field watch_fields[] = {
    { "action", { "type" }, .type = DECODE_STRING, .off = F(action), .def_str = "watch" },
    { "path", .type = DECODE_STRING, .off = F(path), .flags = DECODE_REQUIRED | DECODE_EMPTY_IS_ABSENT,
      .max = PATH_MAX },
    { "recursive", .type = DECODE_BOOL, .off = F(recursive), .def_int = 1 },
};
#undef F
static const struct decode_table watch_table = DECODE_TABLE(watch_fields);

static struct buf msg;

static struct buf *msg_start(void)
{
    if (!msg.max)
        buf_init(&msg, 2 * PATH_MAX + 4096);
    buf_reset(&msg);
    return &msg;
}

static void put_now(struct buf *b)
{
    char ts[25];
    util_rfc3339(util_wall_ms(), ts);
    json_put_key(b, "timestamp");
    json_put_cstr(b, ts);
}

/* Sends msg: SSE as "event: NAME\ndata: JSON\n\n", WebSocket as the JSON with type NAME
 * (the JSON in msg starts after its '{', so the type can go first). */
static int send_msg(struct watcher *x, const char *event)
{
    struct buf out;
    buf_init(&out, msg.max + 256);
    if (x->sse)
        buf_printf(&out, "event: %s\ndata: {", event);
    else
        buf_printf(&out, "{\"type\":\"%s\"%s", event, msg.len > 1 ? "," : "");
    buf_append(&out, msg.data, msg.len);
    if (x->sse)
        buf_puts(&out, "\n\n");
    int rc = out.failed ? -1 : wsconn_send(x->w, WS_TEXT, out.data, out.len);
    buf_free(&out);
    return rc;
}

static const char *kind_name(enum watch_kind k)
{
    switch (k) {
    case WATCH_CREATED: return "created";
    case WATCH_DELETED: return "deleted";
    case WATCH_RENAMED: return "renamed";
    default: return "modified";   /* writes and metadata (touch) */
    }
}

/* The watch offers an event: taken only when the socket holds nothing of ours. */
static int on_change(void *ctx, const struct watch_event *ev)
{
    struct watcher *x = ctx;
    if (!x->w || x->ack || wsconn_pending(x->w))
        return -1;
    struct buf *b = msg_start();
    if (ev->kind == WATCH_OVERFLOW) {
        json_put_key(b, "code");
        json_put_cstr(b, "OVERFLOW");
        json_put_key(b, "error");
        json_put_cstr(b, "too many changes at once: some were not reported");
        json_put_key(b, "path");
        json_put_cstr(b, ev->path);
        put_now(b);
        buf_putc(b, '}');
        send_msg(x, "error");
        return 0;
    }
    json_put_key(b, "path");
    json_put_cstr(b, ev->path);
    json_put_key(b, "event");
    json_put_cstr(b, kind_name(ev->kind));
    json_put_key(b, "is_dir");
    json_put_bool(b, ev->is_dir);
    put_now(b);
    buf_putc(b, '}');
    send_msg(x, "change");
    return 0;
}

/* "watching": the watch is in place; changes from now on are reported. */
static void send_ack(struct watcher *x)
{
    if (!x->ack || !x->w || wsconn_pending(x->w))
        return;
    struct buf *b = msg_start();
    buf_puts(b, x->ack);
    free(x->ack);
    x->ack = NULL;
    send_msg(x, "watching");
}

/* Opens the watch. Returns 0, or -1 with status/code/text set. */
static int open_watch(struct watcher *x, const char *path, int recursive, int *status,
                      const char **code, char *text, size_t tlen)
{
    char full[PATH_MAX];
    int n = path[0] == '/' ? snprintf(full, sizeof full, "%s", path)
                           : snprintf(full, sizeof full, "%s/%s", x->c->workdir, path);
    *status = 400;
    *code = "INVALID_PATH";
    if (n < 0 || (size_t)n >= sizeof full) {
        snprintf(text, tlen, "path too long");
        return -1;
    }
    x->watch = watch_open(full, recursive, on_change, x);
    if (!x->watch) {
        int e = errno;
        if (e == ENOENT)
            *status = 404, *code = "FILE_NOT_FOUND";
        else if (e == EACCES)
            *status = 403, *code = "PERMISSION_DENIED";
        else if (e != ENOTDIR)
            *status = 503, *code = "FILE_OPERATION_FAILED";
        snprintf(text, tlen, "%s: %s", e == ENOENT ? "directory not found" : e == ENOTDIR
                 ? "not a directory" : strerror(e), full);
        return -1;
    }
    struct buf b;
    buf_init(&b, PATH_MAX + 256);
    json_put_key(&b, "path");
    json_put_cstr(&b, full);
    json_put_key(&b, "recursive");
    json_put_bool(&b, recursive);
    json_put_key(&b, "directories");
    json_put_int(&b, watch_dirs(x->watch));
    buf_putc(&b, '}');
    x->ack = b.failed ? NULL : strndup(b.data, b.len);
    buf_free(&b);
    *status = 200;
    return 0;
}

static void on_message(void *ctx, struct wsconn *w, int opcode, const char *data, size_t len)
{
    struct watcher *x = ctx;
    x->w = w;
    if (opcode != WS_TEXT)
        return;
    struct server_request rq = { .body = data, .body_len = len, .request_id = "ws" };
    struct server_reply rp = { .status = 200 };
    buf_init(&rp.body, 8192);
    buf_init(&rp.headers, 256);
    struct decode_arena ar;
    struct watch_req r;
    int status = 200;
    const char *code = NULL;
    char text[PATH_MAX + 100];
    const char *why = NULL;
    if (decode_arena_open(&ar, 3 * len + 65536) < 0) {
        status = 500, code = "INTERNAL_ERROR", why = "out of memory";
    } else {
        if (api_decode_body(&rq, &rp, &watch_table, &ar, &r, NULL) < 0)
            status = rp.status;
        else if (strcmp(r.action, "watch") != 0)
            why = "expected {\"action\": \"watch\", \"path\": ...}";
        else if (x->watch)
            why = "this connection already watches a directory";
        else
            open_watch(x, r.path, r.recursive, &status, &code, text, sizeof text);
        decode_arena_close(&ar);
    }
    if (why) {
        if (status == 200)
            status = 400, code = "INVALID_REQUEST";
        snprintf(text, sizeof text, "%s", why);
    }
    if (status != 200 && !wsconn_pending(w)) {
        struct buf *b = msg_start();
        if (!code && rp.body.len > 1) {   /* the decoder's answer, as the routes give it */
            buf_append(b, rp.body.data + 1, rp.body.len - 1);
        } else {
            json_put_key(b, "error");
            json_put_cstr(b, text);
            json_put_key(b, "message");
            json_put_cstr(b, text);
            json_put_key(b, "code");
            json_put_cstr(b, code);
            buf_putc(b, '}');
        }
        send_msg(x, "error");
    }
    send_ack(x);
    buf_free(&rp.body);
    buf_free(&rp.headers);
}

static void on_writable(void *ctx, struct wsconn *w)
{
    struct watcher *x = ctx;
    x->w = w;
    send_ack(x);
    if (x->watch && !x->ack)
        watch_resume(x->watch);
}

static void watcher_free(struct watcher *x)
{
    if (x->watch)
        watch_close(x->watch);
    free(x->ack);
    free(x);
}

static void on_closed(void *ctx)
{
    watcher_free(ctx);
}

static const struct wsconn_ops watcher_ops = { on_message, on_writable, on_closed };

static void watcher_take(void *ctx, int fd, const char *pending, size_t len)
{
    struct watcher *x = ctx;
    struct wsconn *w = wsconn_take(fd, x->sse, pending, len, &watcher_ops, x);
    if (w)   /* else on_closed freed x */
        on_writable(x, w);
}

static void watcher_stop(void)
{
    wsconn_stop_all();
}

static const struct server_owner watcher_owner = { watcher_take, watcher_stop };

int api_files_watch(const struct api_ctx *c, struct server_request *req, struct server_reply *rep,
                    const char *param, size_t param_len)
{
    (void)param, (void)param_len;
    char accept[29];
    enum ws_upgrade u = req->head ? WS_UPGRADE_NONE : ws_upgrade_check(req->http, accept);
    if (u == WS_UPGRADE_VERSION) {
        buf_puts(&rep->headers, "Sec-WebSocket-Version: 13\r\n");
        api_error(req, rep, 426, "INVALID_REQUEST", "WebSocket version 13 is required");
        return 0;
    }
    if (u == WS_UPGRADE_BAD) {
        api_error(req, rep, 400, "INVALID_REQUEST", "malformed WebSocket handshake");
        return 0;
    }
    struct watcher *x = calloc(1, sizeof *x);
    if (!x) {
        api_error(req, rep, 500, "INTERNAL_ERROR", "out of memory");
        return 0;
    }
    x->c = c;
    x->sse = u == WS_UPGRADE_NONE;
    if (x->sse) {   /* SSE: the watch is opened now, so its errors are HTTP answers */
        char path[PATH_MAX], rec[8] = "true", text[PATH_MAX + 100];
        int n = http_query_get(req->query, req->query_len, "path", path, sizeof path);
        int rn = http_query_get(req->query, req->query_len, "recursive", rec, sizeof rec);
        int status;
        const char *code;
        if (n <= 0 || rn == -2 || (strcmp(rec, "true") && strcmp(rec, "false"))) {
            free(x);
            api_error(req, rep, 400, n == -1 || n == 0 ? "MISSING_PARAMETER" : "INVALID_REQUEST",
                      n <= 0 ? "'path' is required (?path=/dir), recursive true or false"
                             : "recursive must be true or false");
            return 0;
        }
        if (req->head) {
            free(x);
            rep->content_type = "text/event-stream";
            return 0;
        }
        if (open_watch(x, path, strcmp(rec, "false") != 0, &status, &code, text, sizeof text) < 0) {
            free(x);
            api_error(req, rep, status, code, text);
            return 0;
        }
        rep->status = 200;
        rep->content_type = "text/event-stream";
        buf_puts(&rep->headers, "Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\n");
    } else {
        rep->status = 101;
        buf_printf(&rep->headers, "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                                  "Sec-WebSocket-Accept: %s\r\n", accept);
    }
    req->owner = &watcher_owner;
    req->owner_ctx = x;
    return SERVER_TAKEN;
}
