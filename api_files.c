#include "api_files.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api.h"
#include "b64.h"
#include "decode.h"
#include "files.h"
#include "inflate.h"
#include "json.h"
#include "limits.h"
#include "log.h"
#include "multipart.h"
#include "runas.h"
#include "util.h"

#define OCTET "application/octet-stream"

/* ---- errors ---- */

/* The API's error shape plus `path`. */
static void answer_error(const struct server_request *req, struct server_reply *rep, int status,
                         const char *code, const char *msg, const char *path)
{
    struct buf *b = &rep->body;
    buf_reset(b);
    buf_reset(&rep->headers);
    rep->status = status;
    rep->content_type = NULL;
    buf_putc(b, '{');
    json_put_key(b, "error");
    json_put_cstr(b, msg);
    json_put_key(b, "message");
    json_put_cstr(b, msg);
    json_put_key(b, "code");
    json_put_cstr(b, code);
    if (path) {
        json_put_key(b, "path");
        json_put_cstr(b, path);
    }
    json_put_key(b, "request_id");
    json_put_cstr(b, req->request_id);
    buf_putc(b, '}');
}

/* One errno from files.c to a status, code and message the SDK maps. Only ENOENT says
 * "not found" (the SDK turns those words into FileNotFoundError). */
static void answer_errno(const struct server_request *req, struct server_reply *rep, int err,
                         const char *path)
{
    char msg[PATH_MAX + 128];
    const char *p = path ? path : "";
    int status = 400;
    const char *code = "FILE_OPERATION_FAILED";
    switch (err) {
    case ENOENT:
        status = 404, code = "FILE_NOT_FOUND";
        snprintf(msg, sizeof msg, "file not found: %s", p);
        break;
    case EXDEV:
        status = 403, code = "PERMISSION_DENIED";
        snprintf(msg, sizeof msg, "permission denied: %s is outside the files root", p);
        break;
    case EACCES:
    case EPERM:
        status = 403, code = "PERMISSION_DENIED";
        snprintf(msg, sizeof msg, "permission denied: %s", p);
        break;
    case EINVAL:
    case ENAMETOOLONG:
        code = "INVALID_PATH";
        snprintf(msg, sizeof msg, "invalid path: '%s'", p);
        break;
    case ENOTDIR:
        code = "INVALID_PATH";
        snprintf(msg, sizeof msg, "not a directory: %s (or a component of it)", p);
        break;
    case EISDIR:
        code = "INVALID_PATH";
        snprintf(msg, sizeof msg, "is a directory: %s (list it with /files/list)", p);
        break;
    case EEXIST:
        status = 409, code = "FILE_ALREADY_EXISTS";
        snprintf(msg, sizeof msg, "file already exists: %s (overwrite was not allowed)", p);
        break;
    case EBUSY:
        code = "INVALID_PATH";
        snprintf(msg, sizeof msg, "refused: %s is /, the workdir or the files root", p);
        break;
    case ENODEV:
        snprintf(msg, sizeof msg, "not a regular file: %s", p);
        break;
    case ENOSPC:
    case EDQUOT:
        snprintf(msg, sizeof msg, "no space left on device writing %s", p);
        break;
    case ENOTEMPTY:
        snprintf(msg, sizeof msg, "directory not empty: %s (recursive=true removes it)", p);
        break;
    case ENOMEM:
    case EMFILE:
    case ENFILE:
        status = 500, code = "INTERNAL_ERROR";
        snprintf(msg, sizeof msg, "agent out of resources: %s", strerror(err));
        break;
    default:
        snprintf(msg, sizeof msg, "%s: %s", strerror(err), p);
        break;
    }
    answer_error(req, rep, status, code, msg, path);
}

/* ---- request values ---- */

/* ?key= into out (PATH_MAX). Returns 1 present, 0 absent, -1 after answering 400. */
static int query_path(const struct server_request *req, struct server_reply *rep,
                      const char *key, char *out)
{
    int n = http_query_get(req->query, req->query_len, key, out, PATH_MAX);
    if (n == -1)
        return 0;
    if (n == 0 || n == -2) {
        char msg[96];
        snprintf(msg, sizeof msg, "invalid path in ?%s=: empty, a NUL, a bad escape, or over "
                 "PATH_MAX", key);
        answer_error(req, rep, 400, "INVALID_PATH", msg, NULL);
        return -1;
    }
    return 1;
}

/* The required ?path=. Returns 0, or -1 after answering. */
static int need_query_path(const struct server_request *req, struct server_reply *rep, char *out)
{
    int r = query_path(req, rep, "path", out);
    if (r == 0)
        answer_error(req, rep, 400, "MISSING_PARAMETER", "path is required (?path=)", NULL);
    return r == 1 ? 0 : -1;
}

/* The endpoints that act on ?path= alone: fn runs with it once it is decoded and checked. */
typedef void path_fn(struct server_request *req, struct server_reply *rep, const char *path);
static int with_path(struct server_request *req, struct server_reply *rep, path_fn *fn)
{
    char path[PATH_MAX];
    if (need_query_path(req, rep, path) == 0)
        fn(req, rep, path);
    return 0;
}

/* ?key=true|false|1|0. Returns the value, def when absent, -1 after answering 400. */
static int query_bool(const struct server_request *req, struct server_reply *rep,
                      const char *key, int def)
{
    char v[8];
    int n = http_query_get(req->query, req->query_len, key, v, sizeof v);
    if (n == -1)
        return def;
    if (!strcasecmp(v, "true") || !strcmp(v, "1") || n == 0)
        return 1;
    if (!strcasecmp(v, "false") || !strcmp(v, "0"))
        return 0;
    char msg[64];
    snprintf(msg, sizeof msg, "?%s= must be true or false", key);
    answer_error(req, rep, 400, "INVALID_REQUEST", msg, NULL);
    return -1;
}

