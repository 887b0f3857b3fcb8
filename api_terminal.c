#include "api_terminal.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api_term.h"
#include "buf.h"
#include "envset.h"
#include "http.h"
#include "json.h"
#include "limits.h"
#include "proc.h"
#include "timer.h"
#include "utf8.h"
#include "util.h"
#include "ws.h"
#include "wsconn.h"

struct attach;

/* One shell and what its client has been sent. */
struct term {
    struct proc *p;            /* NULL once the record is gone (evicted, forgotten) */
    char id[22];               /* the session: the record's process_id */
    struct attach *att;        /* the WebSocket it is attached to, or NULL */
    uint64_t off;              /* next stdout byte the client has not been sent */
    int64_t keep_us;           /* unattached this long: hung up */
    int64_t grace_us;          /* after the hang-up, SIGKILL */
    int hung;                  /* SIGHUP sent: no reattaching; forgotten when it ends */
    int64_t last_frame_us;     /* when the last frame went out (SDK spacing) */
    int client_spoke;          /* a client message came after our last frame */
    struct timer hangup;       /* while unattached: the hang-up */
    struct timer later;        /* a frame held back for the SDK's sake */
    struct term *prev, *next;
};

/* One WebSocket's hold on a session; outlives it when the client reattached elsewhere. */
struct attach {
    struct term *t;            /* NULL: superseded or the session ended */
    struct wsconn *w;
    int hello_sent;            /* the session message went out */
};

static struct term *terms;
static int nterms;
static int observing;
static struct buf msg;         /* one outgoing message at a time is built here */
static char chunk[LIMIT_TERM_CHUNK];

static void pump(struct term *t);

/* ---- sessions ---- */

static struct term *term_find(const char *id, size_t len)
{
    for (struct term *t = terms; t; t = t->next)
        if (!t->hung && len == strlen(t->id) && !memcmp(t->id, id, len))
            return t;
    return NULL;
}

static void term_free(struct term *t)
{
    if (t->att) {
        t->att->t = NULL;
        if (t->att->w)
            wsconn_close(t->att->w, WS_CLOSE_NORMAL, "session ended");
    }
    timer_cancel(&t->hangup);
    timer_cancel(&t->later);
    if (t->prev)
        t->prev->next = t->next;
    else
        terms = t->next;
    if (t->next)
        t->next->prev = t->prev;
    nterms--;
    free(t);
}

/* Nobody came back in time: hang the shell up (SIGHUP to its group, as when a terminal
 * goes away), then SIGKILL after the grace period if it ignored that; the session can no
 * longer be reattached and is forgotten once the shell has ended (reaped as any process). */
static void on_hangup(void *ctx)
{
    struct term *t = ctx;
    if (t->att)
        return;
    if (!t->p || t->p->state == PROC_FINISHED) {
        term_free(t);
        return;
    }
    if (!t->hung) {
        t->hung = 1;
        proc_kill(t->p, SIGHUP);
        timer_arm(&t->hangup, util_mono_us() + t->grace_us);
        return;
    }
    proc_kill(t->p, SIGKILL);
    term_free(t);
}

static void on_later(void *ctx)
{
    pump(ctx);
}

static void detach(struct term *t)
{
    t->att = NULL;
    timer_cancel(&t->later);
    timer_arm(&t->hangup, util_mono_us() + t->keep_us);
}

static void on_proc(const struct proc *p, enum proc_event ev, int sig)
{
    (void)sig;
    if (ev != PROC_EV_OUTPUT && ev != PROC_EV_FINISHED && ev != PROC_EV_EVICTED)
        return;
    for (struct term *t = terms; t; t = t->next) {
        if (t->p != p)
            continue;
        if (ev == PROC_EV_EVICTED) {
            t->p = NULL;
            if (t->att || t->hung)
                term_free(t);   /* its client saw everything it will ever see */
        } else if (t->hung) {
            if (ev == PROC_EV_FINISHED)
                term_free(t);
        } else {
            pump(t);
        }
        return;
    }
}

/* ---- sending ---- */

static int send_msg(struct term *t)
{
    if (msg.failed || wsconn_send(t->att->w, WS_TEXT, msg.data, msg.len) < 0)
        return -1;
    t->last_frame_us = util_mono_us();
    t->client_spoke = 0;
    return 0;
}

/* The TypeScript SDK keeps only the first of several frames that arrive in one TCP read.
 * So a frame goes out at once when the client sent something since our last one (it is
 * typing: a keystroke's echo is never delayed) or LIMIT_SDK_GAP_MS have passed; otherwise
 * it waits for the gap, and what came meanwhile goes out with it in one frame. */
