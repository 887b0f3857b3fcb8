#include "api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "api_files.h"
#include "api_ops.h"
#include "api_proc.h"
#include "api_python.h"
#include "api_stream.h"
#include "api_term.h"
#include "api_terminal.h"
#include "api_watch.h"
#include "cgroup.h"
#include "envset.h"
#include "hook.h"
#include "idem.h"
#include "limits.h"
#include "secret.h"
#include "util.h"


/* A pattern is a path whose segments may be "{name}": one segment, handed to the handler. */
struct route {
    const char *method;
    const char *pattern;
    api_route_fn *fn;
    int public;   /* no token needed */
};

static api_route_fn h_health, h_info;

static const struct route routes[] = {
    { "GET", "/health", h_health, 1 },
    { "GET", "/info", h_info, 0 },
    { "POST", "/commands/background", api_commands_background, 0 },
    { "POST", "/commands/run", api_commands_run, 0 },
    { "POST", "/execute/background", api_execute_background, 0 },
    { "POST", "/execute", api_execute_run, 0 },
    { "GET", "/execute/processes", api_processes_list, 0 },
    { "GET", "/execute/processes/{id}", api_process_get, 0 },
    { "DELETE", "/execute/processes/{id}", api_process_forget, 0 },
    { "GET", "/execute/processes/{id}/output", api_process_output, 0 },
    { "DELETE", "/execute/kill", api_kill_body, 0 },
    { "POST", "/execute/kill/{id}", api_kill_path, 0 },
    { "GET", "/env", api_env_get, 0 },
    { "PUT", "/env", api_env_put, 0 },
    { "PATCH", "/env", api_env_patch, 0 },
    { "DELETE", "/env", api_env_delete, 0 },
    { "GET", "/metrics/snapshot", api_metrics_snapshot, 0 },
    { "GET", "/metrics", api_metrics_prometheus, 0 },
    { "GET", "/processes", api_system_processes, 0 },
    /* webhooks (issue 16): async execution with a signed callback */
    { "POST", "/execute/async", api_execute_async, 0 },
    /* SDK parity (issue 12): every call of the official SDKs gets a typed answer (anything
     * under /desktop is answered in api_handle, for any method) */
    { "DELETE", "/env/{key}", api_env_delete_key, 0 },
    { "GET", "/cache", api_cache_get, 0 },
    { "GET", "/cache/stats", api_cache_get, 0 },
    { "POST", "/cache/clear", api_cache_clear, 0 },
    /* Python sessions (issue 19) */
    { "POST", "/execute/ipython", api_python_execute, 0 },
    { "GET", "/jupyter/sessions", api_python_sessions, 0 },
    { "DELETE", "/jupyter/sessions/{id}", api_python_delete, 0 },
    /* files (api_files.c); POST/PUT /files/upload bodies stream via api_body_hook */
    { "GET", "/files/read", api_files_read, 0 },
    { "GET", "/files/download", api_files_download, 0 },
    { "POST", "/files/write", api_files_write, 0 },
    { "POST", "/files/upload", api_files_upload, 0 },
    { "PUT", "/files/upload", api_files_upload, 0 },
    { "GET", "/files/list", api_files_list, 0 },
    { "GET", "/files/exists", api_files_exists, 0 },
    { "GET", "/files/stat", api_files_stat, 0 },
    { "DELETE", "/files/remove", api_files_remove, 0 },
    { "POST", "/files/mkdir", api_files_mkdir, 0 },
    { "POST", "/files/move", api_files_move, 0 },
    /* live streams (issue 14): WebSocket and SSE readers at their own offsets */
    { "GET", "/execute/stream", api_execute_stream, 0 },
    { "GET", "/execute/processes/{id}/stream", api_process_stream, 0 },
    { "GET", "/files/watch", api_files_watch, 0 },
    /* stdin and terminals (issue 15) */
    { "POST", "/execute/processes/{id}/stdin", api_process_stdin, 0 },
    { "POST", "/execute/processes/{id}/stdin/close", api_process_stdin_close, 0 },
    { "POST", "/execute/processes/{id}/resize", api_process_resize, 0 },
    { "GET", "/terminal", api_terminal, 0 },
};
#define NROUTES (sizeof routes / sizeof routes[0])

/* ---- helpers ---- */

