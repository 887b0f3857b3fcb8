#include "pysession.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "buf.h"
#include "envset.h"
#include "limits.h"
#include "loop.h"
#include "proc.h"
#include "util.h"

/* A session's life, every (state, event) pair decided:
 *
 *   state \ event  call queued    reply frame       deadline            exit (reaped)
 *   starting       waits          "ready": idle,    start limit: KILL   calls fail
 *                                 next call runs    (start_failed)      (start_failed); dead
 *   idle           runs: busy     protocol: KILL    idle limit: KILL    dead ("died" told
 *                                                   (closing)           by the next call)
 *   busy           waits          answer; idle,     1st: SIGINT group   answered: died, or
 *                                 next call runs    2nd: KILL group     restarted after a
 *                                                                       timeout KILL
 *   dead           respawn:       -                 -                   -
 *                  starting
 * A deleted, expired or shut down session is closing: out of the id namespace, its group
 * killed, its calls answered and its memory freed once it is reaped. Interpreters are
 * spawned only from pysession_run and from the reap claim (a restart), so nothing here is
 * freed under a caller's feet except in the claim. */

/* The driver's source: pysession_driver.py, put into the binary by the assembler, so the
 * Python stays a Python file in the repository (the Makefile rebuilds on its change). The
 * Makefile passes PYSESSION_DRIVER, the copy scripts/pymin.py shrank (no comments, 4 KB less). */
#ifndef PYSESSION_DRIVER
#define PYSESSION_DRIVER "pysession_driver.py"
#endif
__asm__(".pushsection .rodata.pysession_driver,\"a\"\n"
        ".globl pysession_driver_src\n.hidden pysession_driver_src\n"
        "pysession_driver_src:\n.incbin \"" PYSESSION_DRIVER "\"\n"
        ".globl pysession_driver_end\n.hidden pysession_driver_end\n"
        "pysession_driver_end:\n.popsection\n");
extern const char pysession_driver_src[], pysession_driver_end[];

/* What `python3 -c` runs: read one frame (the driver) from fd 3 and execute it. Small, so
 * the process list shows a short command line. */
static const char boot[] =
    "import os\n"
    "def r(n):\n"
    "    b = b''\n"
    "    while len(b) < n:\n"
    "        c = os.read(3, n - len(b))\n"
    "        if not c:\n"
    "            os._exit(70)\n"
    "        b += c\n"
    "    return b\n"
    "exec(compile(r(int.from_bytes(r(4), 'big')), '<sandbox-agent>', 'exec'))\n";

#define MPLBACKEND   "MPLBACKEND=module://sandbox_agent_mpl"
#define DRAIN_LIMIT  (1u << 20)   /* output read after a reply or exit: a pipe holds 64 KiB */
#define TAIL_KEEP    (64u << 10)  /* output buffer a session keeps between calls */
#define FD_FLOOR     5            /* pipe ends are moved above the child's 0..4 */

enum kill_cause { K_NONE, K_TIMEOUT, K_PROTOCOL, K_START, K_CLOSE };

struct pycall {
    struct pycall *next;
    char *frame;                /* length prefix + JSON */
    size_t frame_len;
    int64_t timeout_us;
    pysession_done_fn *fn;
    void *ctx;
};

/* The last `limit` bytes of a stream: grows to twice the limit, then slides (amortized
 * one copy per byte, no ring to join for the answer). */
struct tail {
    char *data;
    size_t len, cap;
    uint64_t total;
};

struct pysession {
    struct pysession *prev, *next;
    char id[65];
    char kernel_id[37];
    enum pysession_state state;
    int closing;                 /* enum pysession_outcome for its calls once reaped, or 0 */
    enum kill_cause killing;
    pid_t pid;                   /* 0: no interpreter */
    int cmd_fd, rep_fd, out_fd, err_fd;
    struct buf wbuf;             /* frames not yet written to cmd_fd */
    size_t woff;
    unsigned char hdr[4];        /* the reply being read: length, then body */
    size_t hdr_got;
    char *frame;
    size_t frame_len, frame_got;
    struct pycall *head, *tail_call;
    long nqueued;
    struct pycall *cur;
    int interrupted;
    int64_t deadline_us;         /* start limit, call timeout or grace; 0 = none */
    int64_t call_start_us;
    const char *restart_reason;  /* told by the next call that runs */
    int64_t created_ms, last_used_ms, last_used_us;
    long exec_count;
    int ipython;
    char **envp;                 /* the interpreter's environment, kept for restarts */
    char *start_cwd;
    struct tail out, err;
};

