/* process.Process over proc.c records (api_e2b.h). A process started here is an ordinary
 * record (the HopX routes list it too; processes started there show here): Start builds the
 * HopX start request and hands it to api_proc_start, so both protocols run one spawn path.
 * Each Start or Connect stream is a reader at its own offsets in the record's rings, like
 * the HopX live streams: a slow client holds no output, several follow one process. */
#include "api_e2b.h"

#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "api_proc.h"
#include "connect.h"
#include "decode.h"
#include "follow.h"
#include "json.h"
#include "limits.h"
#include "proc.h"
#include "timer.h"
#include "util.h"
#include "wsconn.h"

#define PUMP_MSGS 16                                   /* messages per reader per round */
#define MSG_MAX   (LIMIT_STREAM_CHUNK / 3 * 4 + 4096)  /* a chunk in base64, and the JSON */

/* What E2B's List shows of a process it started: kept beside the record, dropped with it. */
struct pinfo {
    const struct proc *p;
    char *config;              /* {"cmd","args","envs","cwd"} as the client sent them */
    char *tag;                 /* NULL: none */
    struct pinfo *next;
};

/* One Start or Connect stream following one record. */
struct reader {
    struct wsconn *w;          /* NULL until the server hands the connection over */
    struct follow f;           /* f.p: NULL once the record is gone; f.off: next bytes */
    int start_sent, closing;
    int64_t keepalive_us, last_send;
    struct timer timer;
};

static struct pinfo *infos;
static struct buf msg;

/* ---- request shapes ---- */

struct size_req { int64_t cols, rows; };
struct pty_req { struct size_req size; };
struct cfg_req {
    const char *cmd;
    struct decode_strings args;
    struct decode_map envs;
    const char *cwd;
};
struct sel_req { int64_t pid; const char *tag; };
struct input_req { const char *stdin_b64, *pty_b64; };
struct start_req {
    struct cfg_req process;
    struct pty_req pty;
    const char *tag;
    int stdin_on;               /* -1: absent (a pipe) */
};
struct pid_req {
    struct sel_req process;
    struct input_req input;
    const char *signal;
    struct pty_req pty;
};

static const struct decode_field size_fields[] = {
    { "cols", .type = DECODE_INT, .off = offsetof(struct size_req, cols), .min = 0, .max = 65535 },
    { "rows", .type = DECODE_INT, .off = offsetof(struct size_req, rows), .min = 0, .max = 65535 },
};
static const struct decode_table size_table = DECODE_TABLE(size_fields);
static const struct decode_field pty_fields[] = {
    { "size", .type = DECODE_OBJECT, .off = offsetof(struct pty_req, size), .sub = &size_table },
};
static const struct decode_table pty_table = DECODE_TABLE(pty_fields);
static const struct decode_field cfg_fields[] = {
    { "cmd", .type = DECODE_STRING, .off = offsetof(struct cfg_req, cmd),
      .flags = DECODE_REQUIRED | DECODE_EMPTY_IS_ABSENT },
    { "args", .type = DECODE_STRINGS, .off = offsetof(struct cfg_req, args), .max = LIMIT_ARGS },
    { "envs", .type = DECODE_MAP, .off = offsetof(struct cfg_req, envs), .flags = DECODE_ENV,
      .max = LIMIT_ENV_VARS },
    { "cwd", .type = DECODE_STRING, .off = offsetof(struct cfg_req, cwd) },
};
static const struct decode_table cfg_table = DECODE_TABLE(cfg_fields);
static const struct decode_field start_fields[] = {
    { "process", .type = DECODE_OBJECT, .off = offsetof(struct start_req, process),
      .sub = &cfg_table, .flags = DECODE_REQUIRED },
    { "pty", .type = DECODE_OBJECT, .off = offsetof(struct start_req, pty), .sub = &pty_table },
    { "tag", .type = DECODE_STRING, .off = offsetof(struct start_req, tag), .max = 256 },
    { "stdin", .type = DECODE_BOOL, .off = offsetof(struct start_req, stdin_on), .def_int = -1 },
};
static const struct decode_table start_table = DECODE_TABLE(start_fields);