void api_error(const struct server_request *req, struct server_reply *rep, int status,
               const char *code, const char *msg)
{
    buf_reset(&rep->body);
    rep->status = status;
    rep->content_type = NULL;
    struct buf *b = &rep->body;
    buf_putc(b, '{');
    json_put_key(b, "error");
    json_put_cstr(b, msg);
    json_put_key(b, "message");   /* what the SDKs show their users (API.md, Conventions) */
    json_put_cstr(b, msg);
    json_put_key(b, "code");
    json_put_cstr(b, code);
    json_put_key(b, "request_id");
    json_put_cstr(b, req->request_id);
    buf_putc(b, '}');
}

struct json_token *api_parse_body(const struct server_request *req, struct server_reply *rep)
{
    static const char empty[] = "{}";
    const char *s = req->body_len ? req->body : empty;
    size_t len = req->body_len ? req->body_len : 2;
    /* every value takes at least one byte of input, so len + 1 tokens never run out
     * before the text does (len / 2 + 2 suffices for valid JSON only: fuzz_json found
     * "[[[[[" answered 413 "too many values" instead of 400 INVALID_JSON) */
    size_t max = len + 1 < LIMIT_JSON_TOKENS ? len + 1 : LIMIT_JSON_TOKENS;
    struct json_token *toks = malloc(max * sizeof *toks);
    if (!toks) {
        api_error(req, rep, 500, "INTERNAL_ERROR", "out of memory");
        return NULL;
    }
    uint32_t at = 0;
    int n = json_parse_at(s, len, toks, (uint32_t)max, LIMIT_JSON_DEPTH, &at);
    if (n < 0 || toks[0].type != JSON_OBJECT) {
        char msg[80];
        snprintf(msg, sizeof msg, "request body %s (at byte %u)",
                 n == JSON_ERR_DEPTH ? "nests too deeply" : "is not valid JSON", at);
        if (n == JSON_ERR_TOKENS)
            api_error(req, rep, 413, "PAYLOAD_TOO_LARGE", "request body has too many values");
        else if (n < 0)
            api_error(req, rep, 400, "INVALID_JSON", msg);
        else
            api_error(req, rep, 400, "INVALID_REQUEST", "request body must be a JSON object");
        free(toks);
        return NULL;
    }
    return toks;
}

int api_decode_body(const struct server_request *req, struct server_reply *rep,
                    const struct decode_table *t, struct decode_arena *ar, void *out,
                    uint64_t *seen)
{
    struct decode_error e;
    if (decode_body(t, req->body, req->body_len, LIMIT_JSON_TOKENS, LIMIT_JSON_DEPTH, ar, out,
                    seen, &e) < 0) {
        api_decode_error(req, rep, &e);
        return -1;
    }
    return 0;
}

void api_decode_error(const struct server_request *req, struct server_reply *rep,
                      const struct decode_error *e)
{
    api_error(req, rep, e->status, e->code, e->msg);
}

/* Matches path against pattern; a "{name}" segment is returned in param. */
static int route_match(const char *pattern, const char *path, size_t len, const char **param,
                       size_t *param_len)
{
    size_t i = 0;
    for (const char *p = pattern; *p; p++) {
        if (*p == '{') {
            while (p[1] && *p != '}')
                p++;
            size_t start = i;
            while (i < len && path[i] != '/')
                i++;
            if (i == start)
                return 0;
            *param = path + start;
            *param_len = i - start;
            continue;
        }
        if (i >= len || path[i] != *p)
            return 0;
        i++;
    }
    return i == len;
}

/* 1 when req's path is prefix or under it ("/desktop", "/desktop/x"). */
static int path_under(const struct server_request *req, const char *prefix)
{
    size_t n = strlen(prefix);
    return req->path_len >= n && memcmp(req->path, prefix, n) == 0 &&
           (req->path_len == n || req->path[n] == '/');
}

static int method_is(const struct server_request *req, const char *m)
{
    return strlen(m) == req->method_len && memcmp(req->method, m, req->method_len) == 0;
}

/* What a client is told about a refused token. Claims are read only after the signature
 * matched, so naming the claim tells nothing to a forger; which part of the header or the
 * signature failed is never said. Only TOKEN_EXPIRED says "expired" (the SDKs map that
 * word to TokenExpiredError). */