static struct pysession_limits lim;
static struct pysession *first, *last;
static long nalive;              /* sessions not closing */
static int timer_fd = -1;
static int stopping;

static void session_rearm(void);
static void reply_too_large(struct pysession *s);
static int session_spawn(struct pysession *s);

/* ---- small helpers ---- */

static void tail_add(struct tail *t, const char *p, size_t n)
{
    size_t limit = lim.output_limit;
    t->total += n;
    if (limit == 0 || n == 0)
        return;
    if (n >= limit) {
        p += n - limit;
        n = limit;
        t->len = 0;
    } else if (t->len + n > 2 * limit) {
        size_t keep = limit - n;
        memmove(t->data, t->data + t->len - keep, keep);
        t->len = keep;
    }
    if (t->len + n > t->cap) {
        size_t cap = t->cap ? t->cap : 4096;
        while (cap < t->len + n)
            cap *= 2;
        if (cap > 2 * limit)
            cap = 2 * limit;
        char *nd = realloc(t->data, cap);
        if (!nd)
            return;   /* short of memory: counted, not kept */
        t->data = nd;
        t->cap = cap;
    }
    memcpy(t->data + t->len, p, n);
    t->len += n;
}

static void tail_view(const struct tail *t, const char **p, size_t *n)
{
    size_t keep = t->len < lim.output_limit ? t->len : lim.output_limit;
    *p = t->data ? t->data + t->len - keep : "";
    *n = keep;
}

static void tail_free(struct tail *t)
{
    free(t->data);
    memset(t, 0, sizeof *t);
}

static void fd_close(int *fd)
{
    if (*fd >= 0) {
        loop_del(*fd);
        close(*fd);
        *fd = -1;
    }
}

/* Moves a descriptor above the child's 0..4, so the spawn's dup2s never overwrite an end
 * they still have to copy. */
static int fd_lift(int fd)
{
    if (fd >= FD_FLOOR)
        return fd;
    int nfd = fcntl(fd, F_DUPFD_CLOEXEC, FD_FLOOR);
    close(fd);
    return nfd;
}

static struct pysession *find(const char *id, size_t len)
{
    for (struct pysession *s = first; s; s = s->next)
        if (!s->closing && strlen(s->id) == len && memcmp(s->id, id, len) == 0)
            return s;
    return NULL;
}

