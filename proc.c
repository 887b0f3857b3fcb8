#include "proc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "limits.h"
#include "loop.h"
#include "util.h"

/* The record's life, every (state, event) pair decided:
 *
 *   state \ event  slot free     exit (reaped)   deadline          kill request     forget/evict
 *   queued         spawn:        -               - (timer starts   finished,        refused (409) /
 *                  running, or   (no pid yet)    at spawn)         reason killed    never evicted
 *                  finished with
 *                  spawn_error
 *   running        -             finished:       timeout: TERM     TERM (or sig) to refused (409) /
 *                                exit/signal/    group, reason     group, reason    never evicted
 *                                timeout/killed  timeout; after    killed; KILL
 *                                                grace: KILL group after grace
 *   finished       -             -               -                 refused (404)    removed
 *
 * Shutdown is a kill request to every queued and running record. */

#define DRAIN_AT_EXIT   (1u << 20)  /* bytes read from a pipe after its writer was reaped */
#define RING_MIN        4096        /* first allocation of an output ring */
#define RING_SLACK      1024        /* unused ring bytes worth a copy when a process ends */

struct proc_spawn {
    char *path;
    char **argv;
    char **envp;
    char *cwd;
};

static struct proc_limits lim;
static struct proc *head, *tail;
static struct proc **live;        /* running records, dense, for the deadline scan */
static long nlive;
/* records in PROC_QUEUED: start_queued walks the list only when some wait (the walk is
 * O(records) and ran on every SIGCHLD: ~10% of the agent's CPU per /commands/run) */
static long nqueued;
static struct proc_counts counts;
static proc_event_fn *observers[PROC_OBSERVERS];
static proc_claim_fn *claimer;    /* children of other modules (proc_claim_children) */

static void proc_finish(struct proc *p);

/* ---- small helpers ---- */

static void notify(const struct proc *p, enum proc_event ev, int sig)
{
    for (int i = 0; i < PROC_OBSERVERS && observers[i]; i++)
        observers[i](p, ev, sig);
}

static char **strv_dup(char *const *v)
{
    size_t n = 0;
    while (v[n])
        n++;
    return util_strv_dup(v, n);
}