static const char *auth_message(enum jwt_result r)
{
    switch (r) {
    case JWT_NO_EXP: return "token has no numeric exp claim: an expiry is required";
    case JWT_NOT_YET_VALID: return "token is not valid yet: its nbf is in the future";
    case JWT_ISSUED_IN_FUTURE: return "token is not valid yet: its iat is in the future";
    case JWT_BAD_CLAIM: return "token nbf and iat claims must be numbers";
    case JWT_BAD_AUDIENCE: return "token aud claim does not match this agent";
    case JWT_BAD_SUBJECT: return "token sub claim does not match this agent";
    case JWT_TOO_LONG: return "bearer token too long";
    default: return "invalid bearer token";
    }
}

/* Bearer token check; on failure answers 401 and returns -1. */
static int authorize(const struct api_ctx *c, struct server_request *req, struct server_reply *rep)
{
    if (c->no_auth)
        return 0;
    const struct http_header *h = http_find_header(req->http, "authorization");
    enum jwt_result r = JWT_MALFORMED;
    if (h && h->value_len > 7 && strncasecmp(h->value, "Bearer ", 7) == 0) {
        size_t off = 7;
        while (off < h->value_len && h->value[off] == ' ')
            off++;
        struct jwt_policy pol = { c->jwt_audience, c->jwt_subject, LIMIT_JWT_LEEWAY_S };
        int prev;
        r = secret_verify(c->keys, h->value + off, h->value_len - off, util_wall_ms() / 1000,
                          util_mono_us(), &pol, &prev);
        if (r == JWT_OK) {
            if (prev)
                req->note = "auth=previous_secret";   /* who still holds pre-rotation tokens */
            return 0;
        }
    }
    static const char *const notes[] = {
        [JWT_OK] = "auth=ok", [JWT_MALFORMED] = "auth=malformed", [JWT_TOO_LONG] = "auth=too_long",
        [JWT_BAD_ALG] = "auth=bad_alg", [JWT_BAD_SIGNATURE] = "auth=bad_signature",
        [JWT_NO_EXP] = "auth=no_exp", [JWT_EXPIRED] = "auth=expired",
        [JWT_NOT_YET_VALID] = "auth=not_yet_valid", [JWT_ISSUED_IN_FUTURE] = "auth=iat_future",
        [JWT_BAD_CLAIM] = "auth=bad_claim", [JWT_BAD_AUDIENCE] = "auth=bad_audience",
        [JWT_BAD_SUBJECT] = "auth=bad_subject",
    };
    req->note = h ? notes[r] : "auth=missing";
    buf_puts(&rep->headers, "WWW-Authenticate: Bearer\r\n");
    if (r == JWT_EXPIRED)
        api_error(req, rep, 401, "TOKEN_EXPIRED", "token expired");
    else
        api_error(req, rep, 401, "UNAUTHORIZED", h ? auth_message(r) : "missing bearer token");
    return -1;
}

/* ---- Idempotency-Key (idem.h) ---- */

/* A state-changing request with an Idempotency-Key: returns 1 when rep is already the
 * answer (the first answer replayed, or an error), 0 when the request is to run. */
static int idempotent(struct server_request *req, struct server_reply *rep)
{
    const struct http_header *h = http_find_header(req->http, "idempotency-key");
    if (!h || method_is(req, "GET"))
        return 0;
    if (!idem_key_valid(h->value, h->value_len)) {
        api_error(req, rep, 400, "INVALID_REQUEST",
                  "Idempotency-Key must be 1 to 255 visible ASCII characters");
        return 1;
    }
    const struct http_header *auth = http_find_header(req->http, "authorization");
    struct idem_key k = {
        auth ? auth->value : "", auth ? auth->value_len : 0, req->method, req->method_len,
        req->path, req->path_len, h->value, h->value_len,
    };
    struct idem_answer a;
    switch (idem_begin(&k, req->body, req->body_len, req->token, util_mono_us() / 1000, &a)) {
    case IDEM_FIRST:
        return 0;
    case IDEM_REPLAY:
        rep->status = a.status;
        rep->content_type = a.content_type;
        buf_append(&rep->headers, a.headers, a.headers_len);
        buf_puts(&rep->headers, "Idempotent-Replayed: true\r\n");
        buf_append(&rep->body, a.body, a.body_len);
        req->note = "idempotent=replayed";
        return 1;
    case IDEM_PENDING:
        api_error(req, rep, 409, "IDEMPOTENCY_CONFLICT",
                  "a request with this Idempotency-Key is still running; its answer is "
                  "replayed once it is sent (the process is in GET /execute/processes)");
        return 1;
    case IDEM_MISMATCH:
        api_error(req, rep, 409, "IDEMPOTENCY_CONFLICT",
                  "this Idempotency-Key was first used with a different request body");
        return 1;
    case IDEM_NOT_KEPT:
        api_error(req, rep, 409, "IDEMPOTENCY_CONFLICT",
                  "the first answer to this Idempotency-Key was too large to keep; nothing "
                  "was run again (the process is in GET /execute/processes)");
        return 1;
    }
    return 0;
}