static int id_ok(const char *id, size_t len)
{
    if (len == 0 || len > 64)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

/* python3, else python, on the PATH of envp (or the default PATH). */
static int find_python(char *const *envp, char *out, size_t cap)
{
    const char *path = ENVSET_DEFAULT_PATH;
    for (char *const *e = envp; e && *e; e++)
        if (!strncmp(*e, "PATH=", 5))
            path = *e + 5;
    static const char *const names[] = { "python3", "python" };
    for (size_t k = 0; k < 2; k++) {
        for (const char *p = path; *p;) {
            size_t len = strcspn(p, ":");
            struct stat st;
            if (snprintf(out, cap, "%.*s%s%s", (int)len, p, len ? "/" : "", names[k]) <
                    (int)cap &&
                stat(out, &st) == 0 && S_ISREG(st.st_mode) && access(out, X_OK) == 0)
                return 0;
            p += len + (p[len] == ':');
        }
    }
    return -1;
}

/* ---- answering calls ---- */

static void call_free(struct pycall *c)
{
    free(c->frame);
    free(c);
}

/* Hands one call its result and frees it. */
static void call_answer(struct pysession *s, struct pycall *c, enum pysession_outcome outcome,
                        const char *reply, size_t reply_len, const struct json_token *toks,
                        int status)
{
    struct pysession_result r = { 0 };
    r.outcome = outcome;
    r.session_id = s->id;
    r.kernel_id = s->kernel_id;
    r.execution_count = s->exec_count;
    if (c == s->cur || outcome == PYS_START_FAILED) {
        tail_view(&s->out, &r.out, &r.out_len);
        tail_view(&s->err, &r.err, &r.err_len);
        r.out_total = s->out.total;
        r.err_total = s->err.total;
        r.exec_s = c == s->cur ? (double)(util_mono_us() - s->call_start_us) / 1e6 : 0;
        r.restart_reason = outcome == PYS_RESTARTED ? "timeout" : s->restart_reason;
    } else {
        r.out = r.err = "";
    }
    r.reply = reply;
    r.reply_len = reply_len;
    r.toks = toks;
    if (outcome == PYS_DIED || outcome == PYS_START_FAILED) {
        r.term_signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
        r.exit_code = WIFSIGNALED(status) ? 128 + r.term_signal : WEXITSTATUS(status);
    }
    r.finished_ms = util_wall_ms();
    if (c == s->cur) {
        s->cur = NULL;
        s->restart_reason = NULL;   /* told once */
    }
    c->fn(c->ctx, &r);
    call_free(c);
    if (s->out.cap > TAIL_KEEP)   /* a chatty call's buffers are not held while idle */
        tail_free(&s->out);
    if (s->err.cap > TAIL_KEEP)
        tail_free(&s->err);
}

/* Answers every waiting call with outcome (nothing of theirs ran). */
static void queue_fail(struct pysession *s, enum pysession_outcome outcome, int status)
{
    while (s->head) {
        struct pycall *c = s->head;
        s->head = c->next;
        s->nqueued--;
        call_answer(s, c, outcome, NULL, 0, NULL, status);
    }
    s->tail_call = NULL;
}

/* ---- writing frames ---- */

static void on_cmd(void *ctx, int fd, short revents);

/* Writes what the pipe takes; waits for POLLOUT for the rest. A broken pipe means the
 * interpreter is going: its exit comes from the reap. */
static void cmd_flush(struct pysession *s)
{
    while (s->woff < s->wbuf.len) {
        ssize_t n = write(s->cmd_fd, s->wbuf.data + s->woff, s->wbuf.len - s->woff);
        if (n > 0) {
            s->woff += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            loop_set(s->cmd_fd, POLLOUT);
            return;
        }
        s->woff = s->wbuf.len;   /* EPIPE: drop it */
    }
    buf_reset(&s->wbuf);
    s->woff = 0;
    loop_set(s->cmd_fd, 0);
}

static void on_cmd(void *ctx, int fd, short revents)
{
    struct pysession *s = ctx;
    (void)fd;
    if (revents & (POLLERR | POLLHUP)) {   /* the reader is gone (poll says so even with
                                            * no events asked): the reap follows */
        fd_close(&s->cmd_fd);
        return;
    }
    cmd_flush(s);
}

static int cmd_send(struct pysession *s, const char *frame, size_t len)
{
    if (buf_append(&s->wbuf, frame, len) < 0)
        return -1;
    cmd_flush(s);
    return 0;
}

/* ---- running calls ---- */

/* Starts the next waiting call when the interpreter is idle. */
static void dispatch(struct pysession *s)
{
    if (s->state != PYS_IDLE || !s->head || s->closing)
        return;
    struct pycall *c = s->head;
    s->head = c->next;
    if (!s->head)
        s->tail_call = NULL;
    s->nqueued--;
    s->cur = c;
    s->state = PYS_BUSY;
    s->interrupted = 0;
    s->out.len = s->err.len = 0;
    s->out.total = s->err.total = 0;
    s->call_start_us = util_mono_us();
    s->deadline_us = s->call_start_us + c->timeout_us;
    s->last_used_ms = util_wall_ms();
    s->last_used_us = s->call_start_us;
    s->exec_count++;
    if (cmd_send(s, c->frame, c->frame_len) < 0) {
        s->killing = K_PROTOCOL;   /* the frame did not fit: end it the one way we know */
        killpg(s->pid, SIGKILL);
    }
}

/* Reads what a pipe has; bytes go to the running call, or nowhere between calls (a
 * background thread's prints). Returns 0 at EOF or error, 1 while open. */
static int out_read(struct pysession *s, int fd, struct tail *t, size_t budget)
{
    char chunk[LIMIT_PIPE_READ];
    while (budget > 0) {
        ssize_t n = read(fd, chunk, sizeof chunk < budget ? sizeof chunk : budget);
        if (n > 0) {
            if (s->cur || s->state == PYS_STARTING)   /* startup errors are told */
                tail_add(t, chunk, (size_t)n);
            budget -= (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
    }
    return 1;
}

static void on_out(void *ctx, int fd, short revents)
{
    struct pysession *s = ctx;
    (void)revents;
    int is_out = fd == s->out_fd;
    if (!out_read(s, fd, is_out ? &s->out : &s->err, LIMIT_PIPE_READ))
        fd_close(is_out ? &s->out_fd : &s->err_fd);
}

/* Everything the call wrote before its reply is in the pipes by now (the driver flushes,
 * and a write to a pipe is complete when it returns). */
static void out_drain(struct pysession *s)
{
    if (s->out_fd >= 0 && !out_read(s, s->out_fd, &s->out, DRAIN_LIMIT))
        fd_close(&s->out_fd);
    if (s->err_fd >= 0 && !out_read(s, s->err_fd, &s->err, DRAIN_LIMIT))
        fd_close(&s->err_fd);
}

static void protocol_kill(struct pysession *s)
{
    if (!s->killing)
        s->killing = K_PROTOCOL;
    killpg(s->pid, SIGKILL);
    fd_close(&s->rep_fd);
}

/* One whole reply frame from the driver. */
static void on_frame(struct pysession *s, const char *f, size_t len)
{
    size_t max = len + 1 < LIMIT_PY_REPLY_TOKENS ? len + 1 : LIMIT_PY_REPLY_TOKENS;
    struct json_token *toks = malloc(max * sizeof *toks);
    int n = toks ? json_parse(f, len, toks, (uint32_t)max, LIMIT_JSON_DEPTH) : JSON_ERR_TOKENS;
    if (n == JSON_ERR_TOKENS || n == JSON_ERR_DEPTH) {   /* valid, but more than we take */
        free(toks);
        reply_too_large(s);
        return;
    }
    if (n < 1 || toks[0].type != JSON_OBJECT) {
        free(toks);
        protocol_kill(s);
        return;
    }
    if (s->state == PYS_STARTING && json_get(f, toks, 0, "ready") >= 0) {
        int i = json_get(f, toks, 0, "ipython");
        s->ipython = i >= 0 && toks[i].type == JSON_TRUE;
        s->state = PYS_IDLE;
        s->deadline_us = 0;
        free(toks);
        dispatch(s);
        return;
    }
    if (s->state != PYS_BUSY || !s->cur) {
        free(toks);
        protocol_kill(s);
        return;
    }
    out_drain(s);
    s->state = PYS_IDLE;
    s->deadline_us = 0;
    s->last_used_us = util_mono_us();
    s->last_used_ms = util_wall_ms();
    /* a SIGINT that came as the code ended finds the driver between calls (ignored there):
     * the call then answers as done */
    int err = json_get(f, toks, 0, "error");
    int raised = err >= 0 && toks[err].type == JSON_OBJECT;
    call_answer(s, s->cur, s->interrupted && raised ? PYS_INTERRUPTED : PYS_DONE, f, len, toks,
                0);
    free(toks);
    dispatch(s);
}

/* The call's reply cannot be returned (too large, too many values): the code did run, so
 * the call answers with its output, and the session goes on. */
static void reply_too_large(struct pysession *s)
{
    if (s->state != PYS_BUSY || !s->cur) {
        protocol_kill(s);
        return;
    }
    out_drain(s);
    s->state = PYS_IDLE;
    s->deadline_us = 0;
    s->last_used_us = util_mono_us();
    s->last_used_ms = util_wall_ms();
    call_answer(s, s->cur, PYS_TOO_LARGE, NULL, 0, NULL, 0);
    dispatch(s);
}

static void on_rep(void *ctx, int fd, short revents)
{
    struct pysession *s = ctx;
    char chunk[LIMIT_PIPE_READ];
    (void)revents;
    for (;;) {
        ssize_t n;
        size_t want = s->frame_len - s->frame_got;
        if (s->hdr_got < 4)
            n = read(fd, s->hdr + s->hdr_got, 4 - s->hdr_got);
        else if (s->frame)
            n = read(fd, s->frame + s->frame_got, want);
        else   /* a reply too large to keep: read through it */
            n = read(fd, chunk, want < sizeof chunk ? want : sizeof chunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n <= 0) {   /* EOF: the interpreter is going; its exit comes from the reap */
            fd_close(&s->rep_fd);
            break;
        }
        if (s->hdr_got < 4) {
            s->hdr_got += (size_t)n;
            if (s->hdr_got < 4)
                continue;
            s->frame_len = (size_t)s->hdr[0] << 24 | (size_t)s->hdr[1] << 16 |
                           (size_t)s->hdr[2] << 8 | s->hdr[3];
            s->frame_got = 0;
            s->frame = s->frame_len <= LIMIT_PY_REPLY_BYTES ? malloc(s->frame_len + 1) : NULL;
        } else {
            s->frame_got += (size_t)n;
        }
        if (s->frame_got == s->frame_len) {
            char *f = s->frame;
            s->frame = NULL;
            s->hdr_got = 0;
            if (f)
                on_frame(s, f, s->frame_len);
            else
                reply_too_large(s);
            free(f);
            if (s->rep_fd != fd)
                break;   /* closed by a protocol kill */
        }
    }
    session_rearm();
}

/* ---- interpreters ---- */

static int session_spawn(struct pysession *s)
{
    char python[4096];
    int p_out[2] = { -1, -1 }, p_err[2] = { -1, -1 }, p_cmd[2] = { -1, -1 },
        p_rep[2] = { -1, -1 };
    int rc;
    if (find_python(s->envp, python, sizeof python) < 0)
        return ENOENT;
    if (pipe2(p_out, O_CLOEXEC) < 0 || pipe2(p_err, O_CLOEXEC) < 0 ||
        pipe2(p_cmd, O_CLOEXEC) < 0 || pipe2(p_rep, O_CLOEXEC) < 0) {
        rc = errno;
        goto fail;
    }
    int *all[8] = { &p_out[0], &p_out[1], &p_err[0], &p_err[1],
                    &p_cmd[0], &p_cmd[1], &p_rep[0], &p_rep[1] };
    for (int i = 0; i < 8; i++)
        if ((*all[i] = fd_lift(*all[i])) < 0) {
            rc = errno;
            goto fail;
        }
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t none, every;
    sigemptyset(&none);
    sigfillset(&every);
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&attr);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, p_out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, p_err[1], 2);
    posix_spawn_file_actions_adddup2(&fa, p_cmd[0], 3);
    posix_spawn_file_actions_adddup2(&fa, p_rep[1], 4);
    posix_spawn_file_actions_addchdir_np(&fa, s->start_cwd);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK |
                                        POSIX_SPAWN_SETSIGDEF);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &every);
    char *argv[] = { python, "-u", "-c", (char *)boot, NULL };
    pid_t pid;
    rc = posix_spawn(&pid, python, &fa, &attr, argv, s->envp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (rc)
        goto fail;
    close(p_out[1]);
    close(p_err[1]);
    close(p_cmd[0]);
    close(p_rep[1]);
    s->pid = pid;
    s->out_fd = p_out[0];
    s->err_fd = p_err[0];
    s->cmd_fd = p_cmd[1];
    s->rep_fd = p_rep[0];
    fcntl(s->out_fd, F_SETFL, O_NONBLOCK);
    fcntl(s->err_fd, F_SETFL, O_NONBLOCK);
    fcntl(s->cmd_fd, F_SETFL, O_NONBLOCK);
    fcntl(s->rep_fd, F_SETFL, O_NONBLOCK);
    loop_add(s->out_fd, POLLIN, on_out, s);
    loop_add(s->err_fd, POLLIN, on_out, s);
    loop_add(s->rep_fd, POLLIN, on_rep, s);
    loop_add(s->cmd_fd, 0, on_cmd, s);
    s->state = PYS_STARTING;
    s->out.len = s->err.len = 0;
    s->out.total = s->err.total = 0;
    s->killing = K_NONE;
    s->exec_count = 0;
    s->hdr_got = 0;
    s->deadline_us = util_mono_us() + (int64_t)LIMIT_PY_START_MS * 1000;
    size_t len = (size_t)(pysession_driver_end - pysession_driver_src);
    unsigned char hdr[4] = { (unsigned char)(len >> 24), (unsigned char)(len >> 16),
                             (unsigned char)(len >> 8), (unsigned char)len };
    buf_reset(&s->wbuf);
    s->woff = 0;
    if (cmd_send(s, (const char *)hdr, 4) < 0 || cmd_send(s, pysession_driver_src, len) < 0) {
        s->killing = K_START;
        killpg(s->pid, SIGKILL);
    }
    return 0;

fail:
    for (int i = 0; i < 2; i++) {
        if (p_out[i] >= 0)
            close(p_out[i]);
        if (p_err[i] >= 0)
            close(p_err[i]);
        if (p_cmd[i] >= 0)
            close(p_cmd[i]);
        if (p_rep[i] >= 0)
            close(p_rep[i]);
    }
    return rc;
}