static int spaced(struct term *t)
{
    int64_t at = t->last_frame_us + LIMIT_SDK_GAP_MS * 1000;
    if (t->client_spoke || util_mono_us() >= at)
        return 1;
    timer_arm(&t->later, at);
    return 0;
}

/* Sends what the client has not seen, one frame at a time while its socket takes them:
 * the session message, the output from t->off (a character cut at the end of what is
 * there waits for its last bytes; one whose start the ring dropped is skipped), then, once
 * the shell has exited and everything is out, the exit message; then the session ends. */
static void pump(struct term *t)
{
    struct attach *a = t->att;
    while (a && a->w && wsconn_pending(a->w) == 0) {
        if (!a->hello_sent) {
            buf_reset(&msg);
            buf_puts(&msg, "{\"type\":\"session\",\"session\":");
            json_put_cstr(&msg, t->id);
            buf_puts(&msg, ",\"process_id\":");
            json_put_cstr(&msg, t->id);
            buf_putc(&msg, '}');
            if (send_msg(t) < 0)
                return;
            a->hello_sent = 1;
            continue;
        }
        if (!t->p) {   /* the record was dropped: nothing more will come */
            term_free(t);
            return;
        }
        const struct proc_ring *r = &t->p->out;
        const char *p1, *p2;
        size_t n1, n2;
        uint64_t start = proc_output(r, t->off, &p1, &n1, &p2, &n2);
        int finished = t->p->state == PROC_FINISHED;
        if ((n1 + n2 || finished) && !spaced(t))
            return;
        size_t n = n1 + n2 < sizeof chunk ? n1 + n2 : sizeof chunk;
        size_t first = n < n1 ? n : n1;
        if (first)
            memcpy(chunk, p1, first);
        if (n > first)
            memcpy(chunk + first, p2, n - first);
        size_t skip = start > t->off ? utf8_orphan_head(chunk, n) : 0;
        size_t hold = n < n1 + n2 || !finished ? utf8_partial_tail(chunk + skip, n - skip) : 0;
        size_t len = n - skip - hold;
        if (len || skip) {
            if (len) {
                buf_reset(&msg);
                buf_puts(&msg, "{\"type\":\"output\",\"data\":");
                json_put_str(&msg, chunk + skip, len);
                buf_putc(&msg, '}');
                if (send_msg(t) < 0)
                    return;
            }
            t->off = start + skip + len;
            continue;
        }
        if (!finished)
            return;
        buf_reset(&msg);
        buf_puts(&msg, "{\"type\":\"exit\",\"code\":");
        json_put_int(&msg, t->p->exit_code);
        buf_putc(&msg, '}');
        if (send_msg(t) < 0)
            return;
        term_free(t);   /* closes the socket after the exit message */
        return;
    }
}

/* ---- the client ---- */

static void send_error(struct term *t, const char *code, const char *text)
{
    if (!t->att || wsconn_pending(t->att->w))
        return;   /* a client that does not read loses its error reports, not output */
    buf_reset(&msg);
    buf_puts(&msg, "{\"type\":\"error\",\"error\":");
    json_put_cstr(&msg, text);
    buf_puts(&msg, ",\"code\":");
    json_put_cstr(&msg, code);
    buf_putc(&msg, '}');
    send_msg(t);
}

static void on_message(void *ctx, struct wsconn *w, int opcode, const char *data, size_t len)
{
    struct attach *a = ctx;
    struct term *t = a->t;
    a->w = w;   /* frames that came with the handshake arrive before wsconn_start returns */
    if (!t || !t->p)
        return;
    pump(t);   /* the session message goes first, even before an error about this one */
    if (a->t != t || !t->p)
        return;
    t->client_spoke = 1;
    char err[160];
    const char *code = NULL;
    if (opcode == WS_BINARY) {   /* raw keystrokes (xterm.js attach addons send these) */
        if (len && proc_stdin_write(t->p, data, len) < 0) {
            code = api_term_errno_code(errno);
            snprintf(err, sizeof err, "%s", api_term_errno_text(errno));
        }
    } else {
        code = api_term_control(t->p, data, len, err, sizeof err);
    }
    if (code)
        send_error(t, code, err);
    pump(t);
}

static void on_writable(void *ctx, struct wsconn *w)
{
    struct attach *a = ctx;
    a->w = w;
    if (a->t)
        pump(a->t);
}

static void on_closed(void *ctx)
{
    struct attach *a = ctx;
    if (a->t && a->t->att == a)
        detach(a->t);
    free(a);
}

static const struct wsconn_ops term_ops = { on_message, on_writable, on_closed };