void api_on_reply(uint64_t token, const struct server_reply *rep)
{
    struct idem_answer a = { rep->status, rep->content_type, rep->headers.data,
                             rep->headers.len, rep->body.data, rep->body.len };
    idem_answered(token, &a);
}

int api_handle(void *ctx, struct server_request *req, struct server_reply *rep)
{
    const struct api_ctx *c = ctx;
    if (method_is(req, "CONNECT")) {   /* we are an origin server, not a proxy */
        api_error(req, rep, 501, "METHOD_NOT_ALLOWED", "CONNECT is not supported");
        return 0;
    }
    if (path_under(req, "/desktop")) {   /* every method: the SDK raises
                                          * DesktopNotAvailableError and does not retry */
        if (authorize(c, req, rep) == 0)
            api_error(req, rep, 400, "DESKTOP_NOT_AVAILABLE", "no desktop in this sandbox");
        return 0;
    }
    const char *param = NULL;
    size_t param_len = 0;
    const struct route *found = NULL;
    char allow[64] = "";
    for (size_t i = 0; i < NROUTES; i++) {
        const struct route *r = &routes[i];
        if (!route_match(r->pattern, req->path, req->path_len, &param, &param_len))
            continue;
        if (method_is(req, r->method) && !found)
            found = r;
        if (!strstr(allow, r->method) && strlen(allow) + strlen(r->method) + 3 < sizeof allow) {
            if (*allow)
                strcat(allow, ", ");
            strcat(allow, r->method);
        }
    }
    if (!found && !*allow) {
        api_error(req, rep, 404, "NOT_FOUND", "no such endpoint");
        return 0;
    }
    if (!found) {
        if (strstr(allow, "GET") && !strstr(allow, "HEAD"))
            strcat(allow, ", HEAD");
        buf_printf(&rep->headers, "Allow: %s\r\n", allow);
        api_error(req, rep, 405, "METHOD_NOT_ALLOWED", "method not allowed on this endpoint");
        return 0;
    }
    if (!found->public && authorize(c, req, rep) < 0)
        return 0;
    if (idempotent(req, rep))
        return 0;
    /* the route's pattern may have matched with a param; match again to get this one's */
    route_match(found->pattern, req->path, req->path_len, &param, &param_len);
    rep->status = 200;
    return found->fn(c, req, rep, param, param_len);
}

int api_body_hook(void *ctx, struct server_request *req, struct server_reply *rep,
                  struct server_sink *sink)
{
    static const char upload[] = "/files/upload";
    if (req->path_len != sizeof upload - 1 || memcmp(req->path, upload, req->path_len) != 0 ||
        !(method_is(req, "POST") || method_is(req, "PUT")))
        return 0;
    rep->status = 200;
    if (authorize(ctx, req, rep) < 0)
        return SERVER_ANSWERED;
    return api_files_upload_stream(ctx, req, rep, sink);
}

/* ---- endpoints ---- */

/* /health "features": each is true when this build routes its endpoint, so the answer stays
 * truthful as endpoints arrive (a feature without a pattern is never served). */
static const struct {
    const char *name;
    const char *pattern;   /* NULL: not in this agent at all */
} features[] = {
    { "commands", "/commands/run" },
    { "background", "/commands/background" },
    { "code", "/execute" },
    { "kill", "/execute/kill/{id}" },
    { "output", "/execute/processes/{id}/output" },
    { "env", "/env" },
    { "metrics", "/metrics" },
    { "system_processes", "/processes" },
    { "files", "/files/read" },
    { "upload", "/files/upload" },
    { "download", "/files/download" },
    { "file_watch", "/files/watch" },
    { "streaming", "/execute/stream" },
    { "process_stream", "/execute/processes/{id}/stream" },
    { "stdin", "/execute/processes/{id}/stdin" },
    { "terminal", "/terminal" },
    { "async_webhooks", "/execute/async" },
    { "ipython", "/execute/ipython" },
    { "jupyter", "/jupyter/sessions" },
    { "desktop", NULL },
    { "cache", NULL },   /* /cache answers, but nothing is ever cached */
};

