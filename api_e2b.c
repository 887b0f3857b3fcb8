#include "api_e2b.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "connect.h"
#include "decode.h"
#include "json.h"
#include "limits.h"
#include "log.h"
#include "runas.h"
#include "util.h"
#include "wsconn.h"

struct method {
    const char *path;
    e2b_method_fn *fn;
    int stream;
};

static const struct method methods[] = {
    { "/process.Process/Start", e2b_proc_start, 1 },
    { "/process.Process/Connect", e2b_proc_connect, 1 },
    { "/process.Process/List", e2b_proc_list, 0 },
    { "/process.Process/SendInput", e2b_proc_send_input, 0 },
    { "/process.Process/SendSignal", e2b_proc_send_signal, 0 },
    { "/process.Process/CloseStdin", e2b_proc_close_stdin, 0 },
    { "/process.Process/Update", e2b_proc_update, 0 },
    { "/filesystem.Filesystem/Stat", e2b_fs_stat, 0 },
    { "/filesystem.Filesystem/ListDir", e2b_fs_list_dir, 0 },
    { "/filesystem.Filesystem/MakeDir", e2b_fs_make_dir, 0 },
    { "/filesystem.Filesystem/Move", e2b_fs_move, 0 },
    { "/filesystem.Filesystem/Remove", e2b_fs_remove, 0 },
    { "/filesystem.Filesystem/WatchDir", e2b_fs_watch_dir, 1 },
    { "/filesystem.Filesystem/CreateWatcher", e2b_fs_create_watcher, 0 },
    { "/filesystem.Filesystem/GetWatcherEvents", e2b_fs_get_watcher_events, 0 },
    { "/filesystem.Filesystem/RemoveWatcher", e2b_fs_remove_watcher, 0 },
};
#define NMETHODS (sizeof methods / sizeof methods[0])

static const struct api_ctx *ctx;
static char token[LIMIT_TOKEN_BYTES + 1];   /* X-Access-Token wanted; "" = none */
static size_t token_len;

/* ---- setup ---- */

int api_e2b_init(const struct api_ctx *c, const char *token_file)
{
    ctx = c;
    token_len = 0;
    if (!token_file)
        return 0;
    int fd = open(token_file, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "sandbox-agent: cannot read --e2b-token-file %s: %s\n", token_file,
                strerror(errno));
        return -1;
    }
    ssize_t n = read(fd, token, sizeof token);
    close(fd);
    if (n > 0 && token[n - 1] == '\n')
        n--;
    if (n <= 0 || (size_t)n >= sizeof token) {
        fprintf(stderr, "sandbox-agent: --e2b-token-file %s: empty or over %d bytes\n",
                token_file, LIMIT_TOKEN_BYTES);
        return -1;
    }
    token_len = (size_t)n;
    return 0;
}

/* ---- shared helpers ---- */

void e2b_reply(struct e2b_call *k, const char *json, size_t len)
{
    k->rep->status = 200;
    k->rep->content_type = "application/json";
    buf_append(&k->rep->body, json, len);
}

int e2b_error(struct e2b_call *k, const char *code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    struct server_reply *rep = k->rep;
    buf_reset(&rep->body);
    struct buf j;
    buf_init(&j, 4096);
    buf_putc(&j, '{');
    if (k->stream) {
        json_put_key(&j, "error");
        buf_putc(&j, '{');
    }
    json_put_key(&j, "code");
    json_put_cstr(&j, code);
    json_put_key(&j, "message");
    json_put_cstr(&j, msg);
    buf_puts(&j, k->stream ? "}}" : "}");
    if (k->stream) {   /* a stream's error travels in its end envelope, on a 200 */
        unsigned char pre[CONNECT_PREFIX];
        connect_prefix(pre, CONNECT_FLAG_END, (uint32_t)j.len);
        rep->status = 200;
        rep->content_type = "application/connect+json";
        buf_append(&rep->body, pre, sizeof pre);
    } else {
        rep->status = connect_code_status(code);
        rep->content_type = "application/json";
    }
    buf_append(&rep->body, j.data, j.len);
    buf_free(&j);
    return 0;
}