static const struct decode_field sel_fields[] = {
    { "pid", .type = DECODE_INT, .off = offsetof(struct sel_req, pid), .min = 0,
      .max = INT32_MAX },
    { "tag", .type = DECODE_STRING, .off = offsetof(struct sel_req, tag) },
};
static const struct decode_table sel_table = DECODE_TABLE(sel_fields);
static const struct decode_field input_fields[] = {
    { "stdin", .type = DECODE_STRING, .off = offsetof(struct input_req, stdin_b64) },
    { "pty", .type = DECODE_STRING, .off = offsetof(struct input_req, pty_b64) },
};
static const struct decode_table input_table = DECODE_TABLE(input_fields);
static const struct decode_field pid_fields[] = {
    { "process", .type = DECODE_OBJECT, .off = offsetof(struct pid_req, process),
      .sub = &sel_table, .flags = DECODE_REQUIRED },
    { "input", .type = DECODE_OBJECT, .off = offsetof(struct pid_req, input), .sub = &input_table },
    { "signal", .type = DECODE_SCALAR, .off = offsetof(struct pid_req, signal) },
    { "pty", .type = DECODE_OBJECT, .off = offsetof(struct pid_req, pty), .sub = &pty_table },
};
static const struct decode_table pid_table = DECODE_TABLE(pid_fields);

/* ---- records ---- */

static struct pinfo *info_of(const struct proc *p)
{
    for (struct pinfo *i = infos; i; i = i->next)
        if (i->p == p)
            return i;
    return NULL;
}

/* A live process by pid or tag (finished ones are gone, as in envd). */
static struct proc *find(const struct sel_req *s)
{
    for (struct proc *p = proc_first(); p; p = proc_next(p)) {
        if (p->state != PROC_RUNNING)
            continue;
        if (s->tag) {
            struct pinfo *i = info_of(p);
            if (i && i->tag && !strcmp(i->tag, s->tag))
                return p;
        } else if (p->pid == s->pid) {
            return p;
        }
    }
    return NULL;
}

static int not_found(struct e2b_call *k, const struct sel_req *s)
{
    if (s->tag)
        return e2b_error(k, "not_found", "process with tag %s not found", s->tag);
    return e2b_error(k, "not_found", "process with pid %lld not found", (long long)s->pid);
}

/* Go's ProcessState.String() names for the signals a process dies of. */
static const char *go_signal(int sig)
{
    static const char *const names[] = {
        NULL, "hangup", "interrupt", "quit", "illegal instruction", "trace/breakpoint trap",
        "aborted", "bus error", "floating point exception", "killed", "user defined signal 1",
        "segmentation fault", "user defined signal 2", "broken pipe", "alarm clock",
        "terminated",
    };
    return sig > 0 && sig < (int)(sizeof names / sizeof names[0]) ? names[sig] : NULL;
}

/* ---- streams ---- */

static struct buf *msg_start(void)
{
    if (!msg.max)
        buf_init(&msg, MSG_MAX);
    buf_reset(&msg);
    return &msg;
}

static void msg_send(struct reader *r)
{
    if (!msg.failed)
        e2b_stream_send(r->w, 0, msg.data, msg.len);
    r->last_send = util_mono_us();
}

static void send_start(struct reader *r)
{
    struct buf *b = msg_start();
    buf_printf(b, "{\"event\":{\"start\":{\"pid\":%d}}}", (int)r->f.p->pid);
    msg_send(r);
}

static void send_data(struct reader *r, const char *key, const char *data, size_t n)
{
    struct buf *b = msg_start();
    buf_printf(b, "{\"event\":{\"data\":{\"%s\":\"", key);
    e2b_b64_put(b, (const unsigned char *)data, n);
    buf_puts(b, "\"}}}");
    msg_send(r);
}

static void send_end(struct reader *r)
{
    const struct proc *p = r->f.p;
    struct buf *b = msg_start();
    char status[64];
    int sig = p->term_signal;
    int code = sig ? -1 : p->exit_code;
    if (sig) {
        const char *n = go_signal(sig);
        if (n)
            snprintf(status, sizeof status, "signal: %s", n);
        else
            snprintf(status, sizeof status, "signal: signal %d", sig);
    } else {
        snprintf(status, sizeof status, "exit status %d", code);
    }
    buf_puts(b, "{\"event\":{\"end\":{");
    json_put_key(b, "exitCode");
    json_put_int(b, code);
    json_put_key(b, "exited");
    json_put_bool(b, !sig);
    json_put_key(b, "status");
    json_put_cstr(b, status);
    if (code != 0) {
        json_put_key(b, "error");
        json_put_cstr(b, status);
    }
    buf_puts(b, "}}}");
    msg_send(r);
}

