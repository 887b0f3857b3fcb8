/* filesystem.Filesystem and /files over files.c and watch.c (api_e2b.h). */
#include "api_e2b.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "decode.h"
#include "http.h"
#include "inflate.h"
#include "json.h"
#include "limits.h"
#include "multipart.h"
#include "timer.h"
#include "util.h"
#include "watch.h"
#include "wsconn.h"

/* ---- request shapes ---- */

struct fs_req {
    const char *path;
    int64_t depth;
    const char *source, *destination;
    int recursive;
    int include_entry;
    const char *watcher_id;
};
#define FS(x) offsetof(struct fs_req, x)
static const struct decode_field fs_fields[] = {
    { "path", .type = DECODE_STRING, .off = FS(path) },
    { "depth", .type = DECODE_INT, .off = FS(depth), .min = 0, .max = LIMIT_FILES_DEPTH },
    { "source", .type = DECODE_STRING, .off = FS(source) },
    { "destination", .type = DECODE_STRING, .off = FS(destination) },
    { "recursive", .type = DECODE_BOOL, .off = FS(recursive) },
    { "includeEntry", { "include_entry" }, .type = DECODE_BOOL, .off = FS(include_entry) },
    { "watcherId", { "watcher_id" }, .type = DECODE_STRING, .off = FS(watcher_id) },
};
static const struct decode_table fs_table = DECODE_TABLE(fs_fields);

/* Decodes and resolves path (and destination into dst, when given). Returns 0 or -1
 * after answering. */
static int fs_decode(struct e2b_call *k, struct decode_arena *ar, struct fs_req *q,
                     char *path, char *dst)
{
    if (decode_arena_open(ar, DECODE_ARENA_FOR(k->json_len)) < 0) {
        e2b_error(k, "resource_exhausted", "out of memory");
        return -1;
    }
    if (e2b_decode(k, &fs_table, ar, q) < 0)
        return -1;
    const char *p = q->source ? q->source : q->path ? q->path : "";
    if (e2b_path(k->home, p, path) < 0 ||
        (dst && e2b_path(k->home, q->destination ? q->destination : "", dst) < 0)) {
        e2b_error(k, "invalid_argument", "path too long");
        return -1;
    }
    return 0;
}

/* {"entry": EntryInfo of path}. */
static int reply_entry(struct e2b_call *k, const char *path)
{
    struct files_entry *e = malloc(sizeof *e);
    if (!e)
        return e2b_error(k, "resource_exhausted", "out of memory");
    if (files_stat(path, e) < 0) {
        int err = errno;
        free(e);
        return e2b_errno(k, err, path);
    }
    struct buf b;
    buf_init(&b, 3 * PATH_MAX);
    buf_puts(&b, "{\"entry\":");
    e2b_put_entry(&b, e);
    buf_putc(&b, '}');
    e2b_reply(k, b.data, b.len);
    buf_free(&b);
    free(e);
    return 0;
}

int e2b_fs_stat(struct e2b_call *k)
{
    struct decode_arena ar = { 0 };
    struct fs_req q;
    char path[PATH_MAX];
    if (fs_decode(k, &ar, &q, path, NULL) == 0)
        reply_entry(k, path);
    decode_arena_close(&ar);
    return 0;
}

static int list_one(void *ctx, const struct files_entry *e)
{
    struct buf *b = ctx;
    json_sep(b);
    e2b_put_entry(b, e);
    return b->failed ? -1 : 0;
}

int e2b_fs_list_dir(struct e2b_call *k)
{
    struct decode_arena ar = { 0 };
    struct fs_req q;
    char path[PATH_MAX];
    if (fs_decode(k, &ar, &q, path, NULL) == 0) {
        struct buf b;
        buf_init(&b, LIMIT_RESPONSE_BYTES);
        buf_puts(&b, "{\"entries\":[");
        int trunc = 0;
        long n = files_list(path, q.depth > 0 ? (int)q.depth : 1, LIMIT_FILES_LIST, list_one, &b,
                            &trunc, NULL);
        buf_puts(&b, "]}");
        if (n < 0)
            e2b_errno(k, errno == ENOTDIR ? EINVAL : errno, path);
        else if (b.failed)
            e2b_error(k, "resource_exhausted", "the listing does not fit in an answer");
        else
            e2b_reply(k, b.data, b.len);
        buf_free(&b);
    }
    decode_arena_close(&ar);
    return 0;
}