int e2b_errno(struct e2b_call *k, int err, const char *path)
{
    const char *code;
    switch (err) {
    case ENOENT: code = "not_found"; break;
    case EEXIST: code = "already_exists"; break;
    case EACCES: case EPERM: case EXDEV: case EBUSY: code = "permission_denied"; break;
    case ENOTDIR: case EISDIR: case EINVAL: case ENAMETOOLONG: case ENODEV: case ENOTEMPTY:
    case ELOOP:
        code = "invalid_argument";
        break;
    case ENOSPC: case EDQUOT: case EMFILE: case ENFILE: case ENOMEM:
        code = "resource_exhausted";
        break;
    default: code = "internal";
    }
    return e2b_error(k, code, "%s: %s", path, strerror(err));
}

int e2b_decode(struct e2b_call *k, const struct decode_table *t, struct decode_arena *ar,
               void *out)
{
    struct decode_error e;
    if (decode_body(t, k->json, k->json_len, LIMIT_JSON_TOKENS, LIMIT_JSON_DEPTH, ar, out, NULL,
                    &e) == 0)
        return 0;
    e2b_error(k, e.status == 500 ? "internal" : "invalid_argument", "%s", e.msg);
    return -1;
}

int e2b_path(const char *home, const char *in, char *out)
{
    int n;
    if (in[0] == '/')
        n = snprintf(out, PATH_MAX, "%s", in);
    else if (!in[0] || !strcmp(in, "~"))
        n = snprintf(out, PATH_MAX, "%s", home);
    else if (in[0] == '~' && in[1] == '/')
        n = snprintf(out, PATH_MAX, "%s/%s", home, in + 2);
    else
        n = snprintf(out, PATH_MAX, "%s/%s", home, in);
    return n < 0 || n >= PATH_MAX ? -1 : 0;
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void e2b_b64_put(struct buf *b, const unsigned char *p, size_t n)
{
    if (buf_reserve(b, (n + 2) / 3 * 4) < 0)
        return;
    char *o = b->data + b->len;
    size_t i = 0;
    for (; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        *o++ = b64[v >> 18];
        *o++ = b64[(v >> 12) & 63];
        *o++ = b64[(v >> 6) & 63];
        *o++ = b64[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0);
        *o++ = b64[v >> 18];
        *o++ = b64[(v >> 12) & 63];
        *o++ = i + 1 < n ? b64[(v >> 6) & 63] : '=';
        *o++ = '=';
    }
    b->len = (size_t)(o - b->data);
}

static int b64_val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
}

long e2b_b64_decode(char *s, size_t n)
{
    while (n > 0 && s[n - 1] == '=')
        n--;
    if (n % 4 == 1)
        return -1;
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64_val((unsigned char)s[i]);
        if (v < 0)
            return -1;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            s[o++] = (char)(acc >> bits);
        }
    }
    return (long)o;
}

int64_t e2b_keepalive_us(const struct server_request *req)
{
    const struct http_header *h = http_find_header(req->http, "keepalive-ping-interval");
    int64_t s = 0;
    for (size_t i = 0; h && i < h->value_len && i < 9; i++) {
        if (h->value[i] < '0' || h->value[i] > '9') {
            s = 0;
            break;
        }
        s = s * 10 + (h->value[i] - '0');
    }
    if (s <= 0)
        s = LIMIT_E2B_KEEPALIVE_S;
    return s * 1000000;
}

int e2b_stream_take(struct e2b_call *k, const struct server_owner *owner, void *octx)
{
    k->rep->status = 200;
    k->rep->content_type = "application/connect+json";
    k->req->owner = owner;
    k->req->owner_ctx = octx;
    return SERVER_TAKEN;
}

int e2b_stream_send(struct wsconn *w, unsigned flags, const char *json, size_t len)
{
    unsigned char pre[CONNECT_PREFIX];
    connect_prefix(pre, flags, (uint32_t)len);
    struct iovec iov[2] = { { pre, sizeof pre }, { (void *)json, len } };
    return wsconn_sendv(w, 0, iov, 2);
}

