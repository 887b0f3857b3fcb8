#include "api_python.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envset.h"
#include "json.h"
#include "limits.h"
#include "proc.h"
#include "pysession.h"
#include "util.h"

/* POST /execute/ipython, decoded by table. */
struct ipy_req {
    struct decode_bytes code;
    int64_t timeout_ms;
    struct decode_map env;
    const char *session;
    const char *cwd;
};
#define F(x) offsetof(struct ipy_req, x)
static const struct decode_field ipy_fields[] = {
    { "code", .type = DECODE_BYTES, .off = F(code), .flags = DECODE_REQUIRED },
    { "timeout", .type = DECODE_MILLIS, .off = F(timeout_ms), .dmin = 0,
      .dmax = LIMIT_TIMEOUT_MAX_S, .def_int = LIMIT_PY_TIMEOUT_S * 1000 },
    { "env", .type = DECODE_MAP, .off = F(env), .flags = DECODE_ENV, .max = LIMIT_ENV_VARS,
      .max_bytes = LIMIT_ENV_BYTES },
    { "session", { "session_id", "kernel_id" }, .type = DECODE_STRING, .off = F(session),
      .flags = DECODE_EMPTY_IS_ABSENT, .def_str = "default" },
    { "working_dir", { "workdir", "cwd" }, .type = DECODE_STRING, .off = F(cwd),
      .flags = DECODE_EMPTY_IS_ABSENT },
};
#undef F
static const struct decode_table ipy_table = DECODE_TABLE(ipy_fields);

/* The rich outputs' MIME types and the short names the SDKs read at the top level. */
static const char *const mimes[][2] = {
    { "image/png", "png" }, { "image/jpeg", "jpeg" }, { "image/svg+xml", "svg" },
    { "text/html", "html" }, { "text/markdown", "markdown" }, { "text/latex", "latex" },
    { "application/json", "json" },
};
#define NMIMES (sizeof mimes / sizeof mimes[0])

/* ---- answering ---- */

static void put_time(struct buf *b, const char *key, int64_t ms)
{
    char ts[25];
    util_rfc3339(ms, ts);
    json_put_key(b, key);
    json_put_cstr(b, ts);
}

static void put_error(struct buf *b, const char *name, const char *value)
{
    json_put_key(b, "error");
    buf_putc(b, '{');
    json_put_key(b, "name");
    json_put_cstr(b, name);
    json_put_key(b, "value");
    json_put_cstr(b, value);
    json_put_key(b, "traceback");
    json_put_cstr(b, "");
    buf_putc(b, '}');
}

/* The driver's reply: result, error, the outputs, and each kind's first output at the top
 * level (png, html...: what the SDKs' ExecutionResult reads). Tokens are re-encoded, so a
 * reply that parsed always makes valid JSON here. */
static int put_reply(struct buf *b, const struct pysession_result *r)
{
    const char *s = r->reply;
    const struct json_token *t = r->toks;
    int result = json_get(s, t, 0, "result");
    int error = json_get(s, t, 0, "error");
    int outputs = json_get(s, t, 0, "outputs");
    int failed = error >= 0 && t[error].type == JSON_OBJECT;
    json_put_key(b, "result");
    if (result >= 0 && t[result].type == JSON_STRING)
        json_put_token(b, s, t, result);
    else
        json_put_null(b);
    json_put_key(b, "error");
    if (failed)
        json_put_token(b, s, t, error);
    else
        json_put_null(b);
    json_put_key(b, "rich_outputs");
    if (outputs >= 0 && t[outputs].type == JSON_ARRAY)
        json_put_token(b, s, t, outputs);
    else
        buf_puts(b, "[]");
    if (outputs < 0 || t[outputs].type != JSON_ARRAY)
        return failed;
    for (size_t m = 0; m < NMIMES; m++) {
        for (uint32_t k = 0, e = (uint32_t)outputs + 1; k < t[outputs].size; k++, e = t[e].next) {
            int data = json_get(s, t, (int)e, "data");
            int v = json_get(s, t, data, mimes[m][0]);
            if (v >= 0) {
                json_put_key(b, mimes[m][1]);
                json_put_token(b, s, t, v);
                break;
            }
        }
    }
    return failed;
}