static int routed(const char *pattern)
{
    for (size_t i = 0; pattern && i < NROUTES; i++)
        if (!strcmp(routes[i].pattern, pattern))
            return 1;
    return 0;
}

static int h_health(const struct api_ctx *c, struct server_request *req, struct server_reply *rep,
                    const char *param, size_t param_len)
{
    (void)req, (void)param, (void)param_len;
    struct buf *b = &rep->body;
    buf_putc(b, '{');
    json_put_key(b, "status");
    json_put_cstr(b, "ok");
    json_put_key(b, "agent");
    json_put_cstr(b, "sandbox-agent");
    json_put_key(b, "version");
    json_put_cstr(b, AGENT_VERSION);
    json_put_key(b, "uptime_seconds");
    json_put_int(b, (util_mono_us() - c->start_mono_us) / 1000000);
    json_put_key(b, "auth");
    json_put_cstr(b, c->no_auth ? "none" : "jwt-hs256");
    json_put_key(b, "features");
    buf_putc(b, '{');
    for (size_t i = 0; i < sizeof features / sizeof features[0]; i++) {
        json_put_key(b, features[i].name);
        json_put_bool(b, routed(features[i].pattern));
    }
    json_put_key(b, "languages");
    api_proc_languages(b);
    buf_puts(b, "}}");
    return 0;
}

static void put_limit(struct buf *b, const char *key, long long v)
{
    json_put_key(b, key);
    json_put_int(b, v);
}

/* What an operator checks first: the SDK's names for version and uptime, PID 1 duty, how
 * the secret was set and rotated, the agent-held environment, the log format. */
/* Webhooks (issue 16): whether https callbacks work, and deliveries in flight. */
static void info_webhooks(struct buf *b)
{
    struct hook_counts hc;
    hook_counts(&hc);
    json_put_key(b, "webhooks");
    buf_putc(b, '{');
    json_put_key(b, "https");
    json_put_bool(b, hc.trust_anchors > 0);
    put_limit(b, "trust_anchors", hc.trust_anchors);
    put_limit(b, "pending", hc.pending);
    put_limit(b, "active", hc.active);
    put_limit(b, "delivered", (long long)hc.delivered);
    put_limit(b, "failed", (long long)hc.failed);
    buf_putc(b, '}');
}

static void info_operator(const struct api_ctx *c, struct buf *b)
{
    json_put_key(b, "agent_version");
    json_put_cstr(b, AGENT_VERSION);
    json_put_key(b, "uptime");
    json_put_int(b, (util_mono_us() - c->start_mono_us) / 1000000);
    json_put_key(b, "pid1");
    json_put_bool(b, c->pid1 == 1);
    json_put_key(b, "subreaper");
    json_put_bool(b, c->pid1 == 0);
    json_put_key(b, "secret");
    json_put_cstr(b, c->secret_source);
    json_put_key(b, "secret_rotations");
    json_put_int(b, c->keys->rotations);
    json_put_key(b, "previous_secret_grace_seconds");
    json_put_int(b, c->jwt_prev_grace_s);
    json_put_key(b, "env_vars");
    json_put_int(b, (int64_t)envset_count());
    json_put_key(b, "env_inherited");
    json_put_bool(b, !envset_replaced());
    json_put_key(b, "log_format");
    json_put_cstr(b, c->log_format);
}