int e2b_stream_end(struct wsconn *w, const char *code, const char *msg)
{
    struct buf j;
    buf_init(&j, 4096);
    buf_putc(&j, '{');
    if (code) {
        json_put_key(&j, "error");
        buf_putc(&j, '{');
        json_put_key(&j, "code");
        json_put_cstr(&j, code);
        json_put_key(&j, "message");
        json_put_cstr(&j, msg);
        buf_putc(&j, '}');
    }
    buf_putc(&j, '}');
    int rc = j.failed ? -1 : e2b_stream_send(w, CONNECT_FLAG_END, j.data, j.len);
    buf_free(&j);
    wsconn_close(w, 0, NULL);
    return rc;
}

static const char *type_name(const struct files_entry *e)
{
    if (e->type == FILES_DIR || (e->type == FILES_SYMLINK && e->target_is_dir))
        return "FILE_TYPE_DIRECTORY";
    return "FILE_TYPE_FILE";
}

/* user.e2b.K extended attributes as "metadata": {K: V} (none: no member). */
static void put_metadata(struct buf *b, const char *path)
{
    char names[4096];
    ssize_t n = llistxattr(path, names, sizeof names);
    int any = 0;
    for (ssize_t i = 0; i < n; i += (ssize_t)strlen(names + i) + 1) {
        if (strncmp(names + i, "user.e2b.", 9))
            continue;
        char v[1024];
        ssize_t vl = lgetxattr(path, names + i, v, sizeof v);
        if (vl < 0)
            continue;
        json_put_key(b, any ? names + i + 9 : "metadata");
        if (!any) {
            buf_putc(b, '{');
            json_put_key(b, names + i + 9);
            any = 1;
        }
        json_put_str(b, v, (size_t)vl);
    }
    if (any)
        buf_putc(b, '}');
}

void e2b_put_entry(struct buf *b, const struct files_entry *e)
{
    /* Go's FileMode.String(): a type letter, then rwx triplets */
    char perm[11], rwx[10];
    files_perm_string(e->mode, rwx);
    perm[0] = e->type == FILES_DIR ? 'd' : e->type == FILES_SYMLINK ? 'L' : '-';
    memcpy(perm + 1, rwx, 10);
    char ts[25];
    util_rfc3339(e->mtime_ms, ts);
    buf_putc(b, '{');
    json_put_key(b, "name");
    json_put_cstr(b, e->name);
    json_put_key(b, "type");
    json_put_cstr(b, type_name(e));
    json_put_key(b, "path");
    json_put_cstr(b, e->path);
    json_put_key(b, "size");
    json_put_int(b, (int64_t)e->size);
    json_put_key(b, "mode");
    json_put_int(b, e->mode & 0777);
    json_put_key(b, "permissions");
    json_put_cstr(b, perm);
    json_put_key(b, "owner");
    json_put_cstr(b, e->owner);
    json_put_key(b, "group");
    json_put_cstr(b, e->group);
    json_put_key(b, "modifiedTime");
    json_put_cstr(b, ts);
    put_metadata(b, e->path);
    if (e->type == FILES_SYMLINK) {
        json_put_key(b, "symlinkTarget");
        if (e->target[0] != '/') {   /* a relative link's target, from the link's directory */
            struct buf t;
            buf_init(&t, 2 * PATH_MAX);
            buf_append(&t, e->path, (size_t)(e->name - e->path));
            buf_puts(&t, e->target);
            json_put_str(b, t.data ? t.data : "", t.len);
            buf_free(&t);
        } else {
            json_put_cstr(b, e->target);
        }
    }
    buf_putc(b, '}');
}

/* ---- who is calling ---- */

static int token_ok(const struct server_request *req)
{
    if (!token_len)
        return 1;
    const struct http_header *h = http_find_header(req->http, "x-access-token");
    if (!h || h->value_len != token_len)
        return 0;
    unsigned char d = 0;   /* constant time */
    for (size_t i = 0; i < token_len; i++)
        d |= (unsigned char)(h->value[i] ^ token[i]);
    return d == 0;
}