int e2b_fs_make_dir(struct e2b_call *k)
{
    struct decode_arena ar = { 0 };
    struct fs_req q;
    char path[PATH_MAX];
    if (fs_decode(k, &ar, &q, path, NULL) == 0) {
        int created = 0;
        if (files_mkdir(path, 0755, k->owner, &created) < 0)
            e2b_errno(k, errno == EEXIST ? EINVAL : errno, path);
        else if (!created)
            e2b_error(k, "already_exists", "directory %s already exists", path);
        else
            reply_entry(k, path);
    }
    decode_arena_close(&ar);
    return 0;
}

int e2b_fs_move(struct e2b_call *k)
{
    struct decode_arena ar = { 0 };
    struct fs_req q;
    char from[PATH_MAX], to[PATH_MAX];
    if (fs_decode(k, &ar, &q, from, to) == 0) {
        if (files_move(from, to, 1, k->owner) < 0)
            e2b_errno(k, errno, from);
        else
            reply_entry(k, to);
    }
    decode_arena_close(&ar);
    return 0;
}

int e2b_fs_remove(struct e2b_call *k)
{
    struct decode_arena ar = { 0 };
    struct fs_req q;
    char path[PATH_MAX];
    if (fs_decode(k, &ar, &q, path, NULL) == 0) {
        if (files_remove(path, 1) < 0 && errno != ENOENT)
            e2b_errno(k, errno, path);
        else
            e2b_reply(k, "{}", 2);
    }
    decode_arena_close(&ar);
    return 0;
}

/* ---- watching ---- */

static const char *event_type(enum watch_kind kind)
{
    switch (kind) {
    case WATCH_CREATED: return "EVENT_TYPE_CREATE";
    case WATCH_MODIFIED: return "EVENT_TYPE_WRITE";
    case WATCH_DELETED: return "EVENT_TYPE_REMOVE";
    case WATCH_RENAMED: return "EVENT_TYPE_RENAME";
    case WATCH_CHMOD: return "EVENT_TYPE_CHMOD";
    default: return NULL;
    }
}

/* A FilesystemEvent {name (relative to root), type, entry when asked and the path still
 * exists} into b; 0, or -1 for none. */
static int put_event(struct buf *b, const char *root, const struct watch_event *ev,
                     int with_entry)
{
    const char *type = event_type(ev->kind);
    if (!type)
        return -1;   /* an overflow: envd has no such event, the client rescans if it must */
    size_t rl = strlen(root);
    const char *name = ev->path;
    if (!strncmp(name, root, rl) && (name[rl] == '/' || !name[rl]))
        name += rl + (name[rl] == '/');
    buf_putc(b, '{');
    json_put_key(b, "name");
    json_put_cstr(b, name);
    json_put_key(b, "type");
    json_put_cstr(b, type);
    struct files_entry *e = with_entry ? malloc(sizeof *e) : NULL;
    if (e && files_stat(ev->path, e) == 0) {
        json_put_key(b, "entry");
        e2b_put_entry(b, e);
    }
    free(e);
    buf_putc(b, '}');
    return 0;
}

/* A WatchDir stream. */
struct wstream {
    struct wsconn *w;
    struct watch *watch;
    char root[PATH_MAX];
    int start_sent, include_entry;
    int64_t keepalive_us, last_send;
    struct timer timer;
};

static struct buf wmsg;

static void ws_send(struct wstream *s, const char *json, size_t len)
{
    e2b_stream_send(s->w, 0, json, len);
    s->last_send = util_mono_us();
}