/* A call finished: answer its parked request, if the client is still there. */
static void execute_done(void *ctx, const struct pysession_result *r)
{
    uint64_t token = (uint64_t)(uintptr_t)ctx;
    struct server_reply *rep = server_parked(token);
    if (!rep)
        return;   /* the client left; the session keeps what the code did */
    struct buf *b = &rep->body;
    int timed_out = r->outcome == PYS_INTERRUPTED || r->outcome == PYS_RESTARTED;
    int answered = r->outcome == PYS_DONE || r->outcome == PYS_INTERRUPTED;
    char msg[200] = "";
    rep->status = timed_out ? 408 : r->outcome == PYS_SHUTDOWN ? 503
                  : r->outcome == PYS_START_FAILED ? 400 : 200;
    rep->content_type = NULL;
    buf_reset(b);
    buf_putc(b, '{');
    int failed = 1;
    if (answered) {
        failed = put_reply(b, r);
    } else {
        static const char *const names[] = {
            [PYS_RESTARTED] = "TimeoutError", [PYS_DIED] = "InterpreterExited",
            [PYS_START_FAILED] = "InterpreterStartFailed", [PYS_DELETED] = "SessionEnded",
            [PYS_SHUTDOWN] = "SessionEnded", [PYS_PROTOCOL] = "InterpreterProtocolError",
            [PYS_TOO_LARGE] = "OutputTooLarge",
        };
        if (r->outcome == PYS_RESTARTED)
            snprintf(msg, sizeof msg, "the code did not stop on KeyboardInterrupt: the "
                                      "interpreter was killed and a new one started");
        else if (r->outcome == PYS_DIED || r->outcome == PYS_START_FAILED)
            snprintf(msg, sizeof msg, "the Python interpreter %s %s %d%s",
                     r->outcome == PYS_DIED ? "exited during the call:" : "could not start:",
                     r->term_signal ? "signal" : "exit code",
                     r->term_signal ? r->term_signal : r->exit_code,
                     r->outcome == PYS_DIED ? "; the next call starts a new one" : "");
        else if (r->outcome == PYS_TOO_LARGE)
            snprintf(msg, sizeof msg, "the code ran, but its result and rich outputs are too "
                                      "large to return (64 MiB, 65536 values at most)");
        else if (r->outcome == PYS_PROTOCOL)
            snprintf(msg, sizeof msg, "the interpreter broke the session protocol and was "
                                      "restarted");
        else
            snprintf(msg, sizeof msg, "%s", r->outcome == PYS_SHUTDOWN
                                                ? "the agent is shutting down"
                                                : "the session was deleted or expired");
        json_put_key(b, "result");
        json_put_null(b);
        put_error(b, names[r->outcome], msg);
        buf_puts(b, ",\"rich_outputs\":[]");
    }
    json_put_key(b, "success");
    json_put_bool(b, !failed && !timed_out);
    json_put_key(b, "stdout");
    json_put_str(b, r->out, r->out_len);
    json_put_key(b, "stderr");
    json_put_str(b, r->err, r->err_len);
    json_put_key(b, "exit_code");
    json_put_int(b, timed_out ? 124 : r->outcome == PYS_DIED ? r->exit_code : failed);
    json_put_key(b, "execution_time");
    json_put_num(b, r->exec_s, 3);
    json_put_key(b, "language");
    json_put_cstr(b, "python");
    put_time(b, "timestamp", r->finished_ms);
    json_put_key(b, "timed_out");
    json_put_bool(b, timed_out);
    json_put_key(b, "stdout_truncated");
    json_put_bool(b, r->out_total > r->out_len);
    json_put_key(b, "stderr_truncated");
    json_put_bool(b, r->err_total > r->err_len);
    json_put_key(b, "execution_count");
    json_put_int(b, r->execution_count);
    json_put_key(b, "session");
    json_put_cstr(b, r->session_id);
    json_put_key(b, "kernel_id");
    json_put_cstr(b, r->kernel_id);
    json_put_key(b, "restarted");
    json_put_bool(b, r->restart_reason != NULL);
    json_put_key(b, "restart_reason");
    json_put_cstr(b, r->restart_reason);
    if (timed_out || r->outcome == PYS_SHUTDOWN || r->outcome == PYS_START_FAILED) {
        if (timed_out && r->outcome == PYS_INTERRUPTED)
            snprintf(msg, sizeof msg, "execution timed out: interrupted (KeyboardInterrupt), "
                                      "the session lives on");
        else if (timed_out)
            snprintf(msg, sizeof msg, "execution timed out: the session was restarted");
        json_put_key(b, "message");
        json_put_cstr(b, msg);
        json_put_key(b, "code");
        json_put_cstr(b, timed_out ? "EXECUTION_TIMEOUT" : "EXECUTION_FAILED");
    }
    buf_putc(b, '}');
    server_resume(token);
}

/* ---- endpoints ---- */

/* What a new interpreter starts with: the agent's base environment (envset.h) with the
 * request's env on top, as every process gets. */
static char **start_env(struct decode_arena *ar, const struct ipy_req *r)
{
    char **env = decode_take(ar, (envset_base_max() + r->env.n + 2) * sizeof *env);
    if (!env)
        return NULL;
    size_t k = envset_base(env, r->env.env);
    for (size_t i = 0; i < r->env.n; i++)
        env[k++] = r->env.env[i];
    env[k++] = "PYTHONUNBUFFERED=1";
    env[k] = NULL;
    return env;
}