static char *str_dup(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void spawn_free(struct proc_spawn *s)
{
    if (!s)
        return;
    free(s->path);
    free(s->argv);
    free(s->envp);
    free(s->cwd);
    free(s);
}

static void ring_free(struct proc_ring *r)
{
    counts.output_bytes -= r->cap;
    free(r->data);
    memset(r, 0, sizeof *r);
}

/* A finished stream never grows again: keep just its bytes, oldest first. Otherwise every
 * record with a line of output holds RING_MIN for its life (most of a kept record's
 * memory). When short of memory the ring stays as it is. */
static void ring_shrink(struct proc_ring *r)
{
    if (r->cap - r->len < RING_SLACK)
        return;
    char *nd = NULL;
    if (r->len) {
        nd = malloc(r->len);
        if (!nd)
            return;
        size_t first = r->cap - r->head < r->len ? r->cap - r->head : r->len;
        memcpy(nd, r->data + r->head, first);
        memcpy(nd + first, r->data, r->len - first);
    }
    free(r->data);
    counts.output_bytes -= r->cap - r->len;
    r->data = nd;
    r->cap = r->len;
    r->head = 0;
}

/* Keeps the last output_limit bytes. Grows geometrically up to the limit, then overwrites
 * the oldest bytes; when memory is short it keeps counting and drops instead. */
static void ring_write(struct proc_ring *r, const char *data, size_t n)
{
    size_t limit = lim.output_limit;
    r->total += n;
    if (limit == 0)
        return;
    if (n > limit) {
        data += n - limit;
        n = limit;
    }
    if (r->len + n > r->cap && r->cap < limit) {
        size_t cap = r->cap ? r->cap * 2 : RING_MIN;
        while (cap < r->len + n)
            cap *= 2;
        if (cap > limit)
            cap = limit;
        char *nd = malloc(cap);
        if (nd) {
            /* linearize: the oldest byte goes to index 0 */
            size_t first = r->cap - r->head < r->len ? r->cap - r->head : r->len;
            if (r->len) {
                memcpy(nd, r->data + r->head, first);
                memcpy(nd + first, r->data, r->len - first);
            }
            free(r->data);
            counts.output_bytes += cap - r->cap;
            r->data = nd;
            r->cap = cap;
            r->head = 0;
        }
    }
    if (r->cap == 0)
        return;
    if (n > r->cap) {
        data += n - r->cap;
        n = r->cap;
    }
    if (r->len + n > r->cap) {   /* drop the oldest */
        size_t drop = r->len + n - r->cap;
        r->head = (r->head + drop) % r->cap;
        r->len -= drop;
    }
    size_t at = (r->head + r->len) % r->cap;
    size_t first = r->cap - at < n ? r->cap - at : n;
    memcpy(r->data + at, data, first);
    memcpy(r->data, data + first, n - first);
    r->len += n;
}

/* n bytes were read in place at the ring's write position: take them in, dropping the
 * oldest ones they overwrote. */
static void ring_commit(struct proc_ring *r, size_t n)
{
    r->total += (uint64_t)n;
    if (r->len + n > r->cap) {
        r->head = (r->head + r->len + n - r->cap) % r->cap;
        r->len = r->cap;
    } else {
        r->len += n;
    }
}

/* Reads what the pipe has (at most `budget` bytes). Returns 0 at EOF or error, 1 if open.
 * A short read means the pipe is empty: no read() is spent to hear EAGAIN (a third of the
 * syscalls while a child streams output). */
static int pipe_drain(int fd, struct proc_ring *r, size_t budget)
{
    char chunk[LIMIT_PIPE_READ];
    while (budget > 0) {
        size_t want = sizeof chunk < budget ? sizeof chunk : budget;
        /* A ring at its full size is read into directly, at the write position (over free
         * bytes, then the oldest ones, in order): a chatty child's bytes are copied once,
         * not twice (1 GB of output spent ~20% of its time in that second copy). */
        int direct = r->cap && r->cap == lim.output_limit;
        size_t at = direct ? (r->head + r->len) % r->cap : 0;
        if (direct && want > r->cap - at)
            want = r->cap - at;
        ssize_t n = read(fd, direct ? r->data + at : chunk, want);
        if (n > 0) {
            if (direct)
                ring_commit(r, (size_t)n);
            else
                ring_write(r, chunk, (size_t)n);
            budget -= (size_t)n;
            if ((size_t)n < want)
                return 1;   /* short: the pipe is empty */
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
    }
    return 1;
}

/* A terminal's master gives at most a few KiB per read (one line discipline buffer), so
 * a short read does not mean it is empty: at exit it is read until it says so (EAGAIN, or
 * EIO once the last user of the terminal closed it), up to DRAIN_AT_EXIT. */
static void pty_drain(int fd, struct proc_ring *r)
{
    uint64_t start = r->total, before;
    do {
        before = r->total;
        if (!pipe_drain(fd, r, DRAIN_AT_EXIT))
            return;
    } while (r->total != before && r->total - start < DRAIN_AT_EXIT);
}

static void pipe_close(int *fd)
{
    if (*fd >= 0) {
        loop_del(*fd);
        close(*fd);
        *fd = -1;
    }
}

/* POLLIN/POLLHUP on a child's pipe: read one round's worth, so one chatty child cannot
 * starve the loop; close at EOF. The record's exit comes from waitpid, not from here. */
static void on_pipe(void *ctx, int fd, short revents)
{
    struct proc *p = ctx;
    (void)revents;
    int is_out = fd == p->out_fd;
    struct proc_ring *r = is_out ? &p->out : &p->err;
    uint64_t before = r->total;
    if (!pipe_drain(fd, r, LIMIT_PIPE_READ))
        pipe_close(is_out ? &p->out_fd : &p->err_fd);
    if (r->total != before)
        notify(p, PROC_EV_OUTPUT, is_out ? 1 : 2);
}

static void live_add(struct proc *p)
{
    p->live_idx = (int)nlive;
    live[nlive++] = p;
}

static void live_del(struct proc *p)
{
    live[p->live_idx] = live[--nlive];
    live[p->live_idx]->live_idx = p->live_idx;
    p->live_idx = -1;
}

/* ---- stdin ---- */

static void stdin_flush(struct proc *p);

static void on_stdin(void *ctx, int fd, short revents)
{
    struct proc *p = ctx;
    (void)fd, (void)revents;   /* POLLERR/POLLHUP show up as the write's EPIPE/EIO */
    stdin_flush(p);
}

static void inq_free(struct proc *p)
{
    free(p->inq);
    p->inq = NULL;
    p->inq_off = p->inq_cap = p->stdin_pending = 0;
}

/* Appends to the pending queue, compacting or growing it. Returns 0 or -1 (ENOMEM). */
static int inq_add(struct proc *p, const char *data, size_t n)
{
    if (p->inq_off + p->stdin_pending + n > p->inq_cap) {
        if (p->stdin_pending + n > p->inq_cap) {
            size_t cap = p->inq_cap ? p->inq_cap : 4096;
            while (cap < p->stdin_pending + n)
                cap *= 2;
            char *nq = malloc(cap);
            if (!nq)
                return -1;
            if (p->stdin_pending)
                memcpy(nq, p->inq + p->inq_off, p->stdin_pending);
            free(p->inq);
            p->inq = nq;
            p->inq_cap = cap;
        } else {
            memmove(p->inq, p->inq + p->inq_off, p->stdin_pending);
        }
        p->inq_off = 0;
    }
    memcpy(p->inq + p->inq_off + p->stdin_pending, data, n);
    p->stdin_pending += n;
    if (n)
        p->in_last = data[n - 1];
    return 0;
}

/* Queues a terminal's end of file: its VEOF character (^D unless the child changed it),
 * twice after an unfinished line, since the first one only hands that line over. */
static int stdin_veof(struct proc *p)
{
    struct termios tio;
    char eof[2] = { 4, 4 };
    if (p->in_fd >= 0 && tcgetattr(p->in_fd, &tio) == 0 && tio.c_cc[VEOF] != _POSIX_VDISABLE)
        eof[0] = eof[1] = (char)tio.c_cc[VEOF];
    int line_start = p->in_last == 0 || p->in_last == '\n' || p->in_last == '\r';
    return inq_add(p, eof, line_start ? 1 : 2);
}

static void stdin_unpoll(struct proc *p)
{
    if (p->in_polled) {
        loop_del(p->in_fd);
        p->in_polled = 0;
    }
}

/* The queue is empty and a close was asked for: a pipe closes (the child reads EOF); a
 * terminal keeps its master (closing it would hang the terminal up: SIGHUP, not EOF). */
static void stdin_eof(struct proc *p)
{
    stdin_unpoll(p);
    if (!p->pty && p->in_fd >= 0) {
        close(p->in_fd);
        p->in_fd = -1;
    }
}

/* Writes what the pipe or terminal takes now; the rest waits for POLLOUT. The descriptor
 * is watched only while bytes are pending: an idle pipe whose reader left would report
 * POLLERR every round. A reader that went away (EPIPE; EIO once the terminal's last user
 * closed it) drops the queue and closes stdin. */
static void stdin_flush(struct proc *p)
{
    while (p->stdin_pending && p->in_fd >= 0) {
        ssize_t w = write(p->in_fd, p->inq + p->inq_off, p->stdin_pending);
        if (w > 0) {
            p->inq_off += (size_t)w;
            p->stdin_pending -= (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        inq_free(p);
        p->stdin_closed = 1;
        stdin_eof(p);
        return;
    }
    if (p->in_fd < 0)
        return;
    if (p->stdin_pending) {
        if (!p->in_polled && loop_add(p->in_fd, POLLOUT, on_stdin, p) == 0)
            p->in_polled = 1;
        return;
    }
    inq_free(p);   /* idle terminals and pipes hold no queue memory */
    if (p->stdin_closed)
        stdin_eof(p);
    else
        stdin_unpoll(p);
}

/* ---- spawning ---- */

/* A new pseudo-terminal's master (non-blocking, close-on-exec) sized cols x rows, and its
 * slave's path. Returns the fd, or -1 with errno. */
static int pty_open(unsigned short cols, unsigned short rows, char *slave, size_t slave_len)
{
    int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
    unsigned n;
    if (m < 0)
        return -1;
    struct winsize ws = { .ws_row = rows, .ws_col = cols };
    if (grantpt(m) < 0 || unlockpt(m) < 0 || ioctl(m, TIOCGPTN, &n) < 0 ||
        ioctl(m, TIOCSWINSZ, &ws) < 0) {
        int e = errno;
        close(m);
        errno = e;
        return -1;
    }
    snprintf(slave, slave_len, "/dev/pts/%u", n);
    return m;
}

/* Process control: the child is born in the record's own cgroup, created here. Without
 * cgroup v2, or when creating one fails and no limits were asked for, the record has its
 * process group only. Returns 0 or an errno for the spawn. */
static int cgroup_spawn_make(struct proc *p)
{
    const struct cgroup_limits *l = &p->limits;
    int limited = l->memory_bytes || l->pids || l->cpu_percent;
    if (!cgroup_enabled())
        return limited ? ENOTSUP : 0;
    p->cg_fd = cgroup_create(l, p->cg_name);
    return p->cg_fd >= 0 || !limited ? 0 : errno;
}

/* Where clone3 cannot create the child straight into its cgroup, the agent steps into the
 * cgroup around posix_spawn instead. */
static int cgroup_spawn_enter(struct proc *p)
{
    const struct cgroup_limits *l = &p->limits;
    int limited = l->memory_bytes || l->pids || l->cpu_percent;
    if (p->cg_fd < 0 || cgroup_enter(p->cg_fd) == 0)
        return 0;
    int e = errno;
    cgroup_remove(p->cg_fd, p->cg_name);
    p->cg_fd = -1;
    p->cg_name[0] = 0;
    return limited ? e : 0;
}

static void cgroup_spawn_leave(struct proc *p, int rc)
{
    if (p->cg_fd < 0)
        return;
    cgroup_leave(p->cg_fd, &p->limits);
    if (rc != 0) {
        cgroup_remove(p->cg_fd, p->cg_name);
        p->cg_fd = -1;
        p->cg_name[0] = 0;
    }
}

/* The end of the record's cgroup: why it ended (OOM), its memory peak, then removal (kept
 * for a later try while processes it left behind still run). */
static void cgroup_finish(struct proc *p)
{
    if (p->cg_fd < 0)
        return;
    if (cgroup_oom_killed(p->cg_fd) && p->reason != PROC_R_TIMEOUT && p->reason != PROC_R_KILLED) {
        p->reason = PROC_R_OOM;
        if (p->exit_code == 0)
            p->exit_code = 128 + SIGKILL;
    }
    p->memory_peak_bytes = cgroup_memory_peak(p->cg_fd);
    cgroup_remove(p->cg_fd, p->cg_name);   /* cg_name stays: the record tells where it ran */
    p->cg_fd = -1;
}

/* ---- clone3 straight into the record's cgroup (Linux 5.7+) ----
 * clone3 with CLONE_INTO_CGROUP creates the child in its cgroup from its first
 * instruction, so the agent never leaves its own. CLONE_VFORK without CLONE_VM: the child
 * runs on its own copy of the agent's memory (fork semantics, so any libc call is safe in
 * it and no separate stack or assembly is needed) while the agent waits until it has
 * exec'd or exited, as with posix_spawn. The child does what posix_spawn's attributes and
 * file actions do in spawn_child, in the same order; exec failure comes back as its errno
 * over a close-on-exec pipe, as musl's posix_spawn reports it. */
struct clone3_args {   /* struct clone_args, version 2 (with cgroup); linux/sched.h */
    uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls,
        set_tid, set_tid_size, cgroup;
};
#define CLONE3_VFORK       0x4000ULL          /* CLONE_VFORK */
#define CLONE3_INTO_CGROUP 0x200000000ULL     /* CLONE_INTO_CGROUP */
#ifndef SYS_clone3
#define SYS_clone3 435
#endif

/* The signals a child gets reset to their default action. Exec itself resets caught
 * signals; only ignored ones survive it, and the agent ignores SIGPIPE (agent.c undoes every
 * ignore it inherited before proc_init, which records what is ignored then). Resetting all
 * 64 cost the child 64 sigaction calls, made while the loop waits for its exec. */
static sigset_t sigdef;

static int clone3_usable = 1;   /* 0 once the kernel said it has no clone3 into a cgroup */

/* What goes on the child's 0, 1, 2: a terminal's slave (by path), or pipe ends
 * (in < 0: /dev/null). */
struct child_stdio {
    const char *slave;
    int in, out, err;
};

static int child_stdio(const struct child_stdio *io)
{
    if (io->slave || io->in < 0) {
        int fd = open(io->slave ? io->slave : "/dev/null", io->slave ? O_RDWR : O_RDONLY);
        if (fd < 0)
            return -1;
        if (fd != 0 && (dup2(fd, 0) < 0 || close(fd) < 0))
            return -1;
    } else if (dup2(io->in, 0) < 0) {
        return -1;
    }
    if (io->slave)
        return dup2(0, 1) < 0 || dup2(0, 2) < 0 ? -1 : 0;
    return dup2(io->out, 1) < 0 || dup2(io->err, 2) < 0 ? -1 : 0;
}

static _Noreturn void child_exec(const struct proc_spawn *s, const struct child_stdio *io,
                                 int errfd)
{
    struct sigaction dfl;
    sigset_t none;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&none);
    if (setsid() >= 0) {
        for (int i = 1; i < _NSIG; i++)
            if (sigismember(&sigdef, i) == 1)
                sigaction(i, &dfl, NULL);
        if (child_stdio(io) == 0 && chdir(s->cwd) == 0) {
            sigprocmask(SIG_SETMASK, &none, NULL);
            execve(s->path, s->argv, s->envp);
        }
    }
    int e = errno;
    while (write(errfd, &e, sizeof e) < 0 && errno == EINTR)
        ;
    _exit(127);
}

/* Returns 0 with p->pid set, an errno for the spawn, or -1 when this kernel cannot do it
 * (the caller falls back to posix_spawn). */
static int spawn_clone3(struct proc *p, const struct child_stdio *io)
{
    int ep[2];
    if (pipe2(ep, O_CLOEXEC) < 0)
        return errno;
    if (cgroup_pids_room(p->cg_fd, &p->limits, 0) < 0) {   /* no agent to make room for */
        int e = errno;
        close(ep[0]);
        close(ep[1]);
        return e;
    }
    struct clone3_args a;
    memset(&a, 0, sizeof a);
    a.flags = CLONE3_VFORK | CLONE3_INTO_CGROUP;
    a.exit_signal = SIGCHLD;
    a.cgroup = (uint64_t)p->cg_fd;
    long pid = syscall(SYS_clone3, &a, sizeof a);
    if (pid == 0)
        child_exec(p->spawn, io, ep[1]);
    int e = errno;
    close(ep[1]);
    if (pid < 0) {
        close(ep[0]);
        if (e == ENOSYS || e == E2BIG || e == EINVAL) {   /* before 5.3 / 5.7 */
            clone3_usable = 0;
            cgroup_pids_room(p->cg_fd, &p->limits, 1);   /* posix_spawn's way again */
            return -1;
        }
        return e;
    }
    ssize_t n;
    while ((n = read(ep[0], &e, sizeof e)) < 0 && errno == EINTR)
        ;   /* the child has exec'd (EOF) or written why not and exited: never blocks */
    close(ep[0]);
    if (n == (ssize_t)sizeof e) {
        while (waitpid((pid_t)pid, NULL, 0) < 0 && errno == EINTR)
            ;
        return e;
    }
    p->pid = (pid_t)pid;
    return 0;
}

/* Child side per the libuv protocol, done by posix_spawn (musl: CLONE_VFORK and an
 * internal error pipe, so exec failure is returned here before we answer): own session
 * and process group, default dispositions, empty mask, stdin /dev/null (or a pipe),
 * stdout/stderr on the pipes, cwd applied; every other descriptor of ours is
 * close-on-exec.
 * On a terminal, stdin/stdout/stderr are its slave, opened by path in the child. That open
 * makes it the controlling terminal: posix_spawn does setsid before the file actions (musl
 * and glibc alike), and a session leader without one that opens a terminal without
 * O_NOCTTY acquires it (Linux tty_open, the effect of TIOCSCTTY), so Ctrl-C, job control
 * and SIGWINCH reach the foreground job. */
static int spawn_child(struct proc *p)
{
    struct proc_spawn *s = p->spawn;
    int out[2] = { -1, -1 }, err[2] = { -1, -1 }, in[2] = { -1, -1 }, in_fd = -1;
    char slave[32];
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t none;
    int rc;

    if (p->pty) {
        out[0] = pty_open(p->cols, p->rows, slave, sizeof slave);
        if (out[0] < 0 || (in_fd = fcntl(out[0], F_DUPFD_CLOEXEC, 0)) < 0) {
            rc = errno;
            goto fail_pipes;
        }
    } else if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0 ||
               (p->stdin_mode != PROC_STDIN_NULL && pipe2(in, O_CLOEXEC) < 0)) {
        rc = errno;
        goto fail_pipes;
    }
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&attr);
    sigemptyset(&none);
    if (p->pty) {
        posix_spawn_file_actions_addopen(&fa, 0, slave, O_RDWR, 0);
        posix_spawn_file_actions_adddup2(&fa, 0, 1);
        posix_spawn_file_actions_adddup2(&fa, 0, 2);
    } else {
        if (in[0] >= 0)
            posix_spawn_file_actions_adddup2(&fa, in[0], 0);
        else
            posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
        posix_spawn_file_actions_adddup2(&fa, out[1], 1);
        posix_spawn_file_actions_adddup2(&fa, err[1], 2);
    }
    posix_spawn_file_actions_addchdir_np(&fa, s->cwd);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK |
                                        POSIX_SPAWN_SETSIGDEF);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &sigdef);
    rc = cgroup_spawn_make(p);
    if (rc == 0 && p->cg_fd >= 0 && clone3_usable) {
        struct child_stdio io = { p->pty ? slave : NULL, in[0], out[1], err[1] };
        rc = spawn_clone3(p, &io);
        if (rc > 0) {   /* nothing started: the cgroup goes */
            cgroup_remove(p->cg_fd, p->cg_name);
            p->cg_fd = -1;
            p->cg_name[0] = 0;
        }
    } else if (rc == 0) {
        rc = -1;
    }
    if (rc < 0) {   /* no cgroup, or no clone3 into one */
        rc = cgroup_spawn_enter(p);
        if (rc == 0)
            rc = posix_spawn(&p->pid, s->path, &fa, &attr, s->argv, s->envp);
        cgroup_spawn_leave(p, rc);
    }
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (p->pty) {
        if (rc != 0)
            goto fail_pipes;
    } else {
        close(out[1]);
        close(err[1]);
        if (in[0] >= 0)
            close(in[0]);
        out[1] = err[1] = in[0] = -1;
        in_fd = in[1];
        if (rc != 0)
            goto fail_pipes;
        fcntl(out[0], F_SETFL, O_NONBLOCK);
        fcntl(err[0], F_SETFL, O_NONBLOCK);
        if (in_fd >= 0)
            fcntl(in_fd, F_SETFL, O_NONBLOCK);
    }
    p->out_fd = out[0];
    p->err_fd = err[0];
    loop_add(p->out_fd, POLLIN, on_pipe, p);
    if (p->err_fd >= 0)
        loop_add(p->err_fd, POLLIN, on_pipe, p);
    p->in_fd = in_fd;
    if (in_fd >= 0)
        stdin_flush(p);   /* what was queued before the start, and a close asked for */
    return 0;