static int on_watch(void *ctx, const struct watch_event *ev)
{
    struct wstream *s = ctx;
    if (!s->w || !s->start_sent || wsconn_pending(s->w))
        return -1;   /* offered again after watch_resume */
    if (!wmsg.max)
        buf_init(&wmsg, 6 * PATH_MAX + 4096);
    buf_reset(&wmsg);
    buf_puts(&wmsg, "{\"filesystem\":");
    if (put_event(&wmsg, s->root, ev, s->include_entry) < 0)
        return 0;
    buf_putc(&wmsg, '}');
    if (!wmsg.failed)
        ws_send(s, wmsg.data, wmsg.len);
    return 0;
}

static void ws_writable(void *ctx, struct wsconn *w)
{
    struct wstream *s = ctx;
    (void)w;
    if (!s->start_sent) {
        s->start_sent = 1;
        ws_send(s, "{\"start\":{}}", 12);
        return;
    }
    if (s->watch)
        watch_resume(s->watch);
}

static void ws_closed(void *ctx)
{
    struct wstream *s = ctx;
    timer_cancel(&s->timer);
    if (s->watch)
        watch_close(s->watch);
    free(s);
}

static void ws_timer(void *ctx)
{
    struct wstream *s = ctx;
    int64_t now = util_mono_us();
    if (s->w && !wsconn_pending(s->w) && now - s->last_send >= s->keepalive_us)
        ws_send(s, "{\"keepalive\":{}}", 16);
    timer_arm(&s->timer, s->last_send + s->keepalive_us);
}

static const struct wsconn_ops wstream_ops = { NULL, ws_writable, ws_closed };

static void ws_take(void *ctx, int fd, const char *pending, size_t len)
{
    struct wstream *s = ctx;
    if (fd < 0) {
        ws_closed(s);
        return;
    }
    s->w = wsconn_start(fd, WSCONN_BARE, pending, len, &wstream_ops, s);
    if (!s->w) {
        ws_closed(s);
        return;
    }
    s->start_sent = 1;
    ws_send(s, "{\"start\":{}}", 12);
    timer_arm(&s->timer, s->last_send + s->keepalive_us);
}

static void ws_stop(void)
{
    wsconn_stop_all();
}

static const struct server_owner wstream_owner = { ws_take, ws_stop };

/* Checks that path is a directory we can watch; answers otherwise. */
static int need_dir(struct e2b_call *k, const char *path)
{
    struct stat st;
    if (stat(path, &st) < 0)
        return e2b_errno(k, errno, path), -1;
    if (!S_ISDIR(st.st_mode))
        return e2b_error(k, "invalid_argument", "path %s is not a directory", path), -1;
    return 0;
}

int e2b_fs_watch_dir(struct e2b_call *k)
{
    struct decode_arena ar = { 0 };
    struct fs_req q;
    char path[PATH_MAX];
    int rc = 0;
    if (fs_decode(k, &ar, &q, path, NULL) == 0 && need_dir(k, path) == 0) {
        struct wstream *s = calloc(1, sizeof *s);
        if (!s) {
            rc = e2b_error(k, "resource_exhausted", "out of memory");
        } else {
            snprintf(s->root, sizeof s->root, "%s", path);
            s->include_entry = q.include_entry == 1;
            s->keepalive_us = e2b_keepalive_us(k->req);
            timer_init(&s->timer, ws_timer, s);
            s->watch = watch_open(path, q.recursive, on_watch, s);
            if (!s->watch) {
                rc = e2b_errno(k, errno, path);
                free(s);
            } else {
                watch_report_writes(s->watch);
                rc = e2b_stream_take(k, &wstream_owner, s);
            }
        }
    }
    decode_arena_close(&ar);
    return rc;
}

/* The polling watcher (the Python SDK's synchronous watch): events queue here, bounded,
 * until GetWatcherEvents takes them; past the bound the oldest are dropped. */
struct pwatcher {
    char id[33];
    struct watch *watch;
    char root[PATH_MAX];
    struct buf events;         /* FilesystemEvent objects, comma-separated */
    int count;
    int64_t last_poll_us;
    struct pwatcher *next;
};

static struct pwatcher *pwatchers;
static int npwatchers;

