#include "api_term.h"

#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api.h"
#include "b64.h"
#include "decode.h"
#include "json.h"
#include "limits.h"
#include "proc.h"

/* ---- helpers ---- */

static struct proc *find_or_404(struct server_request *req, struct server_reply *rep,
                                const char *id, size_t len)
{
    struct proc *p = proc_find(id, len);
    if (!p) {
        char msg[64];
        snprintf(msg, sizeof msg, "no such process: %.*s", (int)(len < 32 ? len : 32), id);
        api_error(req, rep, 404, "PROCESS_NOT_FOUND", msg);
    }
    return p;
}

/* What the errno of proc_stdin_write/close/resize means to a client. */
static const struct {
    int err, status;
    const char *code, *text;
} errnos[] = {
    { EBADF, 409, "INVALID_REQUEST",
      "the process has no stdin: start it with \"stdin\": true or \"pty\": true" },
    { EPIPE, 409, "INVALID_REQUEST", "the process's stdin is closed" },
    { EAGAIN, 429, "STDIN_FULL",
      "1 MiB of stdin is pending: the process is not reading; retry later" },
    { EMSGSIZE, 413, "PAYLOAD_TOO_LARGE", "stdin writes are at most 1 MiB each: send it in parts" },
    { ENOTTY, 409, "INVALID_REQUEST", "the process has no terminal: start it with \"pty\": true" },
    { ESRCH, 409, "INVALID_REQUEST", "the process has finished" },
    { EINVAL, 400, "INVALID_REQUEST", "cols and rows must be from 1 to 65535" },
};
#define NERRNOS (sizeof errnos / sizeof errnos[0])

static size_t errno_index(int err)
{
    size_t i = 0;
    while (i < NERRNOS && errnos[i].err != err)
        i++;
    return i;
}

const char *api_term_errno_code(int err)
{
    size_t i = errno_index(err);
    return i < NERRNOS ? errnos[i].code : "INTERNAL_ERROR";
}

const char *api_term_errno_text(int err)
{
    size_t i = errno_index(err);
    return i < NERRNOS ? errnos[i].text : strerror(err);
}

static void answer_errno(struct server_request *req, struct server_reply *rep, int err)
{
    size_t i = errno_index(err);
    api_error(req, rep, i < NERRNOS ? errnos[i].status : 500, api_term_errno_code(err),
              api_term_errno_text(err));
    if (err == EAGAIN)
        buf_puts(&rep->headers, "Retry-After: 1\r\n");
}

static void answer_stdin(struct server_reply *rep, const struct proc *p, size_t n)
{
    struct buf *b = &rep->body;
    rep->status = 200;
    buf_putc(b, '{');
    json_put_key(b, "process_id");
    json_put_cstr(b, p->id);
    json_put_key(b, "bytes");
    json_put_int(b, (int64_t)n);
    json_put_key(b, "pending");
    json_put_int(b, (int64_t)p->stdin_pending);
    json_put_key(b, "stdin_closed");
    json_put_bool(b, p->stdin_closed);
    buf_putc(b, '}');
}

static int is_json(const struct server_request *req)
{
    const struct http_header *h = http_find_header(req->http, "content-type");
    return h && h->value_len >= 16 && !strncasecmp(h->value, "application/json", 16);
}

/* ?close=true|1 (-1: malformed, answered). */
static int query_close(struct server_request *req, struct server_reply *rep)
{
    char v[8];
    int rc = http_query_get(req->query, req->query_len, "close", v, sizeof v);
    if (rc == -1)
        return 0;
    if (rc >= 0 && (!strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "")))
        return 1;
    if (rc >= 0 && (!strcmp(v, "false") || !strcmp(v, "0")))
        return 0;
    api_error(req, rep, 400, "INVALID_REQUEST", "close must be true or false");
    return -1;
}

/* ---- endpoints ---- */