static void on_take(void *ctx, int fd, const char *pending, size_t len)
{
    struct attach *a = ctx;
    /* on failure, or gone before the upgrade was written: the session waits unattached */
    if (!(a->w = wsconn_take(fd, 0, pending, len, &term_ops, a)))
        return;
    if (a->t)
        pump(a->t);
    else   /* another client took the session over before this one's upgrade went out */
        wsconn_close(a->w, WS_CLOSE_NORMAL, "session reattached elsewhere");
}

/* Shutdown: the clients are told (1001) and the shells hung up, as when a terminal goes
 * away: an interactive shell ignores the SIGTERM every process gets, and would hold the
 * stop for the whole grace period. */
static void on_stop(void)
{
    for (struct term *t = terms; t; t = t->next) {
        if (t->att && t->att->w)
            wsconn_close(t->att->w, WS_CLOSE_GOING_AWAY, "agent stopping");
        if (t->p && t->p->state == PROC_RUNNING)
            proc_kill(t->p, SIGHUP);
    }
}

static const struct server_owner term_owner = { on_take, on_stop };

/* ---- starting a shell ---- */

static const char *env_get(char *const *env, const char *key)
{
    size_t n = strlen(key);
    for (; *env; env++)
        if (!strncmp(*env, key, n) && (*env)[n] == '=')
            return *env + n + 1;
    return NULL;
}

/* $SHELL when it is executable, else bash on PATH, else /bin/sh. */
static int find_shell(char *const *env, char *out, size_t cap)
{
    const char *sh = env_get(env, "SHELL");
    if (sh && sh[0] == '/' && strlen(sh) < cap && access(sh, X_OK) == 0) {
        strcpy(out, sh);
        return 0;
    }
    const char *path = env_get(env, "PATH");
    for (const char *p = path ? path : ENVSET_DEFAULT_PATH; *p;) {
        size_t n = strcspn(p, ":");
        if (n && n + 6 < cap) {
            snprintf(out, cap, "%.*s/bash", (int)n, p);
            struct stat st;
            if (stat(out, &st) == 0 && S_ISREG(st.st_mode) && access(out, X_OK) == 0)
                return 0;
        }
        p += n + (p[n] == ':');
    }
    if (access("/bin/sh", X_OK) == 0) {
        snprintf(out, cap, "/bin/sh");
        return 0;
    }
    return -1;
}

/* A login shell ("-bash" as argv[0], as login(1) starts it) on a new PTY. */
static struct proc *start_shell(const struct api_ctx *c, const char *cwd, unsigned cols,
                                unsigned rows, int *err)
{
    size_t max = envset_base_max();
    char **env = calloc(max + 2, sizeof *env);
    char shell[512], argv0[sizeof shell + 1];
    if (!env) {
        *err = ENOMEM;
        return NULL;
    }
    size_t k = envset_base(env, NULL);
    for (size_t i = 0; i < k; i++)   /* the client's emulator, not what the agent inherited */
        if (!strncmp(env[i], "TERM=", 5))
            env[i--] = env[--k];
    env[k++] = "TERM=xterm-256color";
    env[k] = NULL;
    if (find_shell(env, shell, sizeof shell) < 0) {
        free(env);
        *err = ENOENT;
        return NULL;
    }
    const char *base = strrchr(shell, '/') ? strrchr(shell, '/') + 1 : shell;
    snprintf(argv0, sizeof argv0, "-%s", base);
    char *argv[] = { argv0, NULL };
    char display[600];
    snprintf(display, sizeof display, "%s -l", shell);
    struct proc_spec sp = {
        .path = shell, .argv = argv, .envp = env, .cwd = cwd ? cwd : c->workdir,
        .name = "terminal", .command = display, .pty = 1,
        .cols = (unsigned short)cols, .rows = (unsigned short)rows,
        .stdin_mode = PROC_STDIN_PIPE,
    };
    struct proc *p = proc_create(&sp);
    *err = errno;
    free(env);
    return p;
}

/* ?name=N with N in 1..65535; 0 when absent; -1 when malformed. */
static long query_dim(const struct server_request *req, const char *name)
{
    char v[12], *end;
    int rc = http_query_get(req->query, req->query_len, name, v, sizeof v);
    if (rc == -1)
        return 0;
    long n = rc > 0 ? strtol(v, &end, 10) : -1;
    return rc > 0 && !*end && n >= 1 && n <= 65535 ? n : -1;
}