static int on_pwatch(void *ctx, const struct watch_event *ev)
{
    struct pwatcher *pw = ctx;
    if (pw->count >= LIMIT_WATCH_EVENTS)
        return 0;   /* nobody is polling: drop, do not grow */
    size_t before = pw->events.len;
    json_sep(&pw->events);
    if (put_event(&pw->events, pw->root, ev, 0) < 0 || pw->events.failed) {
        pw->events.len = before;
        pw->events.failed = 0;
        return 0;
    }
    pw->count++;
    return 0;
}

static struct pwatcher *pw_find(const char *id, struct pwatcher ***link)
{
    for (struct pwatcher **pp = &pwatchers; *pp; pp = &(*pp)->next)
        if (id && !strcmp((*pp)->id, id)) {
            if (link)
                *link = pp;
            return *pp;
        }
    return NULL;
}

int e2b_fs_create_watcher(struct e2b_call *k)
{
    struct decode_arena ar = { 0 };
    struct fs_req q;
    char path[PATH_MAX];
    if (fs_decode(k, &ar, &q, path, NULL) == 0 && need_dir(k, path) == 0) {
        struct pwatcher *pw = npwatchers < LIMIT_E2B_WATCHERS ? calloc(1, sizeof *pw) : NULL;
        if (!pw) {
            e2b_error(k, "resource_exhausted", "too many watchers (at most %d)",
                      LIMIT_E2B_WATCHERS);
        } else {
            util_random_hex(pw->id, 32);
            snprintf(pw->root, sizeof pw->root, "%s", path);
            buf_init(&pw->events, (size_t)LIMIT_WATCH_EVENTS * (PATH_MAX + 64));
            pw->watch = watch_open(path, q.recursive, on_pwatch, pw);
            if (!pw->watch) {
                e2b_errno(k, errno, path);
                buf_free(&pw->events);
                free(pw);
            } else {
                watch_report_writes(pw->watch);
                pw->next = pwatchers;
                pwatchers = pw;
                npwatchers++;
                char out[64];
                int n = snprintf(out, sizeof out, "{\"watcherId\":\"%s\"}", pw->id);
                e2b_reply(k, out, (size_t)n);
            }
        }
    }
    decode_arena_close(&ar);
    return 0;
}

int e2b_fs_get_watcher_events(struct e2b_call *k)
{
    struct decode_arena ar = { 0 };
    struct fs_req q;
    char path[PATH_MAX];
    if (fs_decode(k, &ar, &q, path, NULL) == 0) {
        struct pwatcher *pw = pw_find(q.watcher_id, NULL);
        if (!pw) {
            e2b_error(k, "not_found", "watcher %s not found", q.watcher_id ? q.watcher_id : "");
        } else {
            struct buf b;
            buf_init(&b, pw->events.len + 32);
            buf_puts(&b, "{\"events\":[");
            buf_append(&b, pw->events.data, pw->events.len);
            buf_puts(&b, "]}");
            e2b_reply(k, b.data, b.len);
            buf_free(&b);
            buf_reset(&pw->events);
            pw->count = 0;
            watch_resume(pw->watch);
        }
    }
    decode_arena_close(&ar);
    return 0;
}

int e2b_fs_remove_watcher(struct e2b_call *k)
{
    struct decode_arena ar = { 0 };
    struct fs_req q;
    char path[PATH_MAX];
    if (fs_decode(k, &ar, &q, path, NULL) == 0) {
        struct pwatcher **link = NULL;
        struct pwatcher *pw = pw_find(q.watcher_id, &link);
        if (!pw) {
            e2b_error(k, "not_found", "watcher %s not found", q.watcher_id ? q.watcher_id : "");
        } else {
            *link = pw->next;
            npwatchers--;
            watch_close(pw->watch);
            buf_free(&pw->events);
            free(pw);
            e2b_reply(k, "{}", 2);
        }
    }
    decode_arena_close(&ar);
    return 0;
}

/* ---- GET /files, POST /files ---- */