/* "0644", "644", "0o755": octal permission bits. Returns them, or -1. */
static int parse_mode(const char *s, size_t n)
{
    if (n >= 2 && s[0] == '0' && (s[1] == 'o' || s[1] == 'O'))
        s += 2, n -= 2;
    if (n == 0 || n > 5)
        return -1;
    int m = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '7')
            return -1;
        m = m * 8 + (s[i] - '0');
    }
    return m <= 07777 ? m : -1;
}

/* The JSON bodies of write, mkdir and move, decoded by table (decode.h) into one shape. */
struct fields {
    struct decode_bytes path, to, content;
    int base64;                /* encoding */
    int overwrite;             /* -1: not given */
    const char *mode;          /* NULL: not given */
    const char *user;          /* owner of what is created: a name or a uid; NULL: not given */
    /* checked and converted by fields_check */
    char from_path[PATH_MAX], to_path[PATH_MAX];
    int mode_bits;             /* -1: not given */
};

#define FF(x) offsetof(struct fields, x)
static const char *const encodings[] = { "utf-8", "utf8", "text", "base64", NULL };
static const int encoding_is_b64[] = { 0, 0, 0, 1 };
static const struct decode_field write_fields[] = {
    { "path", .type = DECODE_BYTES, .off = FF(path), .flags = DECODE_REQUIRED },
    { "content", .type = DECODE_BYTES, .off = FF(content), .flags = DECODE_REQUIRED },
    { "encoding", .type = DECODE_ENUM, .off = FF(base64), .names = encodings,
      .values = encoding_is_b64 },
    { "overwrite", .type = DECODE_BOOL, .off = FF(overwrite), .def_int = -1 },
    { "mode", .type = DECODE_SCALAR, .off = FF(mode) },
    { "user", .type = DECODE_SCALAR, .off = FF(user) },
};
static const struct decode_field mkdir_fields[] = {
    { "path", .type = DECODE_BYTES, .off = FF(path), .flags = DECODE_REQUIRED },
    { "mode", .type = DECODE_SCALAR, .off = FF(mode) },
    { "user", .type = DECODE_SCALAR, .off = FF(user) },
};
static const struct decode_field move_fields[] = {
    { "from", { "source" }, .type = DECODE_BYTES, .off = FF(path), .flags = DECODE_REQUIRED },
    { "to", { "destination" }, .type = DECODE_BYTES, .off = FF(to), .flags = DECODE_REQUIRED },
    { "overwrite", .type = DECODE_BOOL, .off = FF(overwrite), .def_int = -1 },
    { "user", .type = DECODE_SCALAR, .off = FF(user) },
};
static const struct decode_table write_table = DECODE_TABLE(write_fields);
static const struct decode_table mkdir_table = DECODE_TABLE(mkdir_fields);
static const struct decode_table move_table = DECODE_TABLE(move_fields);

/* A path value into out (PATH_MAX): empty, a NUL or too long is INVALID_PATH. */
static int path_check(const struct decode_bytes *v, const char *name, char *out,
                      const struct server_request *req, struct server_reply *rep)
{
    if (!v->p)
        return 0;
    if (v->len == 0 || v->len >= PATH_MAX || memchr(v->p, 0, v->len)) {
        char msg[96];
        snprintf(msg, sizeof msg, "invalid %s: empty, a NUL, or over PATH_MAX bytes", name);
        answer_error(req, rep, 400, "INVALID_PATH", msg, NULL);
        return -1;
    }
    memcpy(out, v->p, v->len + 1);
    return 0;
}

/* Decodes req's body by t into f (strings in ar) and checks paths and mode. Returns 0, or
 * -1 after answering. */
static int fields_decode(struct server_request *req, struct server_reply *rep,
                         const struct decode_table *t, struct decode_arena *ar, struct fields *f)
{
    memset(f, 0, offsetof(struct fields, from_path));   /* fields t does not name */
    if (api_decode_body(req, rep, t, ar, f, NULL) < 0)
        return -1;
    f->from_path[0] = f->to_path[0] = 0;
    f->mode_bits = -1;
    if (path_check(&f->path, t == &move_table ? "from" : "path", f->from_path, req, rep) < 0 ||
        path_check(&f->to, "to", f->to_path, req, rep) < 0)
        return -1;
    if (f->mode && (f->mode_bits = parse_mode(f->mode, strlen(f->mode))) < 0) {
        answer_error(req, rep, 400, "INVALID_REQUEST",
                     "mode must be octal permission bits such as \"0644\"", f->from_path);
        return -1;
    }
    return 0;
}

/* The JSON body of write, mkdir or move: opens ar and decodes into f by t. Returns 0 (the
 * caller closes ar), or -1 after answering, with ar already closed. */
static int body_open(struct server_request *req, struct server_reply *rep,
                     const struct decode_table *t, struct decode_arena *ar, struct fields *f)
{
    if (decode_arena_open(ar, DECODE_ARENA_FOR(req->body_len)) < 0) {
        answer_errno(req, rep, ENOMEM, NULL);
        return -1;
    }
    if (fields_decode(req, rep, t, ar, f) < 0) {
        decode_arena_close(ar);
        return -1;
    }
    return 0;
}

/* The owner of what a request creates (issue 18's `user`): ?user=, else the body's user,
 * else --default-user. *owner is NULL (the agent's own uid and gid: nothing to give away)
 * or u. Checked before anything is created, so a refusal leaves nothing behind. Returns 0,
 * or -1 after answering: 400 for a user that does not exist, 403 when the agent is not
 * root and the user is someone else (the kernel would refuse the chown). */
