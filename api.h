/* Request routing, authentication and the endpoint handlers' shared helpers, and the context
 * every handler gets instead of reaching into agent.c. */
#ifndef SANDBOX_API_H
#define SANDBOX_API_H
#include <stddef.h>
#include <stdint.h>

#include "decode.h"
#include "json.h"
#include "secret.h"
#include "server.h"

/* What the handlers read: filled once by main before the server starts. Pointers point at
 * agent.c's state that changes while running (keys on SIGHUP, stopping on SIGTERM); the
 * handlers only read through them. Strings are NUL-terminated and live as long as the agent. */
struct api_ctx {
    const char *workdir;            /* default working directory, absolute */
    const char *listen_addr;        /* what we bound, "127.0.0.1:7777" */
    const char *log_format;         /* "logfmt" or "json" */
    const char *secret_source;      /* "none", "file" or "env" */
    int no_auth;                    /* 1: no token needed anywhere */
    const char *jwt_audience;       /* NULL: aud not checked */
    const char *jwt_subject;        /* NULL: sub not checked */
    long jwt_prev_grace_s;          /* after a rotation the old secret admits this long */
    const struct secret_keys *keys; /* current and previous key (secret.h) */
    long max_running, max_records;  /* process limits as configured (proc.h enforces them) */
    long output_limit, output_budget;
    long grace_s;                   /* seconds between SIGTERM and SIGKILL */
    long terminal_keep_s;           /* WS /terminal: unattached sessions wait this long */
    int pid1;                       /* 1: PID 1; 0: subreaper; -1: neither */
    int64_t start_wall_ms;          /* when the agent started (wall clock) */
    int64_t start_mono_us;          /* the same, monotonic */
    const int *stopping;            /* nonzero once SIGTERM/SIGINT began the shutdown */
    const char *default_user;       /* process control: runs without `user` run as it; NULL */
    uint64_t gzip_limit;            /* --gzip-limit: bytes a gzip upload may inflate to */
};

/* A route handler: answers rep (status + body), or returns SERVER_PARKED to answer later
 * (server.h). param is the route's "{id}" path segment (not NUL-terminated), if any. */
typedef int api_route_fn(const struct api_ctx *c, struct server_request *req,
                         struct server_reply *rep, const char *param, size_t param_len);

/* The server_handler: routes req (ctx is the struct api_ctx). */
int api_handle(void *ctx, struct server_request *req, struct server_reply *rep);

/* The server's body hook (server_set_body_hook): uploads stream to disk, after the same
 * routing and authorization as any request; every other body is buffered (ctx: api_ctx). */
int api_body_hook(void *ctx, struct server_request *req, struct server_reply *rep,
                  struct server_sink *sink);

/* The server's reply observer (server_on_reply): keeps answers to Idempotency-Key
 * requests so a repeat gets the first answer (idem.h). */
void api_on_reply(uint64_t token, const struct server_reply *rep);

/* {"error": msg, "message": msg, "code": code, "request_id": ...} with status. */
void api_error(const struct server_request *req, struct server_reply *rep, int status,
               const char *code, const char *msg);

/* Decodes req's body (a JSON object; empty counts as {}) by table t into out (decode.h),
 * strings in ar, which the caller opened (decode_arena_open with DECODE_ARENA_FOR(req->body_len),
 * plus what the handler takes itself) and closes. *seen may be NULL. Returns 0, or
 * -1 after answering the error (400 INVALID_JSON with the byte offset, 400 INVALID_REQUEST /
 * MISSING_PARAMETER naming the field, 413, 500). */
int api_decode_body(const struct server_request *req, struct server_reply *rep,
                    const struct decode_table *t, struct decode_arena *ar, void *out,
                    uint64_t *seen);

/* Answers a decode_error. */
void api_decode_error(const struct server_request *req, struct server_reply *rep,
                      const struct decode_error *e);

/* Parses req's body, which must be a JSON object (an empty body counts as {}).
 * Returns malloc'd tokens (the caller frees them), or NULL after answering 400
 * INVALID_JSON / INVALID_REQUEST, or 500 when out of memory. */
struct json_token *api_parse_body(const struct server_request *req, struct server_reply *rep);

/* ---- starting a run (api_proc.c, api_python.c): what every start checks first ---- */

/* Refuses a start while the agent is stopping (503: it would miss the SIGTERM already sent
 * to every group), then opens ar with cap bytes (500 when out of memory). Returns 0, or -1
 * after answering. */
int api_run_open(const struct api_ctx *c, const struct server_request *req,
                 struct server_reply *rep, struct decode_arena *ar, size_t cap);

/* A run's working directory: dir (non-empty) as given, or taken from workdir when relative
 * (copied into ar); it must be an existing directory. Sets *out and returns 0, or returns -1
 * with e filled (400 DIRECTORY_NOT_FOUND naming the directory, 500 out of memory). */
int api_run_cwd(struct decode_arena *ar, const char *workdir, const char *dir,
                const char **out, struct decode_error *e);

#endif