void e2b_files_error(struct server_reply *rep, int status, const char *msg)
{
    buf_reset(&rep->body);
    rep->status = status;
    rep->content_type = "application/json";
    buf_printf(&rep->body, "{\"code\":%d", status);
    json_put_key(&rep->body, "message");
    json_put_cstr(&rep->body, msg);
    buf_putc(&rep->body, '}');
}

static void files_errno(struct server_reply *rep, int err, const char *path)
{
    char m[PATH_MAX + 100];
    int status = err == ENOENT ? 404 : err == EACCES || err == EPERM || err == EXDEV ? 403
               : err == ENOSPC || err == EDQUOT ? 507 : err == EISDIR || err == ENOTDIR ||
                 err == EINVAL || err == ENODEV ? 400 : 500;
    if (err == ENOENT)
        snprintf(m, sizeof m, "path '%s' does not exist", path);
    else if (err == EISDIR)
        snprintf(m, sizeof m, "path '%s' is a directory", path);
    else
        snprintf(m, sizeof m, "%s: %s", path, strerror(err));
    e2b_files_error(rep, status, m);
}

/* ?path= resolved against home into out. Returns 1 present, 0 absent, -1 after answering. */
static int query_path(const struct server_request *req, struct server_reply *rep,
                      const char *home, char *out)
{
    char raw[PATH_MAX];
    int n = http_query_get(req->query, req->query_len, "path", raw, sizeof raw);
    if (n == -2 || (n >= 0 && e2b_path(home, raw, out) < 0)) {
        e2b_files_error(rep, 400, "path is malformed or too long");
        return -1;
    }
    return n >= 0;
}

int e2b_files_get(struct server_request *req, struct server_reply *rep, const char *home)
{
    char path[PATH_MAX];
    int r = query_path(req, rep, home, path);
    if (r < 0)
        return 0;
    if (r == 0) {
        snprintf(path, sizeof path, "%s", home);   /* "" is the home: a directory */
    }
    struct stat st;
    int fd = files_open_read(path, &st);
    if (fd < 0) {
        files_errno(rep, errno, path);
        return 0;
    }
    rep->status = 200;
    rep->content_type = "application/octet-stream";
    server_reply_file(rep, fd, 0, (uint64_t)st.st_size);
    return 0;
}

/* A POST /files body streaming to disk: multipart with a file part per file (the part's
 * filename names it when ?path= is absent), or the raw bytes of one file. */
struct upload {
    int multipart;
    int inplace, fd;           /* no files root: written in place, as envd does */
    char meta[LIMIT_E2B_METADATA];   /* X-Metadata-K: V headers as "K\0V\0" pairs */
    size_t meta_len;
    struct multipart mp;
    char qpath[PATH_MAX];      /* ?path=, resolved; "" when absent */
    char home[PATH_MAX];
    struct files_writer w;
    int open, in_file;
    char target[PATH_MAX];
    struct buf answer;         /* [{path, name, type}...] */
    int files;
    int failed, status;        /* the first failure; the rest of the body is dropped */
    char msg[PATH_MAX + 100];
    const struct runas_user *owner;  /* owns the files and parents made; NULL: the agent */
    struct runas_user owner_buf;
    struct inflate *gz;        /* Content-Encoding: gzip: the body inflated on the way */
    uint64_t inflated, gzip_limit;
};

static void up_fail(struct upload *u, int status, int err, const char *what)
{
    if (u->failed)
        return;
    u->failed = 1;
    if (err) {
        struct server_reply tmp = { 0 };
        buf_init(&tmp.body, sizeof u->msg + 64);
        files_errno(&tmp, err, what);
        u->status = tmp.status;
        snprintf(u->msg, sizeof u->msg, "%s: %s", what, strerror(err));
        buf_free(&tmp.body);
    } else {
        u->status = status;
        snprintf(u->msg, sizeof u->msg, "%s", what);
    }
    if (u->open && !u->inplace)
        files_writer_abort(&u->w);
    if (u->fd >= 0)
        close(u->fd);
    u->fd = -1;
    u->open = 0;
}

/* In place (no files root): the parents made, the file truncated and written where it is,
 * so watchers see a write to it (an atomic rename shows as a new file); its old user.e2b.*
 * metadata goes. Returns 0 or -1 (errno). */