struct stdin_req {
    struct decode_bytes data;
    int encoding;   /* index in encodings */
    int close;      /* -1: not given */
};
static const char *const encodings[] = { "utf-8", "utf8", "base64", NULL };
#define SR(x) offsetof(struct stdin_req, x)
static const struct decode_field stdin_fields[] = {
    { "data", .type = DECODE_BYTES, .off = SR(data) },
    { "encoding", .type = DECODE_ENUM, .off = SR(encoding), .names = encodings },
    { "close", .type = DECODE_BOOL, .off = SR(close), .def_int = -1 },
};
static const struct decode_table stdin_table = DECODE_TABLE(stdin_fields);

int api_process_stdin(const struct api_ctx *c, struct server_request *req,
                      struct server_reply *rep, const char *param, size_t param_len)
{
    (void)c;
    int close_after = query_close(req, rep);
    if (close_after < 0)
        return 0;
    struct proc *p = find_or_404(req, rep, param, param_len);
    if (!p)
        return 0;
    const char *data = req->body;
    size_t n = req->body_len;
    struct decode_arena ar = { 0 };
    unsigned char *dec = NULL;
    if (is_json(req)) {   /* {data, encoding?, close?} */
        struct stdin_req r;
        if (decode_arena_open(&ar, DECODE_ARENA_FOR(req->body_len)) < 0) {
            api_error(req, rep, 500, "INTERNAL_ERROR", "out of memory");
            return 0;
        }
        if (api_decode_body(req, rep, &stdin_table, &ar, &r, NULL) < 0)
            goto done;
        close_after |= r.close == 1;
        data = r.data.p;
        n = r.data.p ? r.data.len : 0;
        if (n && !strcmp(encodings[r.encoding], "base64")) {
            long m = (dec = malloc(n)) ? b64_decode(data, n, dec, 0) : -2;
            if (m < 0) {
                if (m == -2)
                    api_error(req, rep, 500, "INTERNAL_ERROR", "out of memory");
                else
                    api_error(req, rep, 400, "INVALID_REQUEST", "'data' is not valid base64");
                goto done;
            }
            data = (const char *)dec;
            n = (size_t)m;
        }
    }
    if ((n && proc_stdin_write(p, data, n) < 0) || (close_after && proc_stdin_close(p) < 0)) {
        answer_errno(req, rep, errno);
        goto done;
    }
    answer_stdin(rep, p, n);
done:
    free(dec);
    decode_arena_close(&ar);
    return 0;
}

int api_process_stdin_close(const struct api_ctx *c, struct server_request *req,
                            struct server_reply *rep, const char *param, size_t param_len)
{
    (void)c;
    struct proc *p = find_or_404(req, rep, param, param_len);
    if (!p)
        return 0;
    if (proc_stdin_close(p) < 0)
        answer_errno(req, rep, errno);
    else
        answer_stdin(rep, p, 0);
    return 0;
}

struct resize_req {
    int64_t cols, rows;
};
static const struct decode_field resize_fields[] = {
    { "cols", .type = DECODE_INT, .off = offsetof(struct resize_req, cols),
      .flags = DECODE_REQUIRED, .min = 1, .max = 65535 },
    { "rows", .type = DECODE_INT, .off = offsetof(struct resize_req, rows),
      .flags = DECODE_REQUIRED, .min = 1, .max = 65535 },
};
static const struct decode_table resize_table = DECODE_TABLE(resize_fields);

int api_process_resize(const struct api_ctx *c, struct server_request *req,
                       struct server_reply *rep, const char *param, size_t param_len)
{
    (void)c;
    struct decode_arena ar;
    struct resize_req r;
    if (decode_arena_open(&ar, DECODE_ARENA_FOR(req->body_len)) < 0) {
        api_error(req, rep, 500, "INTERNAL_ERROR", "out of memory");
        return 0;
    }
    struct proc *p = NULL;
    if (api_decode_body(req, rep, &resize_table, &ar, &r, NULL) < 0 ||
        !(p = find_or_404(req, rep, param, param_len)))
        goto done;
    if (proc_resize(p, (unsigned)r.cols, (unsigned)r.rows) < 0) {
        answer_errno(req, rep, errno);
        goto done;
    }
    buf_printf(&rep->body, "{\"process_id\":\"%s\",\"cols\":%u,\"rows\":%u}", p->id, p->cols,
               p->rows);
done:
    decode_arena_close(&ar);
    return 0;
}