static int owner_get(const struct api_ctx *c, const struct server_request *req,
                     struct server_reply *rep, const char *body_user, struct runas_user *u,
                     const struct runas_user **owner)
{
    char q[RUNAS_NAME_MAX], msg[RUNAS_NAME_MAX + 96];
    int n = http_query_get(req->query, req->query_len, "user", q, sizeof q);
    const char *who = n >= 0 ? q : body_user ? body_user : c->default_user;
    *owner = NULL;
    if (!who)
        return 0;
    if (n == -2 || !*who || strlen(who) >= RUNAS_NAME_MAX) {
        answer_error(req, rep, 400, "INVALID_REQUEST", "user must be a user name or a uid",
                     NULL);
        return -1;
    }
    if (runas_lookup(who, u) < 0) {
        snprintf(msg, sizeof msg, "no such user: %s (not in /etc/passwd)", who);
        answer_error(req, rep, 400, "INVALID_REQUEST", msg, NULL);
        return -1;
    }
    if (u->uid == geteuid() && u->gid == getegid())
        return 0;
    if (geteuid() != 0) {
        snprintf(msg, sizeof msg, "permission denied: the agent is not root and cannot give "
                 "files to user %s", who);
        answer_error(req, rep, 403, "PERMISSION_DENIED", msg, NULL);
        return -1;
    }
    *owner = u;
    return 0;
}

/* ---- UTF-8 ---- */

/* Strict UTF-8 (no overlongs, surrogates or values past U+10FFFF). */
static int utf8_valid(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3
                   : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
        if (!len || i + len > n)
            return 0;
        unsigned char lo = 0x80, hi = 0xbf;
        if (c == 0xe0) lo = 0xa0;
        if (c == 0xed) hi = 0x9f;
        if (c == 0xf0) lo = 0x90;
        if (c == 0xf4) hi = 0x8f;
        if (s[i + 1] < lo || s[i + 1] > hi)
            return 0;
        for (size_t k = 2; k < len; k++)
            if ((s[i + k] & 0xc0) != 0x80)
                return 0;
        i += len;
    }
    return 1;
}

/* ---- entries ---- */

/* path's entry, malloc'd (two PATH_MAX buffers: too big for every handler's stack), or
 * NULL with errno (ENOMEM, or files_stat's). The caller frees it. */
static struct files_entry *entry_new(const char *path)
{
    struct files_entry *e = malloc(sizeof *e);
    if (e && files_stat(path, e) < 0) {
        int err = errno;
        free(e);
        errno = err;
        return NULL;
    }
    return e;
}

/* 1 when path names an entry, 0 when not (or out of memory). */
static int entry_exists(const char *path)
{
    struct files_entry *e = entry_new(path);
    int ok = e != NULL;
    free(e);
    return ok;
}

static const char *type_name(enum files_type t)
{
    static const char *const names[] = { "file", "dir", "symlink", "other" };
    return names[t];
}

/* Appends literal text to a char cursor. */
#define PUT(p, lit) (memcpy((p), (lit), sizeof(lit) - 1), (p) += sizeof(lit) - 1)

static char *put_u64(char *p, uint64_t v)
{
    char t[20];
    int n = 0;
    do
        t[n++] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    while (n)
        *p++ = t[--n];
    return p;
}

/* Appends s, quoted, when every byte of it may stand in a JSON string as it is (printable
 * ASCII but '"' and '\\'): nearly every file name. Returns the new end, or NULL (then the
 * escaping encoder must write it). */
static char *put_plain(char *p, const char *s)
{
    *p++ = '"';
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\')
            return NULL;
        *p++ = (char)c;
    }
    *p++ = '"';
    return p;
}

/* A string at the cursor: plain ones copied (put_plain), else the part assembled so far
 * goes out and the escaping encoder appends s (so *line restarts). */
static char *put_string(struct buf *b, char *line, char *p, const char *s)
{
    char *q = put_plain(p, s);
    if (q)
        return q;
    buf_append(b, line, (size_t)(p - line));
    json_put_cstr(b, s);
    return line;
}

/* The mtime as RFC 3339, remembered: the entries of a listing mostly share a few. */
static const char *when_text(int64_t ms)
{
    static int64_t last = INT64_MIN;
    static char text[25];
    if (ms != last) {
        util_rfc3339(ms, text);
        last = ms;
    }
    return text;
}

/* One entry, both field spellings, assembled in a local line and appended once: a 10 000
 * entry listing calls this 10 000 times, so every byte is placed by hand (printf-style
 * formatting, then one append per field, were most of its user time). */
static void put_entry(struct buf *b, const struct files_entry *e)
{
    static const char *const bools[] = { "false", "true" };
    char line[2 * PATH_MAX + 512], *p = line;   /* path, target, names: at most this */
    const char *when = when_text(e->mtime_ms);
    int isdir = e->type == FILES_DIR;
    PUT(p, "{\"name\":");
    p = put_string(b, line, p, e->name);
    PUT(p, ",\"path\":");
    p = put_string(b, line, p, e->path);
    PUT(p, ",\"size\":");
    p = put_u64(p, e->size);
    PUT(p, ",\"type\":\"");
    p = stpcpy(p, type_name(e->type));
    PUT(p, "\",\"is_dir\":");
    p = stpcpy(p, bools[isdir]);
    PUT(p, ",\"is_directory\":");
    p = stpcpy(p, bools[isdir]);
    PUT(p, ",\"is_file\":");
    p = stpcpy(p, bools[e->type == FILES_FILE]);
    PUT(p, ",\"is_symlink\":");
    p = stpcpy(p, bools[e->type == FILES_SYMLINK]);
    PUT(p, ",\"symlink_target\":");
    if (e->type != FILES_SYMLINK)
        PUT(p, "null");
    else
        p = put_string(b, line, p, e->target);
    PUT(p, ",\"modified\":\"");
    memcpy(p, when, 24);
    p += 24;
    PUT(p, "\",\"modified_time\":\"");
    memcpy(p, when, 24);
    p += 24;
    PUT(p, "\",\"permissions\":\"");
    files_perm_string(e->mode, p);
    p += 9;
    PUT(p, "\",\"mode\":\"");
    for (int sh = 9; sh >= 0; sh -= 3)
        *p++ = (char)('0' + (e->mode >> sh & 7));
    PUT(p, "\",\"owner\":");
    p = put_string(b, line, p, e->owner);
    PUT(p, ",\"group\":");
    p = put_string(b, line, p, e->group);
    *p++ = '}';
    buf_append(b, line, (size_t)(p - line));
}