static void run_error(struct server_request *req, struct server_reply *rep, int err,
                      const char *session)
{
    char msg[200];
    switch (err) {
    case EINVAL:
        api_error(req, rep, 400, "INVALID_REQUEST",
                  "'session' must be 1 to 64 letters, digits, '.', '_' or '-'");
        return;
    case EBUSY:
        snprintf(msg, sizeof msg, "session '%s' has %d calls waiting already; try again later",
                 session, LIMIT_PY_QUEUE);
        api_error(req, rep, 429, "EXECUTION_FAILED", msg);
        return;
    case EMFILE:
        api_error(req, rep, 429, "EXECUTION_FAILED",
                  "too many Python sessions; end one with DELETE /jupyter/sessions/{id}");
        return;
    case ENOENT:
        api_error(req, rep, 400, "EXECUTION_FAILED", "interpreter not installed: python3");
        return;
    case ESHUTDOWN:
        api_error(req, rep, 503, "EXECUTION_FAILED", "the agent is shutting down");
        return;
    default:
        snprintf(msg, sizeof msg, "cannot start python3: %s", strerror(err));
        api_error(req, rep, err == ENOMEM || err == EMFILE || err == EAGAIN ? 503 : 400,
                  "EXECUTION_FAILED", msg);
    }
}

int api_python_execute(const struct api_ctx *c, struct server_request *req,
                       struct server_reply *rep, const char *param, size_t param_len)
{
    (void)param, (void)param_len;
    struct decode_arena ar;
    if (api_run_open(c, req, rep, &ar, 3 * req->body_len + 64 * 1024) < 0)
        return 0;
    struct ipy_req r;
    struct decode_error e;
    const char *cwd = NULL;   /* none: the session's own */
    int rc = 0;
    if (api_decode_body(req, rep, &ipy_table, &ar, &r, NULL) < 0)
        goto done;
    if (r.cwd && api_run_cwd(&ar, c->workdir, r.cwd, &cwd, &e) < 0) {
        api_decode_error(req, rep, &e);
        goto done;
    }
    char **envp = start_env(&ar, &r);
    if (!envp) {
        api_error(req, rep, 500, "INTERNAL_ERROR", "out of memory");
        goto done;
    }
    struct pysession_call call = {
        .session = r.session, .session_len = strlen(r.session),
        .code = r.code.p, .code_len = r.code.len,
        .env = r.env.env, .cwd = cwd,
        .timeout_ms = r.timeout_ms ? r.timeout_ms : LIMIT_PY_TIMEOUT_S * 1000,
        .envp = envp, .start_cwd = c->workdir,
    };
    if (pysession_run(&call, execute_done, (void *)(uintptr_t)req->token) < 0)
        run_error(req, rep, errno, r.session);
    else
        rc = SERVER_PARKED;
done:
    decode_arena_close(&ar);
    return rc;
}

int api_python_sessions(const struct api_ctx *c, struct server_request *req,
                        struct server_reply *rep, const char *param, size_t param_len)
{
    (void)c, (void)req, (void)param, (void)param_len;
    static const char *const states[] = { [PYS_STARTING] = "starting", [PYS_IDLE] = "idle",
                                          [PYS_BUSY] = "busy", [PYS_DEAD] = "dead" };
    static struct pysession_info list[PYSESSION_MAX];
    size_t n = pysession_list(list, PYSESSION_MAX);
    struct buf *b = &rep->body;
    buf_puts(b, "{\"sessions\":[");
    for (size_t i = 0; i < n; i++) {
        const struct pysession_info *s = &list[i];
        json_sep(b);
        buf_putc(b, '{');
        json_put_key(b, "id");
        json_put_cstr(b, s->id);
        json_put_key(b, "kernel_id");
        json_put_cstr(b, s->kernel_id);
        json_put_key(b, "execution_state");
        json_put_cstr(b, states[s->state]);
        put_time(b, "created_at", s->created_ms);
        put_time(b, "last_used_at", s->last_used_ms);
        json_put_key(b, "execution_count");
        json_put_int(b, s->execution_count);
        json_put_key(b, "queued");
        json_put_int(b, s->queued);
        json_put_key(b, "pid");
        if (s->pid)
            json_put_int(b, s->pid);
        else
            json_put_null(b);
        json_put_key(b, "ipython");
        json_put_bool(b, s->ipython);
        /* the Jupyter server's shape too: {kernel: {id, name, execution_state}} */
        json_put_key(b, "kernel");
        buf_putc(b, '{');
        json_put_key(b, "id");
        json_put_cstr(b, s->kernel_id);
        json_put_key(b, "name");
        json_put_cstr(b, "python3");
        json_put_key(b, "execution_state");
        json_put_cstr(b, states[s->state]);
        put_time(b, "last_activity", s->last_used_ms);
        buf_puts(b, "}}");
    }
    buf_puts(b, "],\"count\":");
    json_put_int(b, (int64_t)n);
    buf_putc(b, '}');
    return 0;
}

int api_python_delete(const struct api_ctx *c, struct server_request *req,
                      struct server_reply *rep, const char *param, size_t param_len)
{
    (void)c;
    if (pysession_delete(param, param_len) < 0) {
        char msg[120];
        snprintf(msg, sizeof msg, "no such Python session: %.*s",
                 (int)(param_len < 64 ? param_len : 64), param);
        api_error(req, rep, 404, "NOT_FOUND", msg);
        return 0;
    }
    struct buf *b = &rep->body;
    buf_putc(b, '{');
    json_put_key(b, "id");
    json_put_str(b, param, param_len);
    json_put_key(b, "deleted");
    json_put_bool(b, 1);
    buf_putc(b, '}');
    return 0;
}