static void session_free(struct pysession *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        first = s->next;
    if (s->next)
        s->next->prev = s->prev;
    else
        last = s->prev;
    free(s->frame);
    buf_free(&s->wbuf);
    tail_free(&s->out);
    tail_free(&s->err);
    free(s->envp);
    free(s->start_cwd);
    free(s);
}

/* Kills the group and takes the session out of the id namespace; it is freed when reaped
 * (at once when it has no interpreter). */
static void session_close(struct pysession *s, enum pysession_outcome outcome)
{
    if (s->closing)
        return;
    s->closing = (int)outcome;
    nalive--;
    if (s->pid) {
        s->killing = K_CLOSE;
        killpg(s->pid, SIGKILL);
        return;
    }
    queue_fail(s, outcome, 0);
    session_free(s);
}

/* The interpreter of s was reaped with status. */
static void session_exited(struct pysession *s, int status)
{
    if (s->cur || s->state == PYS_STARTING)
        out_drain(s);
    fd_close(&s->out_fd);
    fd_close(&s->err_fd);
    fd_close(&s->cmd_fd);
    fd_close(&s->rep_fd);
    free(s->frame);
    s->frame = NULL;
    s->pid = 0;
    s->deadline_us = 0;
    enum pysession_state was = s->state;
    enum kill_cause cause = s->killing;
    s->state = PYS_DEAD;
    s->killing = K_NONE;
    if (s->closing) {
        if (s->cur)
            call_answer(s, s->cur, (enum pysession_outcome)s->closing, NULL, 0, NULL, status);
        queue_fail(s, (enum pysession_outcome)s->closing, status);
        session_free(s);
        return;
    }
    if (was == PYS_STARTING || cause == K_START) {
        /* no respawn loop: what is waiting fails, the next new call tries again */
        if (s->cur)
            call_answer(s, s->cur, PYS_START_FAILED, NULL, 0, NULL, status);
        queue_fail(s, PYS_START_FAILED, status);
        return;
    }
    if (s->cur) {
        enum pysession_outcome o = cause == K_TIMEOUT ? PYS_RESTARTED
                                   : cause == K_PROTOCOL ? PYS_PROTOCOL : PYS_DIED;
        call_answer(s, s->cur, o, NULL, 0, NULL, status);
    }
    /* a timeout restart says so in its own answer; any other death in the next call's */
    s->restart_reason = cause == K_TIMEOUT ? NULL : "died";
    if (cause == K_TIMEOUT || s->head) {   /* warm again for what comes next */
        int rc = session_spawn(s);
        if (rc)
            queue_fail(s, PYS_START_FAILED, 0);
    }
}