/* Sends the next message the reader is due. Returns 1 when one was sent. */
static int step(struct reader *r)
{
    struct proc *p = r->f.p;
    if (!p) {   /* evicted under us: the stream cannot end properly */
        r->closing = 1;
        e2b_stream_end(r->w, "not_found", "the process record was removed");
        return 1;
    }
    if (!r->start_sent) {
        r->start_sent = 1;
        send_start(r);
        return 1;
    }
    struct follow_span o;
    enum follow_kind k = follow_next(&r->f, 0, &o);
    if (k == FOLLOW_GAP) {
        /* fell behind what is kept. E2B's protocol has no gap event (envd holds the
         * process back instead); the agent never does, so the loss is said in the
         * stream, on stderr (the terminal for a PTY), rather than kept silent */
        char note[200];
        int len = snprintf(note, sizeof note, "\n[sandbox-agent: %llu bytes of %s "
                           "skipped: this reader fell behind the output the agent keeps "
                           "(--output-limit)]\n", (unsigned long long)o.gap,
                           o.stream ? "stderr" : "stdout");
        send_data(r, p->pty ? "pty" : "stderr", note, (size_t)len);
        return 1;
    }
    if (k == FOLLOW_DATA) {
        send_data(r, p->pty ? "pty" : o.stream ? "stderr" : "stdout", o.data, o.n);
        return 1;
    }
    int running = p->state != PROC_FINISHED;
    if (running)
        return 0;
    send_end(r);
    r->closing = 1;
    /* the end-stream envelope goes once the end event is written (writable) */
    return 1;
}

static void pump(struct reader *r)
{
    for (int i = 0; i < PUMP_MSGS; i++) {
        if (!r->w || wsconn_pending(r->w))
            return;
        if (r->closing) {
            if (r->closing == 1) {
                r->closing = 2;
                e2b_stream_end(r->w, NULL, NULL);
            }
            return;
        }
        if (!step(r))
            return;
    }
    timer_arm(&r->timer, util_mono_us());   /* a fast client: on next round, let others in */
}

static void on_timer(void *ctx)
{
    struct reader *r = ctx;
    if (!r->w)
        return;
    int64_t now = util_mono_us();
    if (!r->closing && !wsconn_pending(r->w) && now - r->last_send >= r->keepalive_us) {
        struct buf *b = msg_start();
        buf_puts(b, "{\"event\":{\"keepalive\":{}}}");
        msg_send(r);
    }
    pump(r);
    if (!r->closing)
        timer_arm(&r->timer, r->last_send + r->keepalive_us);
}

/* A record went: what E2B's List kept of it goes too. */
static void on_proc(const struct proc *p, enum proc_event ev, int sig)
{
    (void)sig;
    if (ev == PROC_EV_EVICTED) {
        for (struct pinfo **pp = &infos; *pp;) {
            struct pinfo *i = *pp;
            if (i->p == p) {
                *pp = i->next;
                free(i->config);
                free(i->tag);
                free(i);
            } else {
                pp = &i->next;
            }
        }
    }
}

/* A follower's record gained output (send), finished or went (the end, from the timer). */
static void on_follow(struct follow *f, enum proc_event ev)
{
    struct reader *r = (struct reader *)((char *)f - offsetof(struct reader, f));
    if (ev == PROC_EV_OUTPUT)
        pump(r);
    else
        timer_arm(&r->timer, util_mono_us());
}

static void reader_free(struct reader *r)
{
    timer_cancel(&r->timer);
    follow_stop(&r->f);
    free(r);
}

static void on_writable(void *ctx, struct wsconn *w)
{
    (void)w;
    pump(ctx);
}

static void on_closed(void *ctx)
{
    reader_free(ctx);
}

static const struct wsconn_ops reader_ops = { NULL, on_writable, on_closed };

static void reader_take(void *ctx, int fd, const char *pending, size_t len)
{
    struct reader *r = ctx;
    if (fd < 0) {
        reader_free(r);
        return;
    }
    struct wsconn *w = wsconn_start(fd, WSCONN_BARE, pending, len, &reader_ops, r);
    if (!w) {
        reader_free(r);
        return;
    }
    r->w = w;
    r->last_send = util_mono_us();
    timer_arm(&r->timer, r->last_send + r->keepalive_us);
    pump(r);
}