fail_pipes:
    p->pid = 0;
    if (in_fd >= 0 && in_fd != in[1])
        close(in_fd);
    for (int i = 0; i < 2; i++) {
        if (out[i] >= 0)
            close(out[i]);
        if (err[i] >= 0)
            close(err[i]);
        if (in[i] >= 0)
            close(in[i]);
    }
    return rc;
}

/* The spawn succeeded: the record is running and its timeout starts now. */
static void proc_mark_running(struct proc *p)
{
    spawn_free(p->spawn);
    p->spawn = NULL;
    p->state = PROC_RUNNING;
    p->started_ms = util_wall_ms();
    p->started_us = util_mono_us();
    p->deadline_us = p->timeout_ms ? p->started_us + p->timeout_ms * 1000 : 0;
    counts.started_total++;
    live_add(p);
    notify(p, PROC_EV_STARTED, 0);
}

/* queued -> running, or -> finished (spawn_error). */
static void proc_start(struct proc *p)
{
    int rc = spawn_child(p);
    if (rc == 0) {
        nqueued--;   /* a failed spawn leaves through proc_finish, which counts it */
        proc_mark_running(p);
        return;
    }
    p->spawn_errno = rc;
    p->reason = PROC_R_SPAWN_ERROR;
    p->exit_code = rc == ENOENT ? 127 : 126;   /* the shell's convention */
    proc_finish(p);
}