/* ---- setup ---- */

int api_files_init(const char *root, const char *workdir)
{
    /* a test knob: the O_NOFOLLOW walk that kernels before 5.6 get, on any kernel */
    const char *walk = getenv("SANDBOX_AGENT_FILES_NO_OPENAT2");
    int flags = walk && *walk && strcmp(walk, "0") != 0 ? FILES_NO_OPENAT2 : 0;
    if (files_init(root, workdir, flags) < 0) {
        fprintf(stderr, "sandbox-agent: --files-root %s: %s\n", root ? root : "/",
                strerror(errno));
        return -1;
    }
    server_set_body_hook(api_body_hook);
    if (root)
        log_line("level=info event=files root=\"%s\" confinement=%s", root,
                 files_confinement());
    return 0;
}

/* ---- read and download ---- */

static void read_at(struct server_request *req, struct server_reply *rep, const char *path)
{
    char enc[16] = "utf-8";
    int el = http_query_get(req->query, req->query_len, "encoding", enc, sizeof enc);
    int base64 = el >= 0 && !strcasecmp(enc, "base64");
    if (el >= 0 && !base64 && strcasecmp(enc, "utf-8") && strcasecmp(enc, "utf8") &&
        strcasecmp(enc, "text")) {
        answer_error(req, rep, 400, "INVALID_REQUEST", "encoding must be utf-8 or base64", path);
        return;
    }
    struct stat st;
    int fd = files_open_read(path, &st);
    if (fd < 0) {
        answer_errno(req, rep, errno, path);
        return;
    }
    if ((uint64_t)st.st_size > LIMIT_FILES_READ) {
        close(fd);
        answer_error(req, rep, 413, "PAYLOAD_TOO_LARGE",
                     "file is over 64 MiB: fetch it with /files/download", path);
        return;
    }
    size_t size = (size_t)st.st_size, got = 0;
    char *data = malloc(size + 1);
    while (data && got < size) {
        ssize_t n = read(fd, data + got, size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;   /* shrank meanwhile: what is there is the answer */
        got += (size_t)n;
    }
    int err = errno;
    close(fd);
    if (!data) {
        answer_errno(req, rep, ENOMEM, path);
        return;
    }
    if (got < size && err != 0 && errno != 0) {
        free(data);
        answer_errno(req, rep, err, path);
        return;
    }
    if (!base64 && !utf8_valid((unsigned char *)data, got)) {
        free(data);
        answer_error(req, rep, 400, "FILE_OPERATION_FAILED",
                     "file is not valid UTF-8 text: read it with encoding=base64 or "
                     "/files/download", path);
        return;
    }
    struct buf *b = &rep->body;
    buf_putc(b, '{');
    json_put_key(b, "content");
    if (base64) {
        buf_putc(b, '"');
        if (buf_reserve(b, B64_ENCODED_LEN(got)) == 0)
            b->len += b64_encode((unsigned char *)data, got, b->data + b->len);
        buf_putc(b, '"');
    } else {
        json_put_str(b, data, got);
    }
    free(data);
    json_put_key(b, "path");
    json_put_cstr(b, path);
    json_put_key(b, "size");
    json_put_int(b, (int64_t)got);
    json_put_key(b, "encoding");
    json_put_cstr(b, base64 ? "base64" : "utf-8");
    buf_putc(b, '}');
}

/* A strong validator from what identifies this version of the file. */
static void make_etag(const struct stat *st, char out[80])
{
    snprintf(out, 80, "\"%" PRIx64 "-%" PRIx64 "-%" PRIx64 "\"", (uint64_t)st->st_ino,
             (uint64_t)st->st_size,
             (uint64_t)st->st_mtim.tv_sec * 1000000000u + (uint64_t)st->st_mtim.tv_nsec);
}

static int header_has(const struct server_request *req, const char *name, const char *token)
{
    const struct http_header *h = http_find_header(req->http, name);
    if (!h)
        return -1;
    size_t tl = strlen(token);
    if (h->value_len == 1 && h->value[0] == '*')
        return 1;
    for (size_t i = 0; i + tl <= h->value_len; i++)
        if (!memcmp(h->value + i, token, tl))
            return 1;
    return 0;
}

/* One "bytes=a-b" range against size. Returns 1 with [*from, *to] (inclusive), 0 when
 * there is no usable Range (absent, several ranges, another unit: send it all), -1 when
 * unsatisfiable (416). */
static int parse_range(const struct http_header *h, uint64_t size, uint64_t *from, uint64_t *to)
{
    if (!h || h->value_len < 7 || strncasecmp(h->value, "bytes=", 6) != 0)
        return 0;
    const char *s = h->value + 6, *end = h->value + h->value_len;
    if (memchr(s, ',', (size_t)(end - s)))
        return 0;
    uint64_t a = 0, b = 0;
    int has_a = 0, has_b = 0;
    while (s < end && *s >= '0' && *s <= '9' && a < UINT64_MAX / 10)
        a = a * 10 + (uint64_t)(*s++ - '0'), has_a = 1;
    if (s == end || *s++ != '-')
        return 0;
    while (s < end && *s >= '0' && *s <= '9' && b < UINT64_MAX / 10)
        b = b * 10 + (uint64_t)(*s++ - '0'), has_b = 1;
    if (s != end || (!has_a && !has_b))
        return 0;
    if (!has_a) {   /* the last b bytes */
        if (b == 0 || size == 0)
            return -1;
        *from = b >= size ? 0 : size - b;
        *to = size - 1;
        return 1;
    }
    if (a >= size || (has_b && b < a))
        return has_b && b < a ? 0 : -1;
    *from = a;
    *to = has_b && b < size ? b : size - 1;
    return 1;
}

/* Content-Disposition with a plain ASCII fallback and the exact name (RFC 6266, 8187). */
static void put_disposition(struct buf *h, const char *name)
{
    buf_puts(h, "Content-Disposition: attachment; filename=\"");
    for (const char *p = name; *p; p++)
        buf_putc(h, (*p >= 0x20 && *p < 0x7f && *p != '"' && *p != '\\') ? *p : '_');
    buf_puts(h, "\"; filename*=UTF-8''");
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            strchr("!#$&+-.^_`|~", *p))
            buf_putc(h, (char)*p);
        else
            buf_printf(h, "%%%02X", *p);
    }
    buf_puts(h, "\r\n");
}