static int claim(pid_t pid, int status)
{
    for (struct pysession *s = first; s; s = s->next)
        if (s->pid == pid) {
            session_exited(s, status);
            session_rearm();
            return 1;
        }
    return 0;
}

/* ---- deadlines ---- */

static int64_t session_deadline(const struct pysession *s)
{
    if (s->closing)
        return 0;
    if (s->deadline_us)
        return s->deadline_us;
    if ((s->state == PYS_IDLE || s->state == PYS_DEAD) && !s->head && lim.idle_us > 0)
        return s->last_used_us + lim.idle_us;
    return 0;
}

static void session_rearm(void)
{
    int64_t next = 0;
    for (struct pysession *s = first; s; s = s->next) {
        int64_t d = session_deadline(s);
        if (d && (!next || d < next))
            next = d;
    }
    struct itimerspec its = { 0 };
    if (next) {
        if (next < 1)
            next = 1;
        its.it_value.tv_sec = next / 1000000;
        its.it_value.tv_nsec = (long)(next % 1000000) * 1000;
    }
    timerfd_settime(timer_fd, TFD_TIMER_ABSTIME, &its, NULL);
}

static void on_timer(void *ctx, int fd, short revents)
{
    (void)ctx, (void)revents;
    uint64_t ticks;
    while (read(fd, &ticks, sizeof ticks) < 0 && errno == EINTR)
        ;
    int64_t now = util_mono_us();
    for (struct pysession *s = first, *next; s; s = next) {
        next = s->next;   /* an expired dead session is freed at once */
        int64_t d = session_deadline(s);
        if (!d || d > now)
            continue;
        if (s->state == PYS_STARTING) {
            s->killing = K_START;
            s->deadline_us = 0;
            killpg(s->pid, SIGKILL);
        } else if (s->state == PYS_BUSY && !s->interrupted) {
            s->interrupted = 1;   /* KeyboardInterrupt in the code, and in its children */
            killpg(s->pid, SIGINT);
            s->deadline_us = now + lim.grace_us;
        } else if (s->state == PYS_BUSY) {
            s->killing = K_TIMEOUT;
            s->deadline_us = 0;
            killpg(s->pid, SIGKILL);
        } else if (s->state == PYS_IDLE || s->state == PYS_DEAD) {
            session_close(s, PYS_DELETED);   /* idle expiry */
        } else {
            s->deadline_us = 0;
        }
    }
    session_rearm();
}