/* Oldest first, at most LIMIT_STARTS_PER_ROUND between two polls: each spawn holds the
 * loop until the child has exec'd, so a burst of queued starts (many slots freed in one
 * round) is spread over rounds with sockets served between them. proc_tick starts the
 * rest and renews the budget once a round. */
static int start_budget = LIMIT_STARTS_PER_ROUND;

static void start_queued(void)
{
    for (struct proc *p = head;
         p && nqueued > 0 && nlive < lim.max_running && start_budget > 0;) {
        struct proc *next = p->next;
        if (p->state == PROC_QUEUED) {
            proc_start(p);
            start_budget--;
        }
        p = next;
    }
}

/* 1 when queued records wait for a free slot that start_queued has not filled yet. */
static int starts_due(void)
{
    return nqueued > 0 && nlive < lim.max_running;
}

/* ---- records ---- */

static void record_free(struct proc *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else
        head = p->next;
    if (p->next)
        p->next->prev = p->prev;
    else
        tail = p->prev;
    ring_free(&p->out);
    ring_free(&p->err);
    inq_free(p);
    counts.cache_bytes -= p->cache_len;
    free(p->cache);
    spawn_free(p->spawn);
    free(p->code_path);
    free(p->name);
    free(p->command);
    free(p->language);
    free(p);
    counts.records--;
}