static int open_inplace(struct upload *u)
{
    char parent[PATH_MAX];
    snprintf(parent, sizeof parent, "%s", u->target);
    char *slash = strrchr(parent, '/');
    if (slash && slash != parent) {
        *slash = 0;
        int created;
        struct stat st;
        if (stat(parent, &st) < 0 && files_mkdir(parent, 0755, u->owner, &created) < 0)
            return -1;
    }
    u->fd = open(u->target, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY, 0644);
    if (u->fd < 0)
        return -1;
    if (u->owner && fchown(u->fd, u->owner->uid, u->owner->gid) < 0)
        return -1;   /* up_fail closes it */
    char names[4096];
    ssize_t n = flistxattr(u->fd, names, sizeof names);
    for (ssize_t i = 0; i < n; i += (ssize_t)strlen(names + i) + 1)
        if (!strncmp(names + i, "user.e2b.", 9))
            fremovexattr(u->fd, names + i);
    return 0;
}

static void up_begin(struct upload *u, const char *name)
{
    if (u->failed)
        return;
    const char *p = u->qpath[0] ? u->qpath : NULL;
    if (!p) {
        if (!name || !*name) {
            up_fail(u, 400, 0, "a file part without ?path= needs a filename naming its path");
            return;
        }
        if (e2b_path(u->home, name, u->target) < 0) {
            up_fail(u, 400, 0, "path too long");
            return;
        }
    } else {
        snprintf(u->target, sizeof u->target, "%s", p);
    }
    if (u->inplace ? open_inplace(u) < 0 : files_writer_open(&u->w, u->target, u->owner) < 0) {
        up_fail(u, 0, errno, u->target);
        return;
    }
    u->open = 1;
}

/* The upload's metadata as user.e2b.K extended attributes of path. Returns 0 or -1. */
static int set_metadata(const struct upload *u, const char *path)
{
    for (size_t i = 0; i < u->meta_len;) {
        const char *k = u->meta + i, *v = k + strlen(k) + 1;
        char name[300];
        snprintf(name, sizeof name, "user.e2b.%s", k);
        if (lsetxattr(path, name, v, strlen(v), 0) < 0)
            return -1;
        i = (size_t)(v + strlen(v) + 1 - u->meta);
    }
    return 0;
}

static void up_commit(struct upload *u)
{
    if (u->failed || !u->open)
        return;
    char abs[PATH_MAX];
    u->open = 0;
    if (u->inplace) {
        int rc = close(u->fd);
        u->fd = -1;
        if (rc < 0) {
            up_fail(u, 0, errno, u->target);
            return;
        }
        snprintf(abs, sizeof abs, "%s", u->target);
    } else if (files_writer_commit(&u->w, NULL, -1, 1, abs) < 0) {
        up_fail(u, 0, errno, u->target);
        return;
    }
    if (set_metadata(u, abs) < 0) {
        up_fail(u, 0, errno, abs);
        return;
    }
    const char *name = strrchr(abs, '/');
    json_sep(&u->answer);
    buf_putc(&u->answer, '{');
    json_put_key(&u->answer, "name");
    json_put_cstr(&u->answer, name ? name + 1 : abs);
    json_put_key(&u->answer, "type");
    json_put_cstr(&u->answer, "file");
    json_put_key(&u->answer, "path");
    json_put_cstr(&u->answer, abs);
    if (u->meta_len) {
        json_put_key(&u->answer, "metadata");
        buf_putc(&u->answer, '{');
        for (size_t i = 0; i < u->meta_len;) {
            const char *k = u->meta + i, *v = k + strlen(k) + 1;
            json_put_key(&u->answer, k);
            json_put_cstr(&u->answer, v);
            i = (size_t)(v + strlen(v) + 1 - u->meta);
        }
        buf_putc(&u->answer, '}');
    }
    buf_putc(&u->answer, '}');
    u->files++;
}