int api_terminal(const struct api_ctx *c, struct server_request *req, struct server_reply *rep,
                 const char *param, size_t param_len)
{
    (void)param, (void)param_len;
    char accept[29], session[40], cwd[1024];
    enum ws_upgrade up = ws_upgrade_check(req->http, accept);
    if (up == WS_UPGRADE_VERSION) {
        api_error(req, rep, 426, "INVALID_REQUEST", "WebSocket version 13 is required");
        buf_puts(&rep->headers, "Sec-WebSocket-Version: 13\r\n");
        return 0;
    }
    if (up != WS_UPGRADE_OK) {
        api_error(req, rep, up == WS_UPGRADE_NONE ? 426 : 400, "INVALID_REQUEST",
                  "/terminal is a WebSocket: connect with an Upgrade: websocket request");
        if (up == WS_UPGRADE_NONE)
            buf_puts(&rep->headers, "Upgrade: websocket\r\n");
        return 0;
    }
    long cols = query_dim(req, "cols"), rows = query_dim(req, "rows");
    int has_session = http_query_get(req->query, req->query_len, "session", session,
                                     sizeof session);
    int has_cwd = http_query_get(req->query, req->query_len, "cwd", cwd, sizeof cwd);
    if (cols < 0 || rows < 0 || has_session == -2 || has_cwd == -2) {
        api_error(req, rep, 400, "INVALID_REQUEST",
                  "cols and rows must be 1 to 65535, session and cwd well-formed");
        return 0;
    }
    if (!observing) {
        if (proc_observe(on_proc) < 0) {
            api_error(req, rep, 500, "INTERNAL_ERROR", "no process observer slot left");
            return 0;
        }
        observing = 1;
        buf_init(&msg, 6 * sizeof chunk + 256);   /* every byte escaped as \u00XX */
    }
    struct term *t = NULL;
    if (has_session >= 0) {
        t = term_find(session, (size_t)has_session);
        if (!t) {
            api_error(req, rep, 404, "NOT_FOUND",
                      "no such terminal session (it ended, or nobody reattached in time)");
            return 0;
        }
        if (t->p && cols && rows)
            proc_resize(t->p, (unsigned)cols, (unsigned)rows);
    } else {
        struct stat st;
        if (has_cwd > 0 && cwd[0] != '/') {   /* relative to the workdir, as working_dir is */
            char rel[sizeof cwd];
            memcpy(rel, cwd, sizeof rel);
            if ((size_t)snprintf(cwd, sizeof cwd, "%s/%s", c->workdir, rel) >= sizeof cwd) {
                api_error(req, rep, 400, "INVALID_REQUEST", "cwd is too long");
                return 0;
            }
        }
        if (has_cwd > 0 && (stat(cwd, &st) < 0 || !S_ISDIR(st.st_mode))) {
            api_error(req, rep, 400, "DIRECTORY_NOT_FOUND", "no such working directory");
            return 0;
        }
        if (nterms >= LIMIT_TERMINALS) {
            api_error(req, rep, 429, "TOO_MANY_TERMINALS",
                      "too many terminal sessions are open: close one first");
            return 0;
        }
        if (*c->stopping) {
            api_error(req, rep, 503, "EXECUTION_FAILED", "the agent is shutting down");
            return 0;
        }
        t = calloc(1, sizeof *t);
        if (!t) {
            api_error(req, rep, 503, "EXECUTION_FAILED", "out of memory");
            return 0;
        }
        int err = 0;
        t->p = start_shell(c, has_cwd > 0 ? cwd : NULL, cols ? (unsigned)cols : 0,
                           rows ? (unsigned)rows : 0, &err);
        if (!t->p) {
            free(t);
            api_error(req, rep, err == ENOENT ? 400 : 503, "EXECUTION_FAILED",
                      err == ENOENT ? "no shell found ($SHELL, bash, /bin/sh)"
                                    : "cannot start a shell");
            return 0;
        }
        memcpy(t->id, t->p->id, sizeof t->id);
        t->keep_us = (int64_t)c->terminal_keep_s * 1000000;
        t->grace_us = (int64_t)c->grace_s * 1000000;
        timer_init(&t->hangup, on_hangup, t);
        timer_init(&t->later, on_later, t);
        t->next = terms;
        if (terms)
            terms->prev = t;
        terms = t;
        nterms++;
    }
    struct attach *a = calloc(1, sizeof *a);
    if (!a) {
        api_error(req, rep, 503, "INTERNAL_ERROR", "out of memory");
        if (!t->att)
            detach(t);
        return 0;
    }
    if (t->att) {   /* reattached elsewhere: the newest client wins */
        struct attach *old = t->att;
        old->t = NULL;
        if (old->w)
            wsconn_close(old->w, WS_CLOSE_NORMAL, "session reattached elsewhere");
    }
    timer_cancel(&t->hangup);
    timer_cancel(&t->later);
    a->t = t;
    t->att = a;
    rep->status = 101;
    buf_printf(&rep->headers, "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                              "Sec-WebSocket-Accept: %s\r\n", accept);
    req->owner = &term_owner;
    req->owner_ctx = a;
    return SERVER_TAKEN;
}