/* Oldest finished records go first while over max_records or the output budget. */
static void evict(void)
{
    struct proc *p = head;
    while (p && (counts.records > lim.max_records ||
                 counts.output_bytes + counts.cache_bytes > lim.output_budget)) {
        struct proc *next = p->next;
        if (p->state == PROC_FINISHED && !p->pins) {   /* pinned: a webhook reads it */
            if (p->reason == PROC_R_EXIT && p->exit_code == 0)
                counts.completed--;
            else
                counts.failed--;
            notify(p, PROC_EV_EVICTED, 0);
            record_free(p);
        }
        p = next;
    }
}

/* running/queued -> finished. Pipes are drained of what the exited child wrote (a
 * grandchild holding them open does not hold the record), then closed. */
static void proc_finish(struct proc *p)
{
    if (p->state == PROC_QUEUED)
        nqueued--;
    if (p->state == PROC_RUNNING) {
        live_del(p);
        if (p->out_fd >= 0 && p->pty)
            pty_drain(p->out_fd, &p->out);
        else if (p->out_fd >= 0)
            pipe_drain(p->out_fd, &p->out, DRAIN_AT_EXIT);
        if (p->err_fd >= 0)
            pipe_drain(p->err_fd, &p->err, DRAIN_AT_EXIT);
        pipe_close(&p->out_fd);
        pipe_close(&p->err_fd);
        ring_shrink(&p->out);
        ring_shrink(&p->err);
    }
    /* stdin: whatever the child did not take is dropped with its pipe or terminal */
    stdin_unpoll(p);
    if (p->in_fd >= 0)
        close(p->in_fd);
    p->in_fd = -1;
    p->stdin_closed = 1;
    inq_free(p);
    if (p->code_path) {
        unlink(p->code_path);
        free(p->code_path);
        p->code_path = NULL;
    }
    p->state = PROC_FINISHED;
    p->finished_ms = util_wall_ms();
    p->finished_us = util_mono_us();
    p->deadline_us = 0;
    if (p->reason == PROC_R_EXIT && p->exit_code == 0)
        counts.completed++;
    else
        counts.failed++;
    spawn_free(p->spawn);
    p->spawn = NULL;
    notify(p, PROC_EV_FINISHED, 0);
    if (p->on_finish) {
        proc_finish_fn *fn = p->on_finish;
        p->on_finish = NULL;
        fn(p, p->finish_ctx);
    }
}