/* ---- API ---- */

void pysession_init(const struct pysession_limits *l)
{
    lim = *l;
    if (lim.max_sessions < 1)
        lim.max_sessions = 1;
    if (lim.max_sessions > PYSESSION_MAX)
        lim.max_sessions = PYSESSION_MAX;
    timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (timer_fd >= 0)
        loop_add(timer_fd, POLLIN, on_timer, NULL);
    proc_claim_children(claim);
}

/* The call's frame: {"code", "env"?, "cwd"?} with its length in front. */
static struct pycall *call_new(const struct pysession_call *c)
{
    struct pycall *call = calloc(1, sizeof *call);
    if (!call)
        return NULL;
    struct buf b;
    buf_init(&b, LIMIT_PY_FRAME_BYTES);
    buf_append(&b, "\0\0\0\0", 4);
    buf_putc(&b, '{');
    json_put_key(&b, "code");
    json_put_str(&b, c->code, c->code_len);
    if (c->env && c->env[0]) {
        json_put_key(&b, "env");
        buf_putc(&b, '{');
        for (char *const *e = c->env; *e; e++) {
            const char *eq = strchr(*e, '=');
            if (!eq)
                continue;
            json_sep(&b);
            json_put_str(&b, *e, (size_t)(eq - *e));
            buf_putc(&b, ':');
            json_put_cstr(&b, eq + 1);
        }
        buf_putc(&b, '}');
    }
    if (c->cwd) {
        json_put_key(&b, "cwd");
        json_put_cstr(&b, c->cwd);
    }
    buf_putc(&b, '}');
    if (b.failed) {
        buf_free(&b);
        free(call);
        return NULL;
    }
    size_t n = b.len - 4;
    b.data[0] = (char)(n >> 24);
    b.data[1] = (char)(n >> 16);
    b.data[2] = (char)(n >> 8);
    b.data[3] = (char)n;
    call->frame = b.data;
    call->frame_len = b.len;
    call->timeout_us = c->timeout_ms * 1000;
    return call;
}