static void download_at(struct server_request *req, struct server_reply *rep, const char *path)
{
    struct stat st;
    int fd = files_open_read(path, &st);
    if (fd < 0) {
        answer_errno(req, rep, errno, path);
        return;
    }
    char etag[80], date[30];
    make_etag(&st, etag);
    util_http_date(st.st_mtim.tv_sec, date);
    const char *name = strrchr(path, '/');
    name = name && name[1] ? name + 1 : path;
    struct buf *h = &rep->headers;
    buf_printf(h, "ETag: %s\r\nLast-Modified: %s\r\nAccept-Ranges: bytes\r\n", etag, date);
    put_disposition(h, name);
    if (header_has(req, "if-none-match", etag) == 1) {
        close(fd);
        rep->status = 304;
        rep->content_type = OCTET;
        return;
    }
    uint64_t size = (uint64_t)st.st_size, from = 0, to = size ? size - 1 : 0;
    int r = parse_range(http_find_header(req->http, "range"), size, &from, &to);
    /* If-Range: the range only applies to the version the client has (else send it all) */
    const struct http_header *ifr = http_find_header(req->http, "if-range");
    if (r != 0 && ifr && !(ifr->value_len == strlen(etag) && !memcmp(ifr->value, etag, ifr->value_len)) &&
        !(ifr->value_len == strlen(date) && !memcmp(ifr->value, date, ifr->value_len)))
        r = 0, from = 0, to = size ? size - 1 : 0;
    if (r < 0) {
        close(fd);
        char msg[96];
        snprintf(msg, sizeof msg, "range not satisfiable: the file has %" PRIu64 " bytes", size);
        answer_error(req, rep, 416, "INVALID_REQUEST", msg, path);
        buf_printf(&rep->headers, "Content-Range: bytes */%" PRIu64 "\r\n", size);
        return;
    }
    if (r > 0) {
        rep->status = 206;
        buf_printf(h, "Content-Range: bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64 "\r\n", from, to,
                   size);
    }
    rep->content_type = OCTET;
    server_reply_file(rep, fd, from, size ? to - from + 1 : 0);
}

/* ---- write ---- */

/* Opens a success answer: {"success":true,"<key>":"<value>" (the caller adds the rest and
 * the closing brace). */
static void put_success(struct buf *b, const char *key, const char *value)
{
    buf_putc(b, '{');
    json_put_key(b, "success");
    json_put_bool(b, 1);
    json_put_key(b, key);
    json_put_cstr(b, value);
}

static void answer_written(struct server_reply *rep, const char *path, uint64_t size,
                           const char *what)
{
    struct buf *b = &rep->body;
    buf_reset(b);
    rep->status = 200;
    put_success(b, "path", path);
    json_put_key(b, "size");
    json_put_int(b, (int64_t)size);
    json_put_key(b, "message");
    json_put_cstr(b, what);
    buf_putc(b, '}');
}

int api_files_write(const struct api_ctx *c, struct server_request *req, struct server_reply *rep,
                    const char *param, size_t param_len)
{
    (void)param, (void)param_len;
    struct fields f;
    struct decode_arena ar;
    if (body_open(req, rep, &write_table, &ar, &f) < 0)
        return 0;
    size_t n = f.content.len;
    if (f.base64) {   /* decoded in place: the arena's copy is ours */
        long k = b64_decode(f.content.p, n, (unsigned char *)f.content.p, B64_LAX);
        if (k < 0) {
            answer_error(req, rep, 400, "INVALID_REQUEST", "content is not valid base64",
                         f.from_path);
            goto out;
        }
        n = (size_t)k;
    }
    struct files_writer w;
    char abs[PATH_MAX];
    struct runas_user u;
    const struct runas_user *owner;
    if (owner_get(c, req, rep, f.user, &u, &owner) < 0)
        goto out;
    if (files_writer_open(&w, f.from_path, owner) < 0) {
        answer_errno(req, rep, errno, f.from_path);
        goto out;
    }
    if (files_writer_write(&w, f.content.p, n) < 0) {
        files_writer_abort(&w);
        answer_errno(req, rep, errno, f.from_path);
        goto out;
    }
    if (files_writer_commit(&w, NULL, f.mode_bits, f.overwrite != 0, abs) < 0) {
        answer_errno(req, rep, errno, f.from_path);
        goto out;
    }
    answer_written(rep, abs, n, "file written");
out:
    decode_arena_close(&ar);
    return 0;
}

/* ---- upload: streamed to disk ---- */

enum part_kind { PART_SKIP, PART_FILE, PART_PATH };

struct upload {
    struct files_writer w;
    int open;                  /* w holds a temporary file */
    int multipart;
    struct multipart mp;
    enum part_kind part;
    int file_seen, file_done;
    char path[PATH_MAX];       /* target: from ?path= or the path field */
    int have_path;
    int opened_on_path;        /* w was opened in the target's directory */
    char field[PATH_MAX];      /* the path field's bytes */
    size_t field_len;
    int overwrite, mode;
    struct runas_user user;    /* the owner (?user=, --default-user) when owner is set */
    const struct runas_user *owner;
    /* the first failure; the rest of the body is then read and dropped, and the answer
     * given at its end (answering mid-body would race the client's sending) */
    int failed;
    int err;                   /* errno for answer_errno, or 0 with status/code/msg */
    int status;
    const char *code;
    const char *msg;
    char rid[LIMIT_REQUEST_ID + 1];
    struct inflate *gz;        /* Content-Encoding: gzip: the body inflated on the way */
    uint64_t inflated, gzip_limit;
};

