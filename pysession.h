/* Python sessions: one persistent `python3 -u` per session id running the driver the agent
 * carries in its binary (pysession_driver.py), so names defined by one call exist in the
 * next. Protocol-neutral core: a front-end hands in code and gets a result callback.
 *
 * Each interpreter runs in its own session and process group, with stdin /dev/null, stdout
 * and stderr on pipes the agent reads as the running call's output, and two more pipes for
 * length-prefixed JSON frames (see the driver's header). All I/O is non-blocking on the
 * loop; deadlines (call timeouts, interrupt grace, idle expiry) run on a timerfd of this
 * module's own. Interpreter exits arrive from proc_reap through proc_claim_children.
 *
 * Calls to one session run one at a time in arrival order (a bounded queue). A timeout sends
 * SIGINT to the group (KeyboardInterrupt: the session survives); if no reply comes within
 * the interrupt grace the group is killed and a fresh interpreter started (the answer says
 * restarted). An interpreter that died otherwise is restarted by the next call, which says
 * so. Makes syscalls, never logs. */
#ifndef SANDBOX_PYSESSION_H
#define SANDBOX_PYSESSION_H
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "json.h"

struct pysession_limits {
    long max_sessions;          /* interpreters alive at once (1..PYSESSION_MAX) */
    int64_t idle_us;            /* an idle session is ended after this long unused */
    int64_t grace_us;           /* SIGINT -> SIGKILL and restart */
    size_t output_limit;        /* stdout/stderr bytes kept per call (the last ones) */
};
#define PYSESSION_MAX 64

/* Registers the reap claim with proc.c. Call once, after proc_init and loop_init. */
void pysession_init(const struct pysession_limits *lim);

/* One call. Everything is copied; nothing needs to outlive pysession_run. */
struct pysession_call {
    const char *session;        /* id: 1..64 of [A-Za-z0-9._-] */
    size_t session_len;
    const char *code;
    size_t code_len;
    char *const *env;           /* "K=V" set in os.environ before the code runs; NULL: none */
    const char *cwd;            /* os.chdir before the code runs; NULL: stay */
    int64_t timeout_ms;         /* > 0 */
    /* For an interpreter that has to start: its whole environment and working directory.
     * python3 (else python) is looked up on the PATH of envp. */
    char *const *envp;
    const char *start_cwd;
};

enum pysession_outcome {
    PYS_DONE,          /* the driver answered: reply holds result/error/outputs */
    PYS_INTERRUPTED,   /* timed out; KeyboardInterrupt stopped it, the session lives on */
    PYS_RESTARTED,     /* timed out and did not stop: killed, a new interpreter started */
    PYS_DIED,          /* the interpreter exited during the call (exit_code, term_signal) */
    PYS_START_FAILED,  /* the interpreter could not start or died before it was ready */
    PYS_DELETED,       /* the session was deleted or expired before the call finished */
    PYS_SHUTDOWN,      /* the agent is stopping */
    PYS_PROTOCOL,      /* the driver sent something that is not a frame: killed */
    PYS_TOO_LARGE,     /* the reply passed LIMIT_PY_REPLY_BYTES or _TOKENS: dropped, and the
                        * session lives on (stdout/stderr are still given) */
};

/* What a finished call hands its front-end. Every pointer is valid during the callback. */
struct pysession_result {
    enum pysession_outcome outcome;
    const char *session_id;
    const char *kernel_id;
    long execution_count;       /* of this session's interpreter, this call included */
    /* restarted: this call runs in a new interpreter after the previous one died (reason
     * "died"), or PYS_RESTARTED (reason "timeout"); NULL when not restarted */
    const char *restart_reason;
    const char *out, *err;      /* the call's stdout/stderr (the last output_limit bytes) */
    size_t out_len, err_len;
    uint64_t out_total, err_total;
    /* PYS_DONE and PYS_INTERRUPTED: the driver's reply, a parsed JSON object (toks[0]):
     * execution_count, result, error {name, value, traceback}, outputs [{type, data}] */
    const char *reply;
    size_t reply_len;
    const struct json_token *toks;
    int exit_code, term_signal; /* PYS_DIED */
    double exec_s;
    int64_t finished_ms;        /* wall clock */
};
typedef void pysession_done_fn(void *ctx, const struct pysession_result *r);

/* Queues a call; fn is called exactly once, later (never from inside pysession_run), with
 * ctx. Returns 0, or -1 with errno: EINVAL (bad session id), EBUSY (that session's queue is
 * full), EMFILE (a new session while max_sessions are alive), ENOENT (no python3 or python
 * on PATH), ESHUTDOWN (stopping), ENOMEM, or the errno of a failed spawn. */
int pysession_run(const struct pysession_call *c, pysession_done_fn *fn, void *ctx);

enum pysession_state { PYS_STARTING, PYS_IDLE, PYS_BUSY, PYS_DEAD };
struct pysession_info {
    char id[65];
    char kernel_id[37];
    enum pysession_state state;
    pid_t pid;                  /* 0 when dead */
    int64_t created_ms, last_used_ms;
    long execution_count;
    long queued;                /* calls waiting behind the running one */
    int ipython;                /* the driver found IPython (magics work) */
};
/* Fills up to max entries, oldest session first. Returns how many. */
size_t pysession_list(struct pysession_info *out, size_t max);
/* Ends a session: its group is killed, its queued calls answered PYS_DELETED. Returns 0,
 * or -1 (ENOENT) when there is no such session. */
int pysession_delete(const char *id, size_t len);
/* Agent stopping: every interpreter's group is killed, every call answered PYS_SHUTDOWN,
 * new calls refused. */
void pysession_shutdown(void);

#endif