static void make_id(char *out, const char *prefix)
{
    size_t n = strlen(prefix);
    memcpy(out, prefix, n);
    util_random_hex(out + n, 16);
}

/* ---- API ---- */

void proc_init(const struct proc_limits *limits)
{
    lim = *limits;
    if (lim.max_running < 1)
        lim.max_running = 1;
    live = calloc((size_t)lim.max_running, sizeof *live);
    sigemptyset(&sigdef);
    sigaddset(&sigdef, SIGPIPE);
    for (int i = 1; i < _NSIG; i++) {   /* libc's reserved ones: EINVAL, left out */
        struct sigaction o;
        if (sigaction(i, NULL, &o) == 0 && o.sa_handler == SIG_IGN)
            sigaddset(&sigdef, i);
    }
}

struct proc *proc_create(const struct proc_spec *spec)
{
    struct proc *p = calloc(1, sizeof *p);
    struct proc_spawn *s = calloc(1, sizeof *s);
    if (!p || !s)
        goto nomem;
    p->spawn = s;
    s->path = strdup(spec->path);
    s->argv = strv_dup(spec->argv);
    s->envp = strv_dup(spec->envp);
    s->cwd = strdup(spec->cwd);
    p->name = str_dup(spec->name);
    p->command = strdup(spec->command);
    p->language = str_dup(spec->language);
    p->code_path = str_dup(spec->code_path);
    if (!s->path || !s->argv || !s->envp || !s->cwd || !p->command ||
        (spec->name && !p->name) || (spec->language && !p->language) ||
        (spec->code_path && !p->code_path))
        goto nomem;
    make_id(p->id, "proc_");
    make_id(p->exec_id, "exec_");
    p->is_code = spec->language != NULL;
    p->timeout_ms = spec->timeout_ms;
    p->created_ms = util_wall_ms();
    p->out_fd = p->err_fd = p->in_fd = -1;
    p->live_idx = -1;
    p->cg_fd = -1;
    p->memory_peak_bytes = -1;
    if (spec->limits)
        p->limits = *spec->limits;
    p->state = PROC_QUEUED;
    p->pty = spec->pty;
    p->cols = spec->cols ? spec->cols : LIMIT_PTY_COLS_DEFAULT;
    p->rows = spec->rows ? spec->rows : LIMIT_PTY_ROWS_DEFAULT;
    /* a terminal always takes input: there is no /dev/null to give it */
    p->stdin_mode = spec->pty && spec->stdin_mode == PROC_STDIN_NULL ? PROC_STDIN_PIPE
                                                                     : spec->stdin_mode;
    if (spec->stdin_mode == PROC_STDIN_TEXT) {
        if (spec->stdin_len && inq_add(p, spec->stdin_text, spec->stdin_len) < 0)
            goto nomem;
        p->stdin_closed = 1;
        if (p->pty && stdin_veof(p) < 0)
            goto nomem;
    }
    if (nlive < lim.max_running && nqueued == 0) {   /* else behind the queue, in order */
        int rc = spawn_child(p);
        if (rc) {   /* nothing started: nothing kept (the caller removes its code file) */
            errno = rc;
            goto fail;
        }
        proc_mark_running(p);
    }
    p->prev = tail;
    if (tail)
        tail->next = p;
    else
        head = p;
    tail = p;
    counts.records++;
    nqueued += p->state == PROC_QUEUED;
    evict();
    return p;

nomem:
    errno = ENOMEM;
fail:
    spawn_free(s);
    if (p) {
        inq_free(p);
        free(p->name);
        free(p->command);
        free(p->language);
        free(p->code_path);
        free(p);
    }
    return NULL;
}

struct proc *proc_first(void)
{
    return head;
}

struct proc *proc_next(const struct proc *p)
{
    return p->next;
}

struct proc *proc_find(const char *id, size_t len)
{
    if (len != 21)
        return NULL;
    for (struct proc *p = head; p; p = p->next)
        if (memcmp(p->id, id, len) == 0)
            return p;
    return NULL;
}

/* Only these end a process when it does not handle them, so only they are a kill: marked on
 * the record and escalated to SIGKILL after the grace period. Any other signal (USR1, STOP,
 * HUP...) is delivered once and the process ends as it ends. */
int proc_signal_is_kill(int sig)
{
    return sig == SIGTERM || sig == SIGINT || sig == SIGQUIT || sig == SIGKILL;
}