/* A new session record (not yet started), or NULL (errno). The environment gets the
 * driver's matplotlib backend unless the caller chose one. */
static struct pysession *session_new(const struct pysession_call *c)
{
    struct pysession *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    size_t n = 0;
    int has_mpl = 0;
    for (; c->envp[n]; n++)
        has_mpl |= !strncmp(c->envp[n], "MPLBACKEND=", 11);
    char **env = malloc((n + 2) * sizeof *env);
    if (env) {
        memcpy(env, c->envp, n * sizeof *env);
        env[n] = has_mpl ? NULL : MPLBACKEND;
        env[n + 1] = NULL;
        s->envp = util_strv_dup(env, n + !has_mpl);
        free(env);
    }
    s->start_cwd = strdup(c->start_cwd);
    if (!s->envp || !s->start_cwd) {
        free(s->envp);
        free(s->start_cwd);
        free(s);
        errno = ENOMEM;
        return NULL;
    }
    memcpy(s->id, c->session, c->session_len);
    char hex[33];
    util_random_hex(hex, 32);   /* shown as a UUID: 8-4-4-4-12 */
    snprintf(s->kernel_id, sizeof s->kernel_id, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8,
             hex + 12, hex + 16, hex + 20);
    s->cmd_fd = s->rep_fd = s->out_fd = s->err_fd = -1;
    s->state = PYS_DEAD;
    buf_init(&s->wbuf, LIMIT_PY_FRAME_BYTES + 4096);
    s->created_ms = s->last_used_ms = util_wall_ms();
    s->last_used_us = util_mono_us();
    return s;
}