static int h_info(const struct api_ctx *c, struct server_request *req, struct server_reply *rep,
                  const char *param, size_t param_len)
{
    (void)req, (void)param, (void)param_len;
    struct utsname u;
    if (uname(&u) < 0)
        memset(&u, 0, sizeof u);
    char started[25];
    util_rfc3339(c->start_wall_ms, started);
    struct buf *b = &rep->body;
    buf_putc(b, '{');
    json_put_key(b, "agent");
    json_put_cstr(b, "sandbox-agent");
    json_put_key(b, "version");
    json_put_cstr(b, AGENT_VERSION);
    json_put_key(b, "build");
    json_put_cstr(b, AGENT_BUILD);
    json_put_key(b, "os");
    json_put_cstr(b, u.sysname);
    json_put_key(b, "kernel");
    json_put_cstr(b, u.release);
    json_put_key(b, "arch");
    json_put_cstr(b, u.machine);
    json_put_key(b, "pid");
    json_put_int(b, getpid());
    json_put_key(b, "listen");
    json_put_cstr(b, c->listen_addr);
    json_put_key(b, "workdir");
    json_put_cstr(b, c->workdir);
    json_put_key(b, "start_time");
    json_put_cstr(b, started);
    json_put_key(b, "uptime_seconds");
    json_put_int(b, (util_mono_us() - c->start_mono_us) / 1000000);
    json_put_key(b, "auth");
    json_put_cstr(b, c->no_auth ? "none" : "jwt-hs256");
    json_put_key(b, "process_control");   /* cgroup.h: kill, limits, OOM reason per record */
    json_put_cstr(b, cgroup_enabled() ? "cgroup2" : "process_groups");
    info_operator(c, b);
    info_webhooks(b);
    json_put_key(b, "idempotency_keys");   /* remembered now (idem.h) */
    json_put_int(b, (int64_t)idem_keys());
    json_put_key(b, "idempotency_bytes");
    json_put_int(b, (int64_t)idem_bytes());
    json_put_key(b, "limits");
    buf_putc(b, '{');
    put_limit(b, "max_running", c->max_running);
    put_limit(b, "max_records", c->max_records);
    put_limit(b, "output_limit_bytes", c->output_limit);
    put_limit(b, "output_budget_bytes", c->output_budget);
    put_limit(b, "grace_seconds", c->grace_s);
    put_limit(b, "max_connections", LIMIT_CONNECTIONS);
    put_limit(b, "max_header_bytes", LIMIT_HEADER_BYTES);
    put_limit(b, "max_headers", LIMIT_HEADERS);
    put_limit(b, "max_uri_bytes", LIMIT_URI_BYTES);
    put_limit(b, "max_body_bytes", LIMIT_BODY_BYTES);
    put_limit(b, "max_json_depth", LIMIT_JSON_DEPTH);
    put_limit(b, "max_env_vars", LIMIT_ENV_VARS);
    put_limit(b, "max_env_bytes", LIMIT_ENV_BYTES);
    put_limit(b, "max_token_bytes", LIMIT_TOKEN_BYTES);
    put_limit(b, "max_idempotency_keys", LIMIT_IDEM_KEYS);
    put_limit(b, "idempotency_ttl_seconds", LIMIT_IDEM_TTL_MS / 1000);
    buf_putc(b, '}');
    json_put_key(b, "endpoints");
    buf_putc(b, '[');
    for (size_t i = 0; i < NROUTES; i++) {
        json_sep(b);
        buf_printf(b, "\"%s %s\"", routes[i].method, routes[i].pattern);
    }
    buf_puts(b, "]}");
    return 0;
}

/* ---- starting a run (api_proc.c, api_python.c) ---- */

int api_run_open(const struct api_ctx *c, const struct server_request *req,
                 struct server_reply *rep, struct decode_arena *ar, size_t cap)
{
    if (*c->stopping) {   /* it would miss the SIGTERM already sent to every group */
        api_error(req, rep, 503, "EXECUTION_FAILED", "the agent is shutting down");
        return -1;
    }
    if (decode_arena_open(ar, cap) < 0) {
        api_error(req, rep, 500, "INTERNAL_ERROR", "out of memory");
        return -1;
    }
    return 0;
}

static int cwd_error(struct decode_error *e, int status, const char *code, const char *fmt,
                     const char *dir)
{
    e->status = status;
    e->code = code;
    e->field = "working_dir";
    snprintf(e->msg, sizeof e->msg, fmt, dir);
    return -1;
}

int api_run_cwd(struct decode_arena *ar, const char *workdir, const char *dir,
                const char **out, struct decode_error *e)
{
    if (dir[0] != '/') {
        char *abs = decode_take(ar, strlen(workdir) + strlen(dir) + 2);
        if (!abs)
            return cwd_error(e, 500, "INTERNAL_ERROR", "out of memory decoding '%s'",
                             "working_dir");
        sprintf(abs, "%s/%s", workdir, dir);
        dir = abs;
    }
    struct stat st;   /* "not found" is kept for FILE_NOT_FOUND (the SDKs' FileNotFoundError) */
    if (stat(dir, &st) < 0)
        return cwd_error(e, 400, "DIRECTORY_NOT_FOUND", "no such working directory: %s", dir);
    if (!S_ISDIR(st.st_mode))
        return cwd_error(e, 400, "DIRECTORY_NOT_FOUND",
                         "working directory is not a directory: %s", dir);
    *out = dir;
    return 0;
}