/* E2B's SDK names this user on every call unless told otherwise (envd's images have it). */
#define E2B_SDK_USER "user"

/* Who calls: the user from "Authorization: Basic base64(user:)" (or ?username= for /files),
 * else the agent's own. A user in /etc/passwd with another uid is switched to: processes run
 * as it (api_proc's `user`, through the exec shim) and what files calls create is its own
 * (k->owner); that needs an agent running as root, else permission_denied. The agent's own
 * uid, or the SDK's default name "user" where /etc/passwd has no such user (an image not
 * made for E2B: said once in the log), run as the agent. Any other unknown name is refused
 * as envd refuses it (unauthenticated). The home: for the agent's own user the agent's
 * $HOME, else the user's from /etc/passwd, else the workdir; HOME, USER and LOGNAME follow
 * the name. Returns 0, or -1 with a message in err (and *status the /files status). */
static int caller(const struct server_request *req, struct e2b_call *k, char *err,
                  size_t ecap, int *status)
{
    static int said_default;
    char *user = k->user;
    size_t ucap = sizeof k->user;
    user[0] = 0;
    k->owner = NULL;
    k->switch_user = 0;
    const struct http_header *h = http_find_header(req->http, "authorization");
    if (h && h->value_len > 6 && !strncasecmp(h->value, "Basic ", 6) && h->value_len < 200) {
        char tmp[200];
        size_t n = h->value_len - 6;
        memcpy(tmp, h->value + 6, n);
        long m = e2b_b64_decode(tmp, n);
        if (m > 0) {
            size_t un = strcspn(tmp, ":");
            if (un > (size_t)m)
                un = (size_t)m;
            if (un < ucap) {
                memcpy(user, tmp, un);
                user[un] = 0;
            }
        }
    }
    if (!user[0]) {
        char v[64];
        if (http_query_get(req->query, req->query_len, "username", v, sizeof v) > 0)
            snprintf(user, ucap, "%s", v);
    }
    int own = 1;
    const char *pw_home = NULL;
    if (user[0]) {
        if (runas_lookup(user, &k->as) == 0) {
            pw_home = k->as.home;
            own = k->as.uid == getuid();
            if (!own && geteuid() != 0) {
                snprintf(err, ecap, "the agent runs as uid %u and cannot act as user '%s' "
                         "(run it as root to switch users)", (unsigned)getuid(), user);
                *status = 403;
                return -1;
            }
            if (!own) {
                k->owner = &k->as;
                k->switch_user = 1;
            }
        } else if (!strcmp(user, E2B_SDK_USER)) {
            if (!said_default++)
                log_line("level=info msg=\"e2b: no user '%s' in /etc/passwd: calls naming it "
                         "run as the agent's own user (uid %u)\"", user, (unsigned)getuid());
        } else {
            snprintf(err, ecap, "invalid username: '%s' is not in /etc/passwd", user);
            *status = 401;
            return -1;
        }
    } else {
        /* no user named: the agent's own, read from /etc/passwd like any other (getpwuid
         * would go through musl's nscd client: a socket connect inside the loop) */
        char id[24];
        snprintf(id, sizeof id, "%u", (unsigned)getuid());
        if (runas_lookup(id, &k->as) == 0) {
            snprintf(user, ucap, "%s", k->as.name);
            pw_home = k->as.home;
        } else {
            snprintf(user, ucap, "root");
        }
    }
    /* the agent's own user: the agent's $HOME first (what it was started with) */
    const char *hd = own ? getenv("HOME") : NULL;
    if (!hd || !*hd || access(hd, X_OK) != 0)
        hd = pw_home && pw_home[0] ? pw_home : NULL;
    if (!hd || access(hd, X_OK) != 0)
        hd = getenv("HOME");
    if (!hd || !*hd || access(hd, X_OK) != 0)
        hd = ctx->workdir;
    snprintf(k->home, PATH_MAX, "%s", hd);
    return 0;
}

/* ---- routing ---- */