static void up_write(struct upload *u, const char *p, size_t n)
{
    if (u->failed || !u->open)
        return;
    if (!u->inplace) {
        if (files_writer_write(&u->w, p, n) < 0)
            up_fail(u, 0, errno, u->target);
        return;
    }
    while (n > 0) {
        ssize_t w = write(u->fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            up_fail(u, 0, w < 0 ? errno : EIO, u->target);
            return;
        }
        p += w;
        n -= (size_t)w;
    }
}

/* The body's bytes (inflated when it was gzip): one file's, or a multipart body's. */
static void up_body(struct upload *u, const char *p, size_t n)
{
    if (!u->multipart) {
        up_write(u, p, n);
        return;
    }
    for (size_t i = 0; i < n && !u->mp.done;) {
        struct multipart_event ev;
        long r = multipart_feed(&u->mp, p + i, n - i, &ev);
        if (r < 0) {
            up_fail(u, 400, 0, "malformed multipart/form-data body");
            break;
        }
        i += (size_t)r;
        if (ev.kind == MULTIPART_PART) {
            u->in_file = u->mp.has_filename ||
                         (u->mp.name_len == 4 && !memcmp(u->mp.name, "file", 4));
            if (u->in_file)
                up_begin(u, u->mp.has_filename ? u->mp.filename : NULL);
        } else if (ev.kind == MULTIPART_DATA && u->in_file) {
            up_write(u, ev.data, ev.len);
        } else if (ev.kind == MULTIPART_PART_END && u->in_file) {
            up_commit(u);
            u->in_file = 0;
        }
    }
}

/* A gzip upload that fails leaves no file: written in place, the partial one goes. */
static void gz_fail(struct upload *u, int status, const char *msg)
{
    int unlink_inplace = u->inplace && u->open;
    up_fail(u, status, 0, msg);
    if (unlink_inplace)
        unlink(u->target);
}

/* Inflates p[0..n) (n 0: drains what is pending) into up_body, within gzip_limit. */
static void gz_feed(struct upload *u, const char *p, size_t n)
{
    char out[LIMIT_GZIP_CHUNK];
    for (size_t off = 0; !u->failed;) {
        size_t used, made;
        if (inflate_run(u->gz, p + off, n - off, &used, out, sizeof out, &made) < 0) {
            char msg[160];
            snprintf(msg, sizeof msg, "Content-Encoding: gzip body is not valid gzip: %s",
                     u->gz->error);
            gz_fail(u, 400, msg);
            return;
        }
        off += used;
        u->inflated += made;
        if (u->inflated > u->gzip_limit) {
            char msg[160];
            snprintf(msg, sizeof msg, "gzip upload inflates past %llu bytes (--gzip-limit)",
                     (unsigned long long)u->gzip_limit);
            gz_fail(u, 413, msg);
            return;
        }
        up_body(u, out, made);
        if (off == n && made < sizeof out)
            return;
    }
}

static size_t up_data(void *ctx, const char *p, size_t n)
{
    struct upload *u = ctx;
    if (u->gz)
        gz_feed(u, p, n);
    else
        up_body(u, p, n);
    return n;   /* written synchronously: never busy */
}

static void up_free(struct upload *u)
{
    if (u->open && !u->inplace)
        files_writer_abort(&u->w);
    if (u->fd >= 0)
        close(u->fd);
    buf_free(&u->answer);
    free(u->gz);
    free(u);
}

static void up_abort(void *ctx)
{
    up_free(ctx);
}

static void up_end(void *ctx, struct server_reply *rep)
{
    struct upload *u = ctx;
    if (u->gz && !u->failed) {
        gz_feed(u, "", 0);
        if (!u->failed && !inflate_done(u->gz))
            gz_fail(u, 400, "Content-Encoding: gzip body ends before its gzip trailer");
    }
    if (!u->multipart)
        up_commit(u);
    else if (!u->failed && !u->mp.done)
        up_fail(u, 400, 0, "multipart body ended before its closing boundary");
    if (!u->failed && u->files == 0)
        up_fail(u, 400, 0, "no file in the request");
    if (u->failed) {
        e2b_files_error(rep, u->status, u->msg);
    } else {
        buf_putc(&u->answer, ']');
        rep->status = 200;
        rep->content_type = "application/json";
        buf_append(&rep->body, u->answer.data, u->answer.len);
    }
    up_free(u);
}