static void upload_fail(struct upload *u, int err, int status, const char *code,
                        const char *msg)
{
    if (u->failed)
        return;
    u->failed = 1;
    u->err = err;
    u->status = status;
    u->code = code;
    u->msg = msg;
    if (u->open)
        files_writer_abort(&u->w);
    u->open = 0;
}

static void upload_write(struct upload *u, const char *p, size_t n)
{
    if (u->failed || !u->open)
        return;
    if (files_writer_write(&u->w, p, n) < 0)
        upload_fail(u, errno, 0, NULL, NULL);
}

/* The file part begins: open the writer beside the target when it is known, else stage. */
static void upload_file_begin(struct upload *u)
{
    u->file_seen = 1;
    if (u->open || u->failed)
        return;
    if (files_writer_open(&u->w, u->have_path ? u->path : NULL, u->owner) < 0) {
        upload_fail(u, errno, 0, NULL, NULL);
        return;
    }
    u->open = 1;
    u->opened_on_path = u->have_path;
}

static void upload_event(struct upload *u, const struct multipart_event *ev)
{
    struct multipart *m = &u->mp;
    switch (ev->kind) {
    case MULTIPART_PART:
        u->part = PART_SKIP;
        if (m->name_len == 4 && !memcmp(m->name, "path", 4) && !m->has_filename) {
            u->part = PART_PATH;
            u->field_len = 0;
        } else if (!u->file_seen && ((m->name_len == 4 && !memcmp(m->name, "file", 4)) ||
                                     m->has_filename)) {
            u->part = PART_FILE;
            upload_file_begin(u);
        }
        break;
    case MULTIPART_DATA:
        if (u->part == PART_FILE) {
            upload_write(u, ev->data, ev->len);
        } else if (u->part == PART_PATH) {
            if (u->field_len + ev->len >= sizeof u->field) {
                upload_fail(u, 0, 400, "INVALID_PATH", "path field over PATH_MAX bytes");
                u->part = PART_SKIP;
                break;
            }
            memcpy(u->field + u->field_len, ev->data, ev->len);
            u->field_len += ev->len;
        }
        break;
    case MULTIPART_PART_END:
        if (u->part == PART_FILE)
            u->file_done = 1;
        if (u->part == PART_PATH && !u->have_path) {   /* ?path= wins over the field */
            u->field[u->field_len] = 0;
            if (u->field_len == 0 || memchr(u->field, 0, u->field_len)) {
                upload_fail(u, 0, 400, "INVALID_PATH", "path field is empty or holds a NUL");
                break;
            }
            memcpy(u->path, u->field, u->field_len + 1);
            u->have_path = 1;
        }
        u->part = PART_SKIP;
        break;
    case MULTIPART_END:
    case MULTIPART_NONE:
        break;
    }
}

/* The body's bytes (inflated when it was gzip): the file's, or a multipart body's. */
static void upload_body(struct upload *u, const char *p, size_t n)
{
    if (!u->multipart) {
        upload_write(u, p, n);
        return;
    }
    for (size_t i = 0; i < n && !u->mp.done;) {
        struct multipart_event ev;
        long r = multipart_feed(&u->mp, p + i, n - i, &ev);
        if (r < 0) {
            upload_fail(u, 0, 400, "INVALID_REQUEST",
                        r == MULTIPART_TOO_LARGE ? "multipart part headers too large"
                                                 : "malformed multipart/form-data body");
            break;
        }
        upload_event(u, &ev);
        i += (size_t)r;
    }
}

/* Inflates p[0..n) (n 0: drains what is pending) into upload_body, within gzip_limit. */
static void upload_inflate(struct upload *u, const char *p, size_t n)
{
    char out[LIMIT_GZIP_CHUNK];
    for (size_t off = 0; !u->failed;) {
        size_t used, made;
        if (inflate_run(u->gz, p + off, n - off, &used, out, sizeof out, &made) < 0) {
            upload_fail(u, 0, 400, "INVALID_REQUEST", u->gz->error);
            return;
        }
        off += used;
        u->inflated += made;
        if (u->inflated > u->gzip_limit) {
            upload_fail(u, 0, 413, "PAYLOAD_TOO_LARGE",
                        "gzip upload inflates past --gzip-limit bytes");
            return;
        }
        upload_body(u, out, made);
        if (off == n && made < sizeof out)
            return;
    }
}

static size_t upload_data(void *ctx, const char *p, size_t n)
{
    struct upload *u = ctx;
    if (u->gz)
        upload_inflate(u, p, n);
    else
        upload_body(u, p, n);
    return n;   /* files are written synchronously: never busy */
}

static void upload_free(struct upload *u)
{
    if (u->open)
        files_writer_abort(&u->w);
    free(u->gz);
    free(u);
}

static void upload_abort(void *ctx)
{
    upload_free(ctx);   /* a cut-off upload: the temporary file goes, nothing is left */
}

static void upload_end(void *ctx, struct server_reply *rep)
{
    struct upload *u = ctx;
    struct server_request req = { .request_id = u->rid };
    if (u->gz && !u->failed) {
        upload_inflate(u, "", 0);
        if (!u->failed && !inflate_done(u->gz))
            upload_fail(u, 0, 400, "INVALID_REQUEST", "gzip body ends before its gzip trailer");
    }
    if (!u->failed && u->multipart && !u->mp.done)
        upload_fail(u, 0, 400, "INVALID_REQUEST", "multipart body ended before its closing "
                                                  "boundary");
    if (!u->failed && u->multipart && !u->file_done)
        upload_fail(u, 0, 400, "MISSING_PARAMETER", "no file part in the multipart body");
    if (!u->failed && !u->have_path)
        upload_fail(u, 0, 400, "MISSING_PARAMETER", "path is required (a path field or ?path=)");
    char abs[PATH_MAX];
    uint64_t size = u->w.size;
    if (!u->failed) {
        u->open = 0;
        if (files_writer_commit(&u->w, u->opened_on_path ? NULL : u->path, u->mode,
                                u->overwrite, abs) < 0)
            upload_fail(u, errno, 0, NULL, NULL);
    }
    if (!u->failed)
        answer_written(rep, abs, size, "file uploaded");
    else if (u->err)
        answer_errno(&req, rep, u->err, u->have_path ? u->path : NULL);
    else
        answer_error(&req, rep, u->status, u->code, u->msg, u->have_path ? u->path : NULL);
    upload_free(u);
}