static int is(const struct server_request *req, const char *method, const char *path)
{
    return req->method_len == strlen(method) && !memcmp(req->method, method, req->method_len) &&
           req->path_len == strlen(path) && !memcmp(req->path, path, req->path_len);
}

static int route(struct server_request *req, struct server_reply *rep)
{
    struct e2b_call k = { .c = ctx, .req = req, .rep = rep };
    if (is(req, "GET", "/health")) {
        rep->status = 204;
        return 0;
    }
    if (!token_ok(req)) {
        if (req->path_len == 6 && !memcmp(req->path, "/files", 6)) {
            e2b_files_error(rep, 401, "invalid access token");
            return 0;
        }
        return e2b_error(&k, "unauthenticated", "missing or invalid X-Access-Token");
    }
    char err[200];
    int status = 401;
    int refused = caller(req, &k, err, sizeof err, &status) < 0;
    if (refused && req->path_len == 6 && !memcmp(req->path, "/files", 6)) {
        e2b_files_error(rep, status, err);
        return 0;
    }
    if (is(req, "GET", "/files"))
        return e2b_files_get(req, rep, k.home);
    if (is(req, "POST", "/files")) {   /* only without a body (the hook streams the rest) */
        struct server_sink sink;
        int rc = e2b_files_post(ctx, req, rep, &sink, k.home, k.owner);
        if (rc == SERVER_STREAM) {
            sink.end(sink.ctx, rep);
            return 0;
        }
        return 0;
    }
    const struct method *m = NULL;
    for (size_t i = 0; i < NMETHODS && !m; i++)
        if (req->path_len == strlen(methods[i].path) &&
            !memcmp(req->path, methods[i].path, req->path_len))
            m = &methods[i];
    if (!m) {
        if (req->path_len == 6 && !memcmp(req->path, "/files", 6)) {
            buf_puts(&rep->headers, "Allow: GET, POST\r\n");
            e2b_files_error(rep, 405, "method not allowed");
            return 0;
        }
        return e2b_error(&k, "not_found", "no such method: %.*s",
                         (int)(req->path_len < 100 ? req->path_len : 100), req->path);
    }
    k.stream = m->stream;
    if (!(req->method_len == 4 && !memcmp(req->method, "POST", 4))) {
        buf_puts(&rep->headers, "Allow: POST\r\n");
        e2b_error(&k, "unimplemented", "Connect calls are POST");
        rep->status = 405;
        return 0;
    }
    if (refused)   /* now that a stream's error goes in its end-stream envelope */
        return e2b_error(&k, status == 403 ? "permission_denied" : "unauthenticated", "%s", err);
    k.json = req->body;
    k.json_len = req->body_len;
    if (m->stream) {   /* the request message comes in one envelope */
        struct connect_envelope env;
        long n = connect_parse(req->body, req->body_len, LIMIT_BODY_BYTES, &env);
        if (n < 0 || (size_t)n != req->body_len)
            return e2b_error(&k, "invalid_argument",
                             "a streaming request is one envelope (flags, length, message)");
        k.json = env.data;
        k.json_len = env.len;
    }
    return m->fn(&k);
}

int api_e2b_handle(void *c, struct server_request *req, struct server_reply *rep)
{
    (void)c;
    return route(req, rep);
}

int api_e2b_body_hook(void *c, struct server_request *req, struct server_reply *rep,
                      struct server_sink *sink)
{
    (void)c;
    if (!is(req, "POST", "/files"))
        return 0;   /* buffered, then api_e2b_handle */
    if (!token_ok(req)) {
        e2b_files_error(rep, 401, "invalid access token");
        return SERVER_ANSWERED;
    }
    struct e2b_call k = { .c = ctx, .req = req, .rep = rep };
    char err[200];
    int status = 401;
    if (caller(req, &k, err, sizeof err, &status) < 0) {
        e2b_files_error(rep, status, err);
        return SERVER_ANSWERED;
    }
    int rc = e2b_files_post(ctx, req, rep, sink, k.home, k.owner);
    return rc == SERVER_STREAM ? SERVER_STREAM : SERVER_ANSWERED;
}