/* ---- WebSocket control messages ---- */

struct ctl {
    const char *type;
    struct decode_bytes data;
    int encoding;
    int64_t cols, rows;
    const char *signal;
};
#define CT(x) offsetof(struct ctl, x)
static const struct decode_field ctl_fields[] = {
    { "type", .type = DECODE_STRING, .off = CT(type), .flags = DECODE_REQUIRED, .max = 32 },
    { "data", .type = DECODE_BYTES, .off = CT(data) },
    { "encoding", .type = DECODE_ENUM, .off = CT(encoding), .names = encodings },
    { "cols", .type = DECODE_INT, .off = CT(cols), .min = 1, .max = 65535 },
    { "rows", .type = DECODE_INT, .off = CT(rows), .min = 1, .max = 65535 },
    { "signal", .type = DECODE_SCALAR, .off = CT(signal) },
};
static const struct decode_table ctl_table = DECODE_TABLE(ctl_fields);

static const char *ctl_fail(char *err, size_t cap, const char *code, const char *text)
{
    snprintf(err, cap, "%s", text);
    return code;
}

static const char *ctl_apply(struct proc *p, const struct ctl *m, char *err, size_t cap)
{
    int rc = 0;
    if (!strcmp(m->type, "stdin") || !strcmp(m->type, "input")) {
        const char *d = m->data.p;
        size_t n = d ? m->data.len : 0;
        unsigned char *dec = NULL;
        if (n && !strcmp(encodings[m->encoding], "base64")) {
            long k = (dec = malloc(n)) ? b64_decode(d, n, dec, 0) : -1;
            if (k < 0) {
                free(dec);
                return ctl_fail(err, cap, "INVALID_REQUEST", "'data' is not valid base64");
            }
            d = (const char *)dec;
            n = (size_t)k;
        }
        rc = n ? proc_stdin_write(p, d, n) : 0;
        int e = errno;
        free(dec);
        errno = e;
    } else if (!strcmp(m->type, "stdin_close")) {
        rc = proc_stdin_close(p);
    } else if (!strcmp(m->type, "resize")) {
        if (!m->cols || !m->rows)
            return ctl_fail(err, cap, "MISSING_PARAMETER", "'cols' and 'rows' are required");
        rc = proc_resize(p, (unsigned)m->cols, (unsigned)m->rows);
    } else if (!strcmp(m->type, "signal")) {
        int sig = m->signal ? proc_signal_parse(m->signal, strlen(m->signal)) : SIGTERM;
        if (sig <= 0)
            return ctl_fail(err, cap, "INVALID_REQUEST", "unknown signal");
        int k = proc_kill(p, sig);
        if (k == -1)
            return ctl_fail(err, cap, "INVALID_REQUEST", "the process has finished");
        if (k == -2)
            return ctl_fail(err, cap, "INVALID_REQUEST",
                            "the process is queued: only TERM, INT, QUIT or KILL apply yet");
    } else {
        snprintf(err, cap, "unknown message type: %s", m->type);
        return "INVALID_REQUEST";
    }
    if (rc < 0)
        return ctl_fail(err, cap, api_term_errno_code(errno), api_term_errno_text(errno));
    return NULL;
}

const char *api_term_control(struct proc *p, const char *data, size_t len, char *err,
                             size_t cap)
{
    struct decode_arena ar;
    struct decode_error e;
    struct ctl m;
    if (decode_arena_open(&ar, DECODE_ARENA_FOR(len)) < 0)
        return ctl_fail(err, cap, "INTERNAL_ERROR", "out of memory");
    const char *code;
    if (decode_body(&ctl_table, data, len, LIMIT_JSON_TOKENS, LIMIT_JSON_DEPTH, &ar, &m, NULL,
                    &e) < 0)
        code = ctl_fail(err, cap, e.code, e.msg);
    else
        code = ctl_apply(p, &m, err, cap);
    decode_arena_close(&ar);
    return code;
}