int api_files_upload_stream(const struct api_ctx *c, struct server_request *req,
                            struct server_reply *rep, struct server_sink *sink)
{
    struct upload *u = calloc(1, sizeof *u);
    if (!u) {
        answer_errno(req, rep, ENOMEM, NULL);
        return SERVER_ANSWERED;
    }
    snprintf(u->rid, sizeof u->rid, "%s", req->request_id);
    u->mode = -1;
    u->gzip_limit = c->gzip_limit;
    /* Content-Encoding covers the whole body: gzip is inflated on the way, identity is the
     * bytes; anything else is refused rather than stored encoded as if it were the file */
    const struct http_header *ce = http_find_header(req->http, "content-encoding");
    int gzip = ce && ((ce->value_len == 4 && !strncasecmp(ce->value, "gzip", 4)) ||
                      (ce->value_len == 6 && !strncasecmp(ce->value, "x-gzip", 6)));
    if (ce && !gzip && !(ce->value_len == 8 && !strncasecmp(ce->value, "identity", 8))) {
        free(u);
        answer_error(req, rep, 415, "UNSUPPORTED_MEDIA_TYPE",
                     "Content-Encoding is not supported: send gzip or identity", NULL);
        return SERVER_ANSWERED;
    }
    if (gzip && !(u->gz = malloc(sizeof *u->gz))) {
        free(u);
        answer_errno(req, rep, ENOMEM, NULL);
        return SERVER_ANSWERED;
    }
    if (gzip)
        inflate_init(u->gz);
    int r = query_path(req, rep, "path", u->path);
    int ow = r < 0 ? -1 : query_bool(req, rep, "overwrite", 1);
    char mode[8];
    int ml = http_query_get(req->query, req->query_len, "mode", mode, sizeof mode);
    if (ow >= 0 && ml >= 0 && (u->mode = parse_mode(mode, (size_t)ml)) < 0) {
        answer_error(req, rep, 400, "INVALID_REQUEST", "?mode= must be octal such as 0644",
                     NULL);
        ow = -1;
    }
    if (ow < 0 || owner_get(c, req, rep, NULL, &u->user, &u->owner) < 0) {
        upload_free(u);
        return SERVER_ANSWERED;
    }
    u->overwrite = ow;
    u->have_path = r == 1;
    const struct http_header *ct = http_find_header(req->http, "content-type");
    char boundary[LIMIT_MULTIPART_BOUNDARY + 1];
    int bl = ct ? multipart_boundary(ct->value, ct->value_len, boundary) : -1;
    if (ct && bl < 0 && ct->value_len >= 10 && !strncasecmp(ct->value, "multipart/", 10)) {
        upload_free(u);
        answer_error(req, rep, 400, "INVALID_REQUEST",
                     "multipart uploads need multipart/form-data with a boundary", NULL);
        return SERVER_ANSWERED;
    }
    u->multipart = bl > 0;
    if (u->multipart)
        multipart_init(&u->mp, boundary, (size_t)bl);
    else if (!u->have_path) {
        upload_free(u);
        answer_error(req, rep, 400, "MISSING_PARAMETER",
                     "path is required (?path=) for a raw upload", NULL);
        return SERVER_ANSWERED;
    }
    /* a known target is checked before any byte is read: refusals come at once */
    if (u->have_path && !u->overwrite && entry_exists(u->path)) {
        answer_errno(req, rep, EEXIST, u->path);
        upload_free(u);
        return SERVER_ANSWERED;
    }
    if (u->have_path) {   /* the temporary file beside the target, at once */
        upload_file_begin(u);
        u->file_seen = 0;   /* a multipart body's file part is still to come */
        if (u->failed) {
            answer_errno(req, rep, u->err, u->path);
            upload_free(u);
            return SERVER_ANSWERED;
        }
    }
    *sink = (struct server_sink){ upload_data, upload_end, upload_abort, u };
    return SERVER_STREAM;
}

/* A body-less upload (no Content-Length, no chunked): an empty file at ?path=. */
int api_files_upload(const struct api_ctx *c, struct server_request *req, struct server_reply *rep,
                     const char *param, size_t param_len)
{
    (void)param, (void)param_len;
    char path[PATH_MAX];
    if (need_query_path(req, rep, path) < 0)
        return 0;
    int ow = query_bool(req, rep, "overwrite", 1);
    struct runas_user u;
    const struct runas_user *owner;
    if (ow < 0 || owner_get(c, req, rep, NULL, &u, &owner) < 0)
        return 0;
    struct files_writer w;
    char abs[PATH_MAX];
    if (files_writer_open(&w, path, owner) < 0 || files_writer_commit(&w, NULL, -1, ow, abs) < 0) {
        answer_errno(req, rep, errno, path);
        return 0;
    }
    answer_written(rep, abs, 0, "file uploaded");
    return 0;
}

/* ---- list, exists, stat ---- */

static int list_one(void *ctx, const struct files_entry *e)
{
    struct buf *b = ctx;
    json_sep(b);
    put_entry(b, e);
    return b->failed ? -1 : 0;
}