/* X-Metadata-K: V headers (K an HTTP token, V printable ASCII) into u->meta. Returns 0, or
 * -1 after answering 400. */
static int collect_metadata(const struct server_request *req, struct server_reply *rep,
                            struct upload *u)
{
    for (size_t i = 0; i < req->http->num_headers; i++) {
        const struct http_header *h = &req->http->headers[i];
        if (h->name_len <= 11 || strncasecmp(h->name, "x-metadata-", 11))
            continue;
        size_t kl = h->name_len - 11;
        if (kl > 200 || u->meta_len + kl + h->value_len + 2 > sizeof u->meta) {
            e2b_files_error(rep, 400, "metadata too large");
            return -1;
        }
        for (size_t j = 0; j < h->value_len; j++)
            if ((unsigned char)h->value[j] < 0x20 || (unsigned char)h->value[j] > 0x7e) {
                e2b_files_error(rep, 400, "metadata values are printable ASCII");
                return -1;
            }
        memcpy(u->meta + u->meta_len, h->name + 11, kl);
        u->meta_len += kl;
        u->meta[u->meta_len++] = 0;
        memcpy(u->meta + u->meta_len, h->value, h->value_len);
        u->meta_len += h->value_len;
        u->meta[u->meta_len++] = 0;
    }
    return 0;
}

int e2b_files_post(const struct api_ctx *c, struct server_request *req,
                   struct server_reply *rep, struct server_sink *sink, const char *home,
                   const struct runas_user *owner)
{
    const struct http_header *ce = http_find_header(req->http, "content-encoding");
    int gzip = ce && ((ce->value_len == 4 && !strncasecmp(ce->value, "gzip", 4)) ||
                      (ce->value_len == 6 && !strncasecmp(ce->value, "x-gzip", 6)));
    if (ce && !gzip && !(ce->value_len == 8 && !strncasecmp(ce->value, "identity", 8))) {
        /* what envd takes: identity and gzip; never stored compressed */
        e2b_files_error(rep, 415, "Content-Encoding is not supported: send gzip or identity");
        return 0;
    }
    struct upload *u = calloc(1, sizeof *u);
    if (u && gzip && (u->gz = malloc(sizeof *u->gz)) != NULL)
        inflate_init(u->gz);
    if (!u || (gzip && !u->gz)) {
        free(u);
        e2b_files_error(rep, 507, "out of memory");
        return 0;
    }
    snprintf(u->home, sizeof u->home, "%s", home);
    u->gzip_limit = c->gzip_limit;
    if (owner) {
        u->owner_buf = *owner;
        u->owner = &u->owner_buf;
    }
    u->fd = -1;
    u->inplace = !strcmp(files_confinement(), "none");
    if (query_path(req, rep, home, u->qpath) < 0 || collect_metadata(req, rep, u) < 0) {
        free(u->gz);
        free(u);
        return 0;
    }
    const struct http_header *ct = http_find_header(req->http, "content-type");
    char boundary[LIMIT_MULTIPART_BOUNDARY + 1];
    int bl = ct ? multipart_boundary(ct->value, ct->value_len, boundary) : -1;
    if (bl > 0) {
        u->multipart = 1;
        multipart_init(&u->mp, boundary, (size_t)bl);
    } else if (ct && ct->value_len >= 9 && !strncasecmp(ct->value, "multipart", 9)) {
        free(u->gz);
        free(u);
        e2b_files_error(rep, 400, "multipart body without a valid boundary");
        return 0;
    } else {
        if (!u->qpath[0]) {
            free(u->gz);
            free(u);
            e2b_files_error(rep, 400, "a raw upload needs ?path=");
            return 0;
        }
        up_begin(u, NULL);
    }
    buf_init(&u->answer, 1u << 20);
    buf_putc(&u->answer, '[');
    *sink = (struct server_sink){ up_data, up_end, up_abort, u };
    return SERVER_STREAM;
}