static void readers_stop(void)
{
    wsconn_stop_all();
}

static const struct server_owner reader_owner = { reader_take, readers_stop };

static struct reader *reader_new(struct e2b_call *k, struct proc *p)
{
    struct reader *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->keepalive_us = e2b_keepalive_us(k->req);
    timer_init(&r->timer, on_timer, r);
    follow_start(&r->f, p, on_follow);
    proc_observe(on_proc);   /* again: a no-op */
    return r;
}

/* ---- Start ---- */

/* The Connect-Timeout-Ms header: the process's lifetime (0: none). */
static int64_t timeout_ms(const struct server_request *req)
{
    const struct http_header *h = http_find_header(req->http, "connect-timeout-ms");
    int64_t v = 0;
    for (size_t i = 0; h && i < h->value_len && i < 12; i++) {
        if (h->value[i] < '0' || h->value[i] > '9')
            return 0;
        v = v * 10 + (h->value[i] - '0');
    }
    return v > (int64_t)LIMIT_TIMEOUT_MAX_S * 1000 ? (int64_t)LIMIT_TIMEOUT_MAX_S * 1000 : v;
}

static int has_env(const struct decode_map *m, const char *key)
{
    for (size_t i = 0; i < m->n; i++)
        if (!strcmp(m->keys[i], key))
            return 1;
    return 0;
}

/* The HopX start body for q: {command, args, env, cwd, timeout, stdin, pty, cols, rows}. */
static void hopx_body(struct buf *b, struct e2b_call *k, const struct start_req *q,
                      const char *cwd)
{
    int64_t t = timeout_ms(k->req);
    buf_putc(b, '{');
    json_put_key(b, "command");
    json_put_cstr(b, q->process.cmd);
    json_put_key(b, "args");
    buf_putc(b, '[');
    for (size_t i = 0; i < q->process.args.n; i++) {
        json_sep(b);
        json_put_cstr(b, q->process.args.v[i]);
    }
    buf_putc(b, ']');
    json_put_key(b, "env");
    buf_putc(b, '{');
    /* the user's own variables, unless the request sets them */
    const char *own[3][2] = { { "HOME", k->home }, { "USER", k->user }, { "LOGNAME", k->user } };
    for (int i = 0; i < 3; i++)
        if (!has_env(&q->process.envs, own[i][0])) {
            json_put_key(b, own[i][0]);
            json_put_cstr(b, own[i][1]);
        }
    for (size_t i = 0; i < q->process.envs.n; i++) {
        json_put_key(b, q->process.envs.keys[i]);
        json_put_cstr(b, q->process.envs.vals[i]);
    }
    buf_putc(b, '}');
    if (k->switch_user) {   /* api_proc runs it as the user (runas.h) */
        json_put_key(b, "user");
        json_put_cstr(b, k->user);
    }
    json_put_key(b, "cwd");
    json_put_cstr(b, cwd);
    buf_printf(b, ",\"timeout\":%lld.%03lld", (long long)(t / 1000), (long long)(t % 1000));
    int pty = q->pty.size.cols > 0 && q->pty.size.rows > 0;
    json_put_key(b, "stdin");
    json_put_bool(b, pty || q->stdin_on != 0);
    if (pty) {
        buf_printf(b, ",\"pty\":true,\"cols\":%lld,\"rows\":%lld", (long long)q->pty.size.cols,
                   (long long)q->pty.size.rows);
    }
    buf_putc(b, '}');
}

/* What List shows: the config as the client sent it. */
static char *config_json(const struct start_req *q, const char *cwd)
{
    struct buf b;
    buf_init(&b, LIMIT_BODY_BYTES);
    buf_putc(&b, '{');
    json_put_key(&b, "cmd");
    json_put_cstr(&b, q->process.cmd);
    json_put_key(&b, "args");
    buf_putc(&b, '[');
    for (size_t i = 0; i < q->process.args.n; i++) {
        json_sep(&b);
        json_put_cstr(&b, q->process.args.v[i]);
    }
    buf_putc(&b, ']');
    json_put_key(&b, "envs");
    buf_putc(&b, '{');
    for (size_t i = 0; i < q->process.envs.n; i++) {
        json_put_key(&b, q->process.envs.keys[i]);
        json_put_cstr(&b, q->process.envs.vals[i]);
    }
    buf_putc(&b, '}');
    json_put_key(&b, "cwd");
    json_put_cstr(&b, cwd);
    buf_putc(&b, '}');
    if (b.failed || buf_putc(&b, 0) < 0) {
        buf_free(&b);
        return NULL;
    }
    return b.data;
}