int proc_kill(struct proc *p, int sig)
{
    if (p->state == PROC_FINISHED)
        return -1;
    if (p->state == PROC_QUEUED) {
        if (!proc_signal_is_kill(sig))
            return -2;   /* nothing runs to take it, and it does not end the record */
        p->reason = PROC_R_KILLED;
        p->exit_code = -1;   /* it never ran: no exit code */
        p->term_signal = 0;
        notify(p, PROC_EV_KILLED, 0);
        proc_finish(p);   /* no evict() here: callers walking the list keep their next */
        return 1;
    }
    if (!p->reaped)
        killpg(p->pid, sig);
    if (sig == SIGKILL && p->cg_fd >= 0)
        cgroup_kill(p->cg_fd);
    if (!proc_signal_is_kill(sig))
        return 0;
    if (p->killing != PROC_R_TIMEOUT)
        p->killing = PROC_R_KILLED;
    notify(p, PROC_EV_KILLED, sig);
    if (sig != SIGKILL)
        p->deadline_us = util_mono_us() + lim.grace_us;
    return 0;
}

int proc_forget(struct proc *p)
{
    if (p->state != PROC_FINISHED || p->pins)
        return -1;
    if (p->reason == PROC_R_EXIT && p->exit_code == 0)
        counts.completed--;
    else
        counts.failed--;
    notify(p, PROC_EV_EVICTED, 0);   /* readers holding p let go of it, as on eviction */
    record_free(p);
    return 0;
}

static void proc_exited(struct proc *p, int status)
{
    p->reaped = 1;   /* first: the pid may be recycled from now on */
    if (WIFSIGNALED(status)) {
        p->term_signal = WTERMSIG(status);
        p->exit_code = 128 + p->term_signal;
        p->reason = PROC_R_SIGNAL;
    } else {
        p->exit_code = WEXITSTATUS(status);
        p->reason = PROC_R_EXIT;
    }
    if (p->killing) {   /* the rest of its group got SIGKILL in proc_reap, before reaping */
        p->reason = (enum proc_reason)p->killing;
        if (p->killing == PROC_R_TIMEOUT)
            p->exit_code = 124;
    }
    cgroup_finish(p);
    proc_finish(p);
}

void proc_reap(void)
{
    for (;;) {
        /* Peek first (WNOWAIT): while the leader is an unreaped zombie its pid, and so its
         * process group id, cannot be reused, so a killed group's stragglers can still be
         * sent SIGKILL safely. Then reap; after that the pid is never signalled again. */
        siginfo_t si;
        si.si_pid = 0;
        if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) < 0) {
            if (errno == EINTR)
                continue;
            break;   /* ECHILD: no children at all */
        }
        if (si.si_pid == 0)
            break;   /* children, but none exited */
        pid_t pid = si.si_pid;
        struct proc *p = NULL;
        for (long i = 0; i < nlive; i++)
            if (live[i]->pid == pid) {
                p = live[i];
                break;
            }
        if (p && p->killing) {
            killpg(pid, SIGKILL);
            if (p->cg_fd >= 0)   /* setsid children too: nothing in it escapes */
                cgroup_kill(p->cg_fd);
        }
        int status;
        struct rusage ru;
        while (wait4(pid, &status, 0, &ru) < 0 && errno == EINTR)
            ;   /* it has exited: this does not block */
        if (p) {
            p->have_usage = 1;
            p->user_cpu_s = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6;
            p->system_cpu_s = (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
            p->max_rss_kb = ru.ru_maxrss;
            proc_exited(p, status);
        } else if (!claimer || !claimer(pid, status)) {
            counts.orphans_reaped++;
        }
    }
    start_queued();
    evict();
}

void proc_claim_children(proc_claim_fn *fn)
{
    claimer = fn;
}

int64_t proc_tick(int64_t now)
{
    int64_t next = -1;
    if (starts_due()) {   /* the rest of a burst, in what is left of this round's budget */
        start_queued();
        evict();
    }
    start_budget = LIMIT_STARTS_PER_ROUND;   /* for the round this tick precedes */
    if (starts_due())
        next = now;
    for (long i = 0; i < nlive; i++) {
        struct proc *p = live[i];
        if (!p->deadline_us)
            continue;
        if (p->deadline_us <= now) {
            if (!p->killing) {   /* timeout: TERM, then KILL after grace */
                p->killing = PROC_R_TIMEOUT;
                killpg(p->pid, SIGTERM);
                p->deadline_us = now + lim.grace_us;
            } else {             /* grace over */
                killpg(p->pid, SIGKILL);
                if (p->cg_fd >= 0)
                    cgroup_kill(p->cg_fd);
                p->deadline_us = 0;
                continue;
            }
        }
        if (next < 0 || p->deadline_us < next)
            next = p->deadline_us;
    }
    int64_t cg = cgroup_idle(now);   /* cgroup upkeep, one step per loop round */
    if (cg >= 0 && (next < 0 || cg < next))
        next = cg;
    return next;
}

void proc_shutdown(void)
{
    for (struct proc *p = head; p;) {
        struct proc *next = p->next;
        if (p->state != PROC_FINISHED)
            proc_kill(p, SIGTERM);
        p = next;
    }
}

int proc_stdin_write(struct proc *p, const char *data, size_t n)
{
    if (p->stdin_mode == PROC_STDIN_NULL) {
        errno = EBADF;
        return -1;
    }
    if (p->stdin_closed || p->state == PROC_FINISHED) {
        errno = EPIPE;
        return -1;
    }
    if (n > LIMIT_STDIN_PENDING || p->stdin_pending + n > LIMIT_STDIN_PENDING) {
        errno = n > LIMIT_STDIN_PENDING ? EMSGSIZE : EAGAIN;
        return -1;
    }
    if (inq_add(p, data, n) < 0) {
        errno = ENOMEM;
        return -1;
    }
    stdin_flush(p);   /* most writes go out at once: a keystroke waits for no poll round */
    return 0;
}

