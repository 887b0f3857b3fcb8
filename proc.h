/* Process supervision: spawn, output capture, reaping, timeouts, kill, a FIFO queue and
 * eviction of old records. Driven entirely by the loop: pipes are watched with loop.h,
 * SIGCHLD arrives as proc_reap(), deadlines as proc_tick(). Makes syscalls, never logs:
 * what happened is in the records and in the counters the caller reads. */
#ifndef SANDBOX_PROC_H
#define SANDBOX_PROC_H
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum proc_state { PROC_QUEUED, PROC_RUNNING, PROC_FINISHED };

/* Why a finished process ended. */
enum proc_reason { PROC_R_NONE, PROC_R_EXIT, PROC_R_SIGNAL, PROC_R_TIMEOUT, PROC_R_KILLED,
                   PROC_R_SPAWN_ERROR };

/* The last bytes of one output stream: a ring that grows up to the output limit. */
struct proc_ring {
    char *data;
    size_t cap;
    size_t head;       /* index of the oldest kept byte */
    size_t len;        /* bytes kept */
    uint64_t total;    /* bytes the process wrote; total - len were dropped */
};

struct proc;
typedef void proc_finish_fn(struct proc *p, void *ctx);

struct proc {
    char id[22];              /* "proc_" + 16 hex */
    char exec_id[22];         /* "exec_" + 16 hex */
    char *name;               /* NULL when not given */
    char *command;            /* display form of what runs */
    char *language;           /* NULL for commands */
    int is_code;
    enum proc_state state;
    enum proc_reason reason;
    pid_t pid;                /* 0 before start; kept after exit for the record */
    int reaped;               /* waitpid returned it: never signalled again */
    int exit_code;            /* valid when finished; -1: none (dequeued before it ran) */
    int term_signal;          /* signal that ended it, 0 if none */
    int spawn_errno;          /* PROC_R_SPAWN_ERROR: why */
    int64_t timeout_ms;       /* 0 = none; milliseconds, as the client asked (1.5 s is 1500) */
    int64_t created_ms, started_ms, finished_ms;   /* wall clock */
    int64_t started_us, finished_us;               /* monotonic */
    struct proc_ring out, err;
    /* A finished record never changes, so the API renders it once (with output, then
     * without: split is where the second starts). Set by proc_cache_set, freed with the
     * record, counted against the output budget; NULL until set. */
    char *cache;
    size_t cache_len, cache_split;
    /* synchronous waiter, called once when the process finishes */
    proc_finish_fn *on_finish;
    void *finish_ctx;
    /* stdin and terminal (proc_stdin_write, proc_stdin_close, proc_resize) */
    int pty;                  /* runs on its own pseudo-terminal (proc_spec.pty) */
    int stdin_mode;           /* enum proc_stdin it was started with */
    int stdin_closed;         /* close requested (EOF follows the pending bytes) or reader gone */
    size_t stdin_pending;     /* bytes queued, not yet taken by the pipe or terminal */
    unsigned short cols, rows; /* the terminal's size */
    /* private to proc.c */
    struct proc *prev, *next;
    struct proc_spawn *spawn; /* what to run, kept while queued */
    char *code_path;          /* removed when the record finishes */
    int out_fd, err_fd;
    int killing;              /* 0, or PROC_R_TIMEOUT / PROC_R_KILLED once signalled */
    int64_t deadline_us;      /* timeout, then SIGKILL escalation; 0 = none */
    int live_idx;
    /* stdin and terminal, private to proc.c */
    int in_fd;                /* pipe write end, or a dup of the terminal's master; -1 */
    int in_polled;            /* in_fd is in the loop (only while bytes are pending) */
    char *inq;                /* pending stdin bytes: inq[inq_off .. + stdin_pending) */
    size_t inq_off, inq_cap;
    char in_last;             /* the last byte queued: a terminal's EOF needs a line start */
};

/* What to run. Everything is copied by proc_create; code_path is taken over (unlinked when
 * the record finishes). */
struct proc_spec {
    const char *path;            /* executable to run (already resolved) */
    char *const *argv;           /* NULL-terminated */
    char *const *envp;           /* NULL-terminated, the whole environment */
    const char *cwd;
    const char *name;            /* may be NULL */
    const char *command;         /* display form */
    const char *language;        /* NULL for commands */
    const char *code_path;       /* temp file to remove after exit, or NULL */
    int64_t timeout_ms;          /* 0 = none */
    /* stdin: /dev/null (0), a pipe fed by proc_stdin_write, or stdin_text written then
     * closed, like subprocess.run(input=...). stdin_text is copied; it may pass
     * LIMIT_STDIN_PENDING (the request body bounds it). */
    int stdin_mode;              /* enum proc_stdin */
    const char *stdin_text;
    size_t stdin_len;
    /* pty: the child runs on a new pseudo-terminal of cols x rows (0: 80 x 24) that is its
     * controlling terminal; stdout carries everything it prints, stderr stays empty, and
     * stdin (a pipe or text as above, or none) goes to the terminal. */
    int pty;
    unsigned short cols, rows;
};

enum proc_stdin { PROC_STDIN_NULL, PROC_STDIN_PIPE, PROC_STDIN_TEXT };

struct proc_limits {
    long max_running;
    long max_records;
    size_t output_limit;         /* bytes kept per stream */
    size_t output_budget;        /* bytes kept over all finished records */
    int64_t grace_us;            /* SIGTERM -> SIGKILL */
};