/* The HopX error's message (api_error's body), for the Connect error. */
static void hopx_message(const struct server_reply *rp, char *out, size_t cap)
{
    struct json_token t[64];
    snprintf(out, cap, "cannot start the process");
    if (json_parse(rp->body.data, rp->body.len, t, 64, 4) < 1)
        return;
    int i = json_get(rp->body.data, t, 0, "message");
    if (i >= 0 && t[i].type == JSON_STRING && t[i].len < cap) {
        size_t n = json_str_decode(rp->body.data, &t[i], out);
        out[n] = 0;
    }
}

int e2b_proc_start(struct e2b_call *k)
{
    struct decode_arena ar = { 0 };
    struct start_req q;
    int rc = 0;
    if (decode_arena_open(&ar, DECODE_ARENA_FOR(k->json_len)) < 0)
        return e2b_error(k, "resource_exhausted", "out of memory");
    if (e2b_decode(k, &start_table, &ar, &q) < 0)
        goto done;
    char cwd[PATH_MAX];
    if (e2b_path(k->home, q.process.cwd ? q.process.cwd : "", cwd) < 0) {
        rc = e2b_error(k, "invalid_argument", "cwd too long");
        goto done;
    }
    struct stat st;
    if (stat(cwd, &st) < 0 || !S_ISDIR(st.st_mode)) {
        rc = e2b_error(k, "invalid_argument", "cwd '%s' does not exist", cwd);
        goto done;
    }
    struct buf body;
    buf_init(&body, LIMIT_BODY_BYTES);
    hopx_body(&body, k, &q, cwd);
    struct server_request rq = { .http = k->req->http, .method = "POST", .method_len = 4,
                                 .path = "/commands/background", .path_len = 20,
                                 .body = body.data ? body.data : "", .body_len = body.len,
                                 .request_id = k->req->request_id };
    struct server_reply rp = { .status = 200 };
    buf_init(&rp.body, 65536);
    buf_init(&rp.headers, 1024);
    struct proc *p = body.failed ? NULL : api_proc_start(k->c, &rq, &rp, 0, 0);
    if (!p) {
        char m[300];
        hopx_message(&rp, m, sizeof m);
        rc = e2b_error(k, rp.status >= 500 ? "unavailable" : "invalid_argument", "%s", m);
    } else {
        struct pinfo *i = calloc(1, sizeof *i);
        if (i) {
            i->p = p;
            i->config = config_json(&q, cwd);
            i->tag = q.tag ? strdup(q.tag) : NULL;
            i->next = infos;
            infos = i;
        }
        struct reader *r = reader_new(k, p);
        if (!r) {
            proc_kill(p, SIGKILL);
            rc = e2b_error(k, "resource_exhausted", "out of memory");
        } else {
            rc = e2b_stream_take(k, &reader_owner, r);
        }
    }
    buf_free(&body);
    buf_free(&rp.body);
    buf_free(&rp.headers);
done:
    decode_arena_close(&ar);
    return rc;
}

/* ---- the calls on a running process ---- */

/* Decodes a request naming a process. Returns the live record, or NULL after answering. */
static struct proc *decode_pid(struct e2b_call *k, struct decode_arena *ar, struct pid_req *q)
{
    if (decode_arena_open(ar, DECODE_ARENA_FOR(k->json_len)) < 0) {
        e2b_error(k, "resource_exhausted", "out of memory");
        return NULL;
    }
    if (e2b_decode(k, &pid_table, ar, q) < 0)
        return NULL;
    struct proc *p = find(&q->process);
    if (!p)
        not_found(k, &q->process);
    return p;
}

int e2b_proc_connect(struct e2b_call *k)
{
    struct decode_arena ar = { 0 };
    struct pid_req q;
    struct proc *p = decode_pid(k, &ar, &q);
    int rc = 0;
    if (p) {
        struct reader *r = reader_new(k, p);
        if (!r) {
            rc = e2b_error(k, "resource_exhausted", "out of memory");
        } else {   /* from now on */
            r->f.off[0] = p->out.total;
            r->f.off[1] = p->err.total;
            rc = e2b_stream_take(k, &reader_owner, r);
        }
    }
    decode_arena_close(&ar);
    return rc;
}