int proc_stdin_close(struct proc *p)
{
    if (p->stdin_mode == PROC_STDIN_NULL) {
        errno = EBADF;
        return -1;
    }
    if (p->state == PROC_FINISHED) {
        errno = EPIPE;
        return -1;
    }
    if (p->stdin_closed)
        return 0;
    if (p->pty && stdin_veof(p) < 0) {
        errno = ENOMEM;
        return -1;
    }
    p->stdin_closed = 1;
    stdin_flush(p);
    return 0;
}

int proc_resize(struct proc *p, unsigned cols, unsigned rows)
{
    if (!p->pty) {
        errno = ENOTTY;
        return -1;
    }
    if (p->state == PROC_FINISHED) {
        errno = ESRCH;
        return -1;
    }
    if (cols == 0 || rows == 0 || cols > 65535 || rows > 65535) {
        errno = EINVAL;
        return -1;
    }
    p->cols = (unsigned short)cols;
    p->rows = (unsigned short)rows;
    struct winsize ws = { .ws_row = p->rows, .ws_col = p->cols };
    if (p->in_fd >= 0 && ioctl(p->in_fd, TIOCSWINSZ, &ws) < 0)
        return -1;
    return 0;
}

int proc_cache_set(struct proc *p, char *data, size_t len, size_t split)
{
    if (p->state != PROC_FINISHED || p->cache || !data) {
        free(data);
        return -1;
    }
    /* counted now, evicted for at the next create or reap: never during a caller's walk */
    p->cache = data;
    p->cache_len = len;
    p->cache_split = split;
    counts.cache_bytes += len;
    return 0;
}

double proc_runtime(const struct proc *p)
{
    if (p->state == PROC_QUEUED || !p->started_us)
        return 0;
    int64_t end = p->state == PROC_FINISHED ? p->finished_us : util_mono_us();
    return (double)(end - p->started_us) / 1e6;
}

uint64_t proc_output(const struct proc_ring *r, uint64_t offset, const char **p1, size_t *n1,
                     const char **p2, size_t *n2)
{
    uint64_t start = r->total - r->len;
    if (offset < start)
        offset = start;
    if (offset > r->total)
        offset = r->total;
    size_t skip = (size_t)(offset - start), n = r->len - skip;
    *p1 = *p2 = NULL;
    *n1 = *n2 = 0;
    if (n == 0)
        return offset;
    size_t at = (r->head + skip) % r->cap;
    *p1 = r->data + at;
    *n1 = r->cap - at < n ? r->cap - at : n;
    if (*n1 < n) {
        *p2 = r->data;
        *n2 = n - *n1;
    }
    return offset;
}

int proc_observe(proc_event_fn *fn)
{
    for (int i = 0; i < PROC_OBSERVERS; i++)
        if (!observers[i] || observers[i] == fn) {
            observers[i] = fn;
            return 0;
        }
    return -1;
}

void proc_counts(struct proc_counts *c)
{
    *c = counts;
    c->running = nlive;
    c->queued = 0;
    for (struct proc *p = head; p; p = p->next)
        c->queued += p->state == PROC_QUEUED;
}

static const struct {
    int sig;
    const char *name;
} signals[] = {
    { SIGHUP, "SIGHUP" }, { SIGINT, "SIGINT" }, { SIGQUIT, "SIGQUIT" }, { SIGILL, "SIGILL" },
    { SIGTRAP, "SIGTRAP" }, { SIGABRT, "SIGABRT" }, { SIGBUS, "SIGBUS" }, { SIGFPE, "SIGFPE" },
    { SIGKILL, "SIGKILL" }, { SIGUSR1, "SIGUSR1" }, { SIGSEGV, "SIGSEGV" },
    { SIGUSR2, "SIGUSR2" }, { SIGPIPE, "SIGPIPE" }, { SIGALRM, "SIGALRM" },
    { SIGTERM, "SIGTERM" }, { SIGCHLD, "SIGCHLD" }, { SIGCONT, "SIGCONT" },
    { SIGSTOP, "SIGSTOP" }, { SIGTSTP, "SIGTSTP" }, { SIGTTIN, "SIGTTIN" },
    { SIGTTOU, "SIGTTOU" }, { SIGURG, "SIGURG" }, { SIGXCPU, "SIGXCPU" },
    { SIGXFSZ, "SIGXFSZ" }, { SIGVTALRM, "SIGVTALRM" }, { SIGPROF, "SIGPROF" },
    { SIGWINCH, "SIGWINCH" }, { SIGIO, "SIGIO" }, { SIGSYS, "SIGSYS" },
};
#define NSIGNALS (sizeof signals / sizeof signals[0])

const char *proc_signal_name(int sig)
{
    for (size_t i = 0; i < NSIGNALS; i++)
        if (signals[i].sig == sig)
            return signals[i].name;
    return NULL;
}

int proc_signal_parse(const char *s, size_t len)
{
    if (len > 0 && len <= 2 && s[0] >= '1' && s[0] <= '9') {
        int v = s[0] - '0';
        if (len == 2) {
            if (s[1] < '0' || s[1] > '9')
                return -1;
            v = v * 10 + s[1] - '0';
        }
        return proc_signal_name(v) ? v : -1;
    }
    if (len > 3 && memcmp(s, "SIG", 3) == 0)
        s += 3, len -= 3;
    for (size_t i = 0; i < NSIGNALS; i++)
        if (strlen(signals[i].name + 3) == len && memcmp(signals[i].name + 3, s, len) == 0)
            return signals[i].sig;
    return -1;
}