void proc_init(const struct proc_limits *limits);

/* Creates a record and starts it, or queues it when max_running are running.
 * Returns the record, or NULL with errno set: the spawn's errno when it failed at once
 * (ENOENT, EACCES, ENOEXEC... nothing is kept then), ENOMEM, EMFILE. */
struct proc *proc_create(const struct proc_spec *spec);

/* Records in creation order. */
struct proc *proc_first(void);
struct proc *proc_next(const struct proc *p);
struct proc *proc_find(const char *id, size_t len);

/* Signals the process group. A terminating sig (TERM, INT, QUIT, KILL) marks the record
 * killed and is followed by SIGKILL after the grace period; any other is delivered once and
 * changes nothing on the record. A queued record is dequeued by a terminating sig (it ends
 * killed with exit_code -1: it never ran). Returns 0 signalled, 1 dequeued, -1 already
 * finished, -2 queued and sig not terminating (nothing done). */
int proc_kill(struct proc *p, int sig);
/* Drops a finished record. Returns 0, or -1 when it is still queued or running. */
int proc_forget(struct proc *p);

/* SIGCHLD: reaps every child that exited (ours and adopted orphans). */
void proc_reap(void);
/* Timeouts and escalations due by now. Returns the next deadline (monotonic us) or -1. */
int64_t proc_tick(int64_t now_us);
/* Shutdown: kill every group (TERM, KILL after grace) and end the queue. */
void proc_shutdown(void);

/* Queues n bytes for the process's stdin (its pipe or terminal), written in order as the
 * child takes them, never blocking; a queued process gets them once it starts. Returns 0,
 * or -1 with errno: EBADF started without stdin, EPIPE stdin closed (by request, because
 * the reader went away, or the process finished), EAGAIN the pending bytes would pass
 * LIMIT_STDIN_PENDING (nothing was queued: try again later), EMSGSIZE n alone passes it,
 * ENOMEM. */
int proc_stdin_write(struct proc *p, const char *data, size_t n);
/* EOF once the pending bytes are written: a pipe is closed, a terminal gets its EOF
 * character (VEOF, ^D) and stays open. Returns 0 (also when already closed), or -1 with
 * errno EBADF (no stdin) or EPIPE (finished). */
int proc_stdin_close(struct proc *p);
/* Sets the terminal's size; the kernel sends SIGWINCH to its foreground process group. A
 * queued process starts with it. Returns 0, or -1 with errno ENOTTY (not on a terminal),
 * EINVAL (0 or over 65535), ESRCH (finished). */
int proc_resize(struct proc *p, unsigned cols, unsigned rows);

/* Hands a finished record its rendering (malloc'd; ownership passes, see struct proc).
 * Refused (data freed, -1) unless p is finished and has none yet. */
int proc_cache_set(struct proc *p, char *data, size_t len, size_t split);

/* Seconds the process has run (so far, or in total). */
double proc_runtime(const struct proc *p);
/* The kept bytes of a stream from offset on (clamped to the oldest kept byte) as at most
 * two spans. Returns the stream offset of the first byte given. */
uint64_t proc_output(const struct proc_ring *r, uint64_t offset, const char **p1, size_t *n1,
                     const char **p2, size_t *n2);

struct proc_counts {
    long records, queued, running, completed, failed;
    uint64_t started_total;      /* processes ever started */
    uint64_t orphans_reaped;     /* adopted children reaped that were not ours */
    size_t output_bytes;         /* kept over all records */
    size_t cache_bytes;          /* renderings of finished records (proc_cache_set) */
};
void proc_counts(struct proc_counts *c);

/* Lifecycle events, for logs and metrics: proc.c makes them happen, the observer reports. */
enum proc_event {
    PROC_EV_STARTED,    /* spawned: running, pid set */
    PROC_EV_FINISHED,   /* finished: reason, exit_code, term_signal set */
    PROC_EV_KILLED,     /* a kill request signalled it (sig), or ended it while queued */
    PROC_EV_EVICTED,    /* dropped: to stay within max_records / output budget, or forgotten
                         * (proc_forget); anyone holding p lets go of it */
    PROC_EV_OUTPUT,     /* new bytes in a ring while running (sig: 1 stdout, 2 stderr);
                         * bytes drained at exit come with FINISHED instead */
};
/* Called after each event; p is valid during the call only (EVICTED: freed right after).
 * sig: the signal sent for KILLED (0 when it was still queued), the stream for OUTPUT,
 * else 0. The observer must not call back into proc.h functions that change records.
 * Several modules observe (the log, live streams, webhooks), each called in the order
 * they registered. */
typedef void proc_event_fn(const struct proc *p, enum proc_event ev, int sig);
#define PROC_OBSERVERS 8
/* Adds an observer (again: no-op). Returns 0, or -1 when PROC_OBSERVERS are registered. */
int proc_observe(proc_event_fn *fn);

/* 1 for the signals that are a kill (TERM, INT, QUIT, KILL): see proc_kill. */
int proc_signal_is_kill(int sig);
/* "SIGTERM" for 15; NULL for unknown. proc_signal_parse accepts "SIGTERM", "TERM", "15". */
const char *proc_signal_name(int sig);
int proc_signal_parse(const char *s, size_t len);

#endif