int api_files_list(const struct api_ctx *c, struct server_request *req, struct server_reply *rep,
                   const char *param, size_t param_len)
{
    (void)param, (void)param_len;
    char path[PATH_MAX], depth_s[8], abs[PATH_MAX];
    int r = query_path(req, rep, "path", path);
    if (r < 0)
        return 0;
    if (r == 0)
        snprintf(path, sizeof path, "%s", c->workdir);
    long depth = 1;
    if (http_query_get(req->query, req->query_len, "depth", depth_s, sizeof depth_s) >= 0) {
        char *end;
        depth = strtol(depth_s, &end, 10);
        if (*end || depth < 1 || depth > LIMIT_FILES_DEPTH) {
            answer_error(req, rep, 400, "INVALID_REQUEST", "depth must be 1..32", path);
            return 0;
        }
    }
    struct buf *b = &rep->body;
    buf_reserve(b, 256 << 10);   /* most listings fit; big ones grow by doubling */
    buf_puts(b, "{\"files\":[");
    int truncated;
    long n = files_list(path, (int)depth, LIMIT_FILES_LIST, list_one, b, &truncated, abs);
    if (n < 0) {
        answer_errno(req, rep, errno, path);
        return 0;
    }
    buf_putc(b, ']');
    json_put_key(b, "path");
    json_put_cstr(b, abs);
    json_put_key(b, "count");
    json_put_int(b, n);
    json_put_key(b, "truncated");
    json_put_bool(b, truncated);
    buf_putc(b, '}');
    return 0;
}

static void exists_at(struct server_request *req, struct server_reply *rep, const char *path)
{
    (void)req;
    struct files_entry *e = entry_new(path);
    int ok = e != NULL;
    struct buf *b = &rep->body;
    buf_putc(b, '{');
    json_put_key(b, "exists");
    json_put_bool(b, ok);
    json_put_key(b, "path");
    json_put_cstr(b, path);
    json_put_key(b, "type");
    json_put_cstr(b, ok ? type_name(e->type) : NULL);
    buf_putc(b, '}');
    free(e);
}

static void stat_at(struct server_request *req, struct server_reply *rep, const char *path)
{
    struct files_entry *e = entry_new(path);
    if (!e) {
        answer_errno(req, rep, errno, path);
        return;
    }
    put_entry(&rep->body, e);
    free(e);
}

/* ---- remove, mkdir, move ---- */

static void remove_at(struct server_request *req, struct server_reply *rep, const char *path)
{
    int recursive = query_bool(req, rep, "recursive", 1);
    if (recursive < 0)
        return;
    if (files_remove(path, recursive) < 0) {
        answer_errno(req, rep, errno, path);
        return;
    }
    struct buf *b = &rep->body;
    put_success(b, "path", path);
    json_put_key(b, "removed");
    json_put_bool(b, 1);
    buf_putc(b, '}');
}

int api_files_mkdir(const struct api_ctx *c, struct server_request *req, struct server_reply *rep,
                    const char *param, size_t param_len)
{
    (void)param, (void)param_len;
    struct fields f;
    struct decode_arena ar;
    struct runas_user u;
    const struct runas_user *owner;
    int created;
    if (body_open(req, rep, &mkdir_table, &ar, &f) < 0)
        return 0;
    if (owner_get(c, req, rep, f.user, &u, &owner) < 0)
        goto out;
    mode_t mode = f.mode_bits >= 0 ? (mode_t)f.mode_bits : 0755;
    if (files_mkdir(f.from_path, mode, owner, &created) < 0) {
        answer_errno(req, rep, errno, f.from_path);
        goto out;
    }
    struct buf *b = &rep->body;
    put_success(b, "path", f.from_path);
    json_put_key(b, "created");
    json_put_bool(b, created);
    buf_putc(b, '}');
out:
    decode_arena_close(&ar);
    return 0;
}

int api_files_move(const struct api_ctx *c, struct server_request *req, struct server_reply *rep,
                   const char *param, size_t param_len)
{
    (void)param, (void)param_len;
    struct fields f;
    struct decode_arena ar;
    struct runas_user u;
    const struct runas_user *owner;   /* of the parents a move creates; what moves keeps its */
    if (body_open(req, rep, &move_table, &ar, &f) < 0)
        return 0;
    if (owner_get(c, req, rep, f.user, &u, &owner) < 0)
        goto out;
    if (files_move(f.from_path, f.to_path, f.overwrite > 0, owner) < 0) {
        int err = errno;
        /* name the side that failed: a missing source, or the destination */
        answer_errno(req, rep, err, entry_exists(f.from_path) ? f.to_path : f.from_path);
        goto out;
    }
    struct buf *b = &rep->body;
    put_success(b, "from", f.from_path);
    json_put_key(b, "to");
    json_put_cstr(b, f.to_path);
    buf_putc(b, '}');
out:
    decode_arena_close(&ar);
    return 0;
}

/* ---- the ?path= endpoints (with_path) ---- */

int api_files_read(const struct api_ctx *c, struct server_request *req, struct server_reply *rep,
                   const char *param, size_t param_len)
{
    (void)c, (void)param, (void)param_len;
    return with_path(req, rep, read_at);
}

int api_files_download(const struct api_ctx *c, struct server_request *req, struct server_reply *rep,
                       const char *param, size_t param_len)
{
    (void)c, (void)param, (void)param_len;
    return with_path(req, rep, download_at);
}

int api_files_exists(const struct api_ctx *c, struct server_request *req, struct server_reply *rep,
                     const char *param, size_t param_len)
{
    (void)c, (void)param, (void)param_len;
    return with_path(req, rep, exists_at);
}

int api_files_stat(const struct api_ctx *c, struct server_request *req, struct server_reply *rep,
                   const char *param, size_t param_len)
{
    (void)c, (void)param, (void)param_len;
    return with_path(req, rep, stat_at);
}

int api_files_remove(const struct api_ctx *c, struct server_request *req, struct server_reply *rep,
                     const char *param, size_t param_len)
{
    (void)c, (void)param, (void)param_len;
    return with_path(req, rep, remove_at);
}