/* A session_new that was never linked in. */
static void session_discard(struct pysession *s)
{
    buf_free(&s->wbuf);
    free(s->envp);
    free(s->start_cwd);
    free(s);
}

int pysession_run(const struct pysession_call *c, pysession_done_fn *fn, void *ctx)
{
    if (stopping) {
        errno = ESHUTDOWN;
        return -1;
    }
    if (!id_ok(c->session, c->session_len)) {
        errno = EINVAL;
        return -1;
    }
    struct pysession *s = find(c->session, c->session_len);
    if (s && s->nqueued >= LIMIT_PY_QUEUE) {
        errno = EBUSY;
        return -1;
    }
    if (!s && nalive >= lim.max_sessions) {
        errno = EMFILE;
        return -1;
    }
    struct pycall *call = call_new(c);
    if (!call) {
        errno = ENOMEM;
        return -1;
    }
    call->fn = fn;
    call->ctx = ctx;
    int created = 0;
    if (!s) {
        s = session_new(c);
        if (!s) {
            call_free(call);
            return -1;
        }
        created = 1;
    }
    if (s->state == PYS_DEAD) {
        int rc = session_spawn(s);
        if (rc) {
            call_free(call);
            if (created)
                session_discard(s);
            errno = rc;
            return -1;
        }
    }
    if (created) {
        s->prev = last;
        if (last)
            last->next = s;
        else
            first = s;
        last = s;
        nalive++;
    }
    if (s->tail_call)
        s->tail_call->next = call;
    else
        s->head = call;
    s->tail_call = call;
    s->nqueued++;
    dispatch(s);
    session_rearm();
    return 0;
}

size_t pysession_list(struct pysession_info *out, size_t max)
{
    size_t n = 0;
    for (struct pysession *s = first; s && n < max; s = s->next) {
        if (s->closing)
            continue;
        struct pysession_info *i = &out[n++];
        memcpy(i->id, s->id, sizeof i->id);
        memcpy(i->kernel_id, s->kernel_id, sizeof i->kernel_id);
        i->state = s->state;
        i->pid = s->pid;
        i->created_ms = s->created_ms;
        i->last_used_ms = s->last_used_ms;
        i->execution_count = s->exec_count;
        i->queued = s->nqueued;
        i->ipython = s->ipython;
    }
    return n;
}

int pysession_delete(const char *id, size_t len)
{
    struct pysession *s = find(id, len);
    if (!s) {
        errno = ENOENT;
        return -1;
    }
    session_close(s, PYS_DELETED);
    session_rearm();
    return 0;
}

void pysession_shutdown(void)
{
    stopping = 1;
    for (struct pysession *s = first; s;) {
        struct pysession *next = s->next;
        session_close(s, PYS_SHUTDOWN);
        s = next;
    }
    session_rearm();
}
