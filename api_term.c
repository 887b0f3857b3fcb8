#include "api_term.h"

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api.h"
#include "decode.h"
#include "json.h"
#include "limits.h"
#include "proc.h"

/* ---- helpers ---- */

/* Standard base64 (RFC 4648 4), padding optional, no whitespace. Returns the decoded
 * length (out needs len * 3 / 4 + 3 bytes), or -1 when malformed. */
static long b64_decode(const char *s, size_t len, unsigned char *out)
{
    uint32_t acc = 0;
    int bits = 0;
    size_t n = 0;
    while (len && s[len - 1] == '=')
        len--;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        int v = c >= 'A' && c <= 'Z' ? c - 'A' : c >= 'a' && c <= 'z' ? c - 'a' + 26
              : c >= '0' && c <= '9' ? c - '0' + 52 : c == '+' ? 62 : c == '/' ? 63 : -1;
        if (v < 0)
            return -1;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (unsigned char)(acc >> bits);
        }
    }
    return bits >= 6 ? -1 : (long)n;   /* one char left over cannot make a byte */
}

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

/* errno of proc_stdin_write/close/resize as an answer. */
static void answer_errno(struct server_request *req, struct server_reply *rep, int err)
{
    switch (err) {
    case EBADF:
        api_error(req, rep, 409, "INVALID_REQUEST",
                  "the process has no stdin: start it with \"stdin\": true or \"pty\": true");
        break;
    case EPIPE:
        api_error(req, rep, 409, "INVALID_REQUEST", "the process's stdin is closed");
        break;
    case EAGAIN:
        api_error(req, rep, 429, "STDIN_FULL",
                  "1 MiB of stdin is pending: the process is not reading; retry later");
        buf_puts(&rep->headers, "Retry-After: 1\r\n");
        break;
    case EMSGSIZE:
        api_error(req, rep, 413, "PAYLOAD_TOO_LARGE",
                  "stdin writes are at most 1 MiB each: send it in parts");
        break;
    case ENOTTY:
        api_error(req, rep, 409, "INVALID_REQUEST",
                  "the process has no terminal: start it with \"pty\": true");
        break;
    case ESRCH:
        api_error(req, rep, 409, "INVALID_REQUEST", "the process has finished");
        break;
    case EINVAL:
        api_error(req, rep, 400, "INVALID_REQUEST", "cols and rows must be from 1 to 65535");
        break;
    default:
        api_error(req, rep, 500, "INTERNAL_ERROR", strerror(err));
    }
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
        if (decode_arena_open(&ar, 3 * req->body_len + 64 * 1024) < 0) {
            api_error(req, rep, 500, "INTERNAL_ERROR", "out of memory");
            return 0;
        }
        if (api_decode_body(req, rep, &stdin_table, &ar, &r, NULL) < 0)
            goto done;
        close_after |= r.close == 1;
        data = r.data.p;
        n = r.data.p ? r.data.len : 0;
        if (n && !strcmp(encodings[r.encoding], "base64")) {
            long m = (dec = malloc(n)) ? b64_decode(data, n, dec) : -2;
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
    if (decode_arena_open(&ar, 3 * req->body_len + 64 * 1024) < 0) {
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