int e2b_proc_list(struct e2b_call *k)
{
    struct buf b;
    buf_init(&b, LIMIT_RESPONSE_BYTES);
    buf_puts(&b, "{\"processes\":[");
    for (struct proc *p = proc_first(); p; p = proc_next(p)) {
        if (p->state != PROC_RUNNING)
            continue;
        struct pinfo *i = info_of(p);
        json_sep(&b);
        buf_puts(&b, "{\"config\":");
        if (i && i->config) {
            buf_puts(&b, i->config);
        } else {   /* started through the HopX API: what it ran, as a shell line */
            buf_puts(&b, "{\"cmd\":\"/bin/sh\",\"args\":[\"-c\",");
            json_put_cstr(&b, p->command);
            buf_puts(&b, "],\"envs\":{}}");
        }
        json_put_key(&b, "pid");
        json_put_int(&b, p->pid);
        if (i && i->tag) {
            json_put_key(&b, "tag");
            json_put_cstr(&b, i->tag);
        }
        buf_putc(&b, '}');
    }
    buf_puts(&b, "]}");
    if (b.failed)
        e2b_error(k, "resource_exhausted", "the list does not fit in an answer");
    else
        e2b_reply(k, b.data, b.len);
    buf_free(&b);
    return 0;
}

int e2b_proc_send_input(struct e2b_call *k)
{
    struct decode_arena ar = { 0 };
    struct pid_req q;
    struct proc *p = decode_pid(k, &ar, &q);
    if (p) {
        const char *in = q.input.pty_b64 ? q.input.pty_b64 : q.input.stdin_b64;
        long n = in ? e2b_b64_decode((char *)in, strlen(in)) : 0;
        if (n < 0) {
            e2b_error(k, "invalid_argument", "input is not base64");
        } else if (n > 0 && proc_stdin_write(p, in, (size_t)n) < 0) {
            int err = errno;
            if (err == EAGAIN || err == EMSGSIZE)
                e2b_error(k, "resource_exhausted", "stdin is full: the process is not reading");
            else if (err == EBADF || err == EPIPE)
                e2b_error(k, "failed_precondition", "stdin is %s",
                          err == EBADF ? "not a pipe" : "closed");
            else
                e2b_error(k, "internal", "stdin: %s", strerror(err));
        } else {
            e2b_reply(k, "{}", 2);
        }
    }
    decode_arena_close(&ar);
    return 0;
}

int e2b_proc_send_signal(struct e2b_call *k)
{
    struct decode_arena ar = { 0 };
    struct pid_req q;
    struct proc *p = decode_pid(k, &ar, &q);
    if (p) {
        const char *s = q.signal ? q.signal : "SIGNAL_SIGKILL";
        if (!strncmp(s, "SIGNAL_", 7))
            s += 7;
        int sig = proc_signal_parse(s, strlen(s));
        if (sig <= 0) {
            e2b_error(k, "invalid_argument", "unknown signal %s", q.signal);
        } else {
            proc_kill(p, sig);
            e2b_reply(k, "{}", 2);
        }
    }
    decode_arena_close(&ar);
    return 0;
}

int e2b_proc_close_stdin(struct e2b_call *k)
{
    struct decode_arena ar = { 0 };
    struct pid_req q;
    struct proc *p = decode_pid(k, &ar, &q);
    if (p) {
        if (proc_stdin_close(p) < 0 && errno == EBADF)
            e2b_error(k, "failed_precondition", "the process has no stdin pipe");
        else
            e2b_reply(k, "{}", 2);
    }
    decode_arena_close(&ar);
    return 0;
}

int e2b_proc_update(struct e2b_call *k)
{
    struct decode_arena ar = { 0 };
    struct pid_req q;
    struct proc *p = decode_pid(k, &ar, &q);
    if (p) {
        const struct size_req *s = &q.pty.size;
        if (s->cols > 0 && s->rows > 0 && proc_resize(p, (unsigned)s->cols, (unsigned)s->rows) < 0)
            e2b_error(k, errno == ENOTTY ? "failed_precondition" : "invalid_argument",
                      "resize: %s", strerror(errno));
        else
            e2b_reply(k, "{}", 2);
    }
    decode_arena_close(&ar);
    return 0;
}
