#include "api_proc.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api.h"
#include "api_stream.h"
#include "decode.h"
#include "envset.h"
#include "hook.h"
#include "json.h"
#include "limits.h"
#include "proc.h"
#include "utf8.h"
#include "runas.h"
#include "util.h"

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* A language: names clients use, the interpreters to try in order, and the file suffix. */
struct language {
    const char *names[4];
    const char *runners[4];   /* "go run" style entries carry their subcommand */
    const char *suffix;
};

static const struct language languages[] = {
    { { "python", "python3", "py" }, { "python3", "python" }, ".py" },
    { { "javascript", "js", "node", "nodejs" }, { "node" }, ".js" },
    { { "typescript", "ts" }, { "tsx", "ts-node", "bun run", "deno run" }, ".ts" },
    { { "bash" }, { "bash" }, ".sh" },
    { { "sh", "shell" }, { "sh" }, ".sh" },
    { { "go", "golang" }, { "go run" }, ".go" },
    { { "ruby", "rb" }, { "ruby" }, ".rb" },
    { { "perl", "pl" }, { "perl" }, ".pl" },
};
#define NLANGUAGES (sizeof languages / sizeof languages[0])

/* A run request as the client sent it (decode tables below). Strings live in the
 * request's arena. */
struct run_req {
    const char *command;          /* commands */
    struct decode_strings args;   /* commands: exec command with these, no shell */
    struct decode_bytes code;     /* code */
    const char *language;         /* code: as the client spelled it */
    int64_t timeout_ms;           /* -1: not given */
    const char *cwd;              /* working_dir = workdir = cwd */
    struct decode_map env;
    const char *name;
    struct cgroup_limits limits;  /* process control: limits {memory_bytes, pids, cpu_percent} */
    const char *user;             /* process control: a name or a uid */
    struct {                      /* webhooks (issue 16): used on the background routes */
        const char *url;
        struct decode_map headers;
        struct decode_bytes secret;
    } cb;
    struct decode_strbool in;     /* "stdin" (a macro of stdio.h): true, false or text */
    int pty;                      /* stdin and terminals (issue 15) */
    int64_t cols, rows;           /* the terminal's size; 0: not given */
};

#define RUN(x) offsetof(struct run_req, x)
#define LIM(x) offsetof(struct cgroup_limits, x)
/* process control (issue 18): 0 = no limit */
static const struct decode_field limits_fields[] = {
    { "memory_bytes", { "memoryBytes" }, .type = DECODE_INT, .off = LIM(memory_bytes),
      .min = LIMIT_MEMORY_MIN, .max = INT64_MAX / 2 },
    { "pids", .type = DECODE_INT, .off = LIM(pids), .min = 1, .max = 4194304 },
    { "cpu_percent", { "cpuPercent" }, .type = DECODE_INT, .off = LIM(cpu_percent), .min = 1,
      .max = 100000 },
};
static const struct decode_table limits_table = DECODE_TABLE(limits_fields);
/* the fields both kinds share, after their own (first error met is the one answered, in
 * this order, as before the tables) */
#define RUN_COMMON                                                                           \
    { "timeout", .type = DECODE_MILLIS, .off = RUN(timeout_ms), .dmin = 0,                   \
      .dmax = LIMIT_TIMEOUT_MAX_S, .def_int = -1 },                                          \
    { "working_dir", { "workdir", "cwd" }, .type = DECODE_STRING, .off = RUN(cwd) },         \
    { "env", .type = DECODE_MAP, .off = RUN(env), .flags = DECODE_ENV,                       \
      .max = LIMIT_ENV_VARS },                                                               \
    { "name", .type = DECODE_STRING, .off = RUN(name) },                                    \
    { "stdin", .type = DECODE_STR_OR_BOOL, .off = RUN(in) },                                 \
    { "pty", .type = DECODE_BOOL, .off = RUN(pty) },                                         \
    { "cols", .type = DECODE_INT, .off = RUN(cols), .min = 1, .max = 65535 },                \
    { "rows", .type = DECODE_INT, .off = RUN(rows), .min = 1, .max = 65535 },                \
    { "limits", .type = DECODE_OBJECT, .off = RUN(limits), .sub = &limits_table },           \
    { "user", .type = DECODE_SCALAR, .off = RUN(user) },                                     \
    RUN_CALLBACK
/* webhooks (issue 16): callback_url, callback_headers, callback_signature_secret */
#define RUN_CALLBACK                                                                         \
    { "callback_url", { "callbackUrl" }, .type = DECODE_STRING, .off = RUN(cb.url),          \
      .flags = DECODE_EMPTY_IS_ABSENT },                                                     \
    { "callback_headers", { "callbackHeaders" }, .type = DECODE_MAP, .off = RUN(cb.headers), \
      .max = LIMIT_HOOK_HEADERS, .max_bytes = LIMIT_HOOK_HEADER_BYTES },                     \
    { "callback_signature_secret", { "callbackSignatureSecret", "callback_secret" },         \
      .type = DECODE_BYTES, .off = RUN(cb.secret) }

static const struct decode_field command_fields[] = {
    { "command", .type = DECODE_STRING, .off = RUN(command),
      .flags = DECODE_REQUIRED | DECODE_EMPTY_IS_ABSENT },
    { "args", .type = DECODE_STRINGS, .off = RUN(args), .max = LIMIT_ARGS },
    RUN_COMMON,
};
static const struct decode_table command_table = DECODE_TABLE(command_fields);

static const struct decode_field code_fields[] = {
    { "code", .type = DECODE_BYTES, .off = RUN(code), .flags = DECODE_REQUIRED },
    { "language", .type = DECODE_STRING, .off = RUN(language), .def_str = "python",
      .flags = DECODE_EMPTY_IS_ABSENT },
    RUN_COMMON,
};
static const struct decode_table code_table = DECODE_TABLE(code_fields);

/* A run request, checked and resolved. */
struct run {
    const char *command;  /* commands */
    char **args;          /* NULL: through /bin/sh -c; else argv (command first) */
    const char *code;     /* code */
    size_t code_len;
    const struct language *lang;
    const char *lang_name;
    int64_t timeout_ms;
    const char *cwd;
    char **env;           /* "K=V", NULL-terminated, the request's own */
    size_t nenv;
    const char *name;
    int stdin_mode;       /* enum proc_stdin (issue 15: stdin, terminals) */
    const char *stdin_text;
    size_t stdin_len;
    int pty;
    unsigned cols, rows;
    struct cgroup_limits limits;   /* process control; all 0: none */
    char *user;                    /* process control: name or uid; NULL: the agent's */
};

/* One failed check: what to answer. */
struct fail {
    int status;
    const char *code;
    char msg[200];
};

static int fail(struct fail *f, int status, const char *code, const char *fmt, const char *arg)
{
    f->status = status;
    f->code = code;
    snprintf(f->msg, sizeof f->msg, fmt, arg);
    return -1;
}

/* working_dir: must be an existing directory; relative ones are taken from the agent's
 * workdir, an empty one is the workdir. */
static int check_cwd(struct decode_arena *ar, const char *dir, const char *workdir,
                     struct run *r, struct fail *f)
{
    if (!dir || !*dir) {
        r->cwd = workdir;
        return 0;
    }
    struct decode_error e;
    if (api_run_cwd(ar, workdir, dir, &dir, &e) < 0)
        return fail(f, e.status, e.code, "%s", e.msg);
    r->cwd = dir;
    return 0;
}

/* limits (process control): a limit whose cgroup controller the agent lacks is a 400 (it
 * then runs every process in a process group only, as /info says), never silently ignored;
 * user: a name or a uid, looked up when the run is prepared. */
static int check_limits(const struct run_req *q, struct run *r, struct fail *f)
{
    static const struct {
        const char *key, *controller;
        size_t off;
    } fields[] = {
        { "memory_bytes", "memory", offsetof(struct cgroup_limits, memory_bytes) },
        { "pids", "pids", offsetof(struct cgroup_limits, pids) },
        { "cpu_percent", "cpu", offsetof(struct cgroup_limits, cpu_percent) },
    };
    r->limits = q->limits;
    for (size_t k = 0; k < sizeof fields / sizeof fields[0]; k++) {
        char msg[200];
        if (*(const int64_t *)((const char *)&q->limits + fields[k].off) == 0 ||
            cgroup_has(fields[k].controller))
            continue;
        snprintf(msg, sizeof msg, "'limits.%s' needs cgroup v2 with the %s controller, "
                 "which this agent does not have (see process_control in /info)",
                 fields[k].key, fields[k].controller);
        return fail(f, 400, "INVALID_REQUEST", "%s", msg);
    }
    if (q->user && (!*q->user || strlen(q->user) >= RUNAS_NAME_MAX))
        return fail(f, 400, "INVALID_REQUEST", "'%s' must be a user name or a uid", "user");
    return 0;
}

static const struct language *find_language(const char *name)
{
    for (size_t i = 0; i < NLANGUAGES; i++)
        for (size_t k = 0; k < 4 && languages[i].names[k]; k++)
            if (!strcasecmp(languages[i].names[k], name))
                return &languages[i];
    return NULL;
}

/* Checks a decoded run request: everything a client can get wrong is answered here,
 * before anything starts. dflt_ms is the route's timeout (also for a synchronous 0). */
static int check_run(struct decode_arena *ar, const struct run_req *q, int is_code,
                     int64_t dflt_ms, int sync, const char *workdir, struct run *r,
                     struct fail *f)
{
    memset(r, 0, sizeof *r);
    if (is_code) {
        r->code = q->code.p;
        r->code_len = q->code.len;
        r->lang_name = q->language;
        r->lang = find_language(r->lang_name);
        if (!r->lang)
            return fail(f, 400, "INVALID_REQUEST", "unknown language: %s", r->lang_name);
    } else {
        r->command = q->command;
        if (q->args.v) {   /* argv: the command, then the args */
            r->args = decode_take(ar, (q->args.n + 2) * sizeof *r->args);
            if (!r->args)
                return fail(f, 500, "INTERNAL_ERROR", "out of memory decoding '%s'", "args");
            r->args[0] = (char *)q->command;
            memcpy(r->args + 1, q->args.v, (q->args.n + 1) * sizeof *r->args);
        }
    }
    /* a synchronous run is never unlimited: the SDK gives up after timeout + 30 s and
     * sends the run again, so 0 there means the route's default */
    r->timeout_ms = q->timeout_ms < 0 || (sync && q->timeout_ms == 0) ? dflt_ms : q->timeout_ms;
    r->env = q->env.env;
    r->nenv = q->env.n;
    r->name = q->name;
    /* stdin: true is a pipe, text is written then closed; a wrong type was named already */
    r->stdin_mode = q->in.kind == DECODE_SB_TRUE   ? PROC_STDIN_PIPE
                  : q->in.kind == DECODE_SB_TEXT ? PROC_STDIN_TEXT
                                                 : PROC_STDIN_NULL;
    r->stdin_text = q->in.p;
    r->stdin_len = q->in.len;
    r->pty = q->pty == 1;
    r->cols = (unsigned)q->cols;
    r->rows = (unsigned)q->rows;
    r->user = (char *)q->user;
    if (check_limits(q, r, f) < 0)
        return -1;
    return check_cwd(ar, q->cwd, workdir, r, f);
}

/* ---- preparing what runs ---- */

static const char *env_lookup(char *const *env, const char *key)
{
    size_t n = strlen(key);
    for (; env && *env; env++)
        if (!strncmp(*env, key, n) && (*env)[n] == '=')
            return *env + n + 1;
    return NULL;
}

/* The child's environment: the base (the agent's own less its private settings, under the
 * agent-held set of /env: envset.h), then the request's on top, then PYTHONUNBUFFERED for
 * python unless the request set it. */
static char **build_env(struct decode_arena *ar, const struct run *r)
{
    char **env = decode_take(ar, (envset_base_max() + r->nenv + 4) * sizeof *env);
    if (!env)
        return NULL;
    size_t k = envset_base(env, r->env);
    for (size_t i = 0; i < r->nenv; i++)
        env[k++] = r->env[i];
    env[k] = NULL;
    /* looked up before adding: env[k] stays NULL-terminated only until then */
    int has_path = env_lookup(env, "PATH") != NULL;
    int has_unbuf = env_lookup(env, "PYTHONUNBUFFERED") != NULL;
    /* a terminal's type is the client's emulator, not whatever the agent inherited: only
     * the request's own TERM beats xterm-256color */
    int has_term = env_lookup(r->env, "TERM") != NULL;
    if (r->pty && !has_term)
        for (size_t i = 0; i < k; i++)
            if (!strncmp(env[i], "TERM=", 5))
                env[i] = env[--k];
    env[k] = NULL;
    if (!has_path)
        env[k++] = "PATH=" DEFAULT_PATH;
    if (r->lang && !strcmp(r->lang->suffix, ".py") && !has_unbuf)
        env[k++] = "PYTHONUNBUFFERED=1";
    if (r->pty && !has_term)   /* what terminal programs need to draw */
        env[k++] = "TERM=xterm-256color";
    env[k] = NULL;
    return env;
}

/* Finds name on PATH (or as a path) as the child would. Returns 0 or an errno. */
static int which(struct decode_arena *ar, const char *name, const char *path, char **out)
{
    if (strchr(name, '/')) {
        *out = (char *)name;
        return access(name, X_OK) == 0 ? 0 : errno;
    }
    int err = ENOENT;
    for (const char *p = path; *p;) {
        size_t len = strcspn(p, ":");
        char *cand = decode_take(ar, len + strlen(name) + 2);
        if (!cand)
            return ENOMEM;
        sprintf(cand, "%.*s%s%s", (int)len, p, len ? "/" : "", name);
        struct stat st;
        if (stat(cand, &st) == 0 && S_ISREG(st.st_mode)) {
            if (access(cand, X_OK) == 0) {
                *out = cand;
                return 0;
            }
            err = EACCES;
        }
        p += len + (p[len] == ':');
    }
    return err;
}

/* Writes the code to a private temp file (mode 0600 from mkstemps). */
static char *write_code(struct decode_arena *ar, const struct run *r, struct fail *f)
{
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp)
        tmp = "/tmp";
    char *path = decode_take(ar, strlen(tmp) + 40);
    if (!path) {
        fail(f, 500, "INTERNAL_ERROR", "%s", "out of memory");
        return NULL;
    }
    sprintf(path, "%s/sandbox-agent-XXXXXX%s", tmp, r->lang->suffix);
    int fd = mkstemps(path, (int)strlen(r->lang->suffix));
    if (fd < 0) {
        fail(f, 500, "INTERNAL_ERROR", "cannot create the code file: %s", strerror(errno));
        return NULL;
    }
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    size_t off = 0;
    while (off < r->code_len) {
        ssize_t w = write(fd, r->code + off, r->code_len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            fail(f, 500, "INTERNAL_ERROR", "cannot write the code file: %s", strerror(errno));
            close(fd);
            unlink(path);
            return NULL;
        }
        off += (size_t)w;
    }
    close(fd);
    return path;
}

/* Can u search (enter) every directory on the way to dir? Root can. */
static int user_can_enter(const char *dir, const struct runas_user *u)
{
    char path[4096];
    if (u->uid == 0)
        return 1;
    snprintf(path, sizeof path, "%s", dir);
    for (char *slash = path;; slash++) {
        char keep = 0;
        slash = strchr(slash, '/');
        if (slash && slash != path) {
            keep = *slash;
            *slash = 0;
        }
        struct stat st;
        mode_t need = S_IXOTH;
        if (stat(slash == path ? "/" : path, &st) < 0)
            return 0;
        if (st.st_uid == u->uid)
            need = S_IXUSR;
        else
            for (int i = 0; i < u->ngroups; i++)
                if (st.st_gid == u->groups[i])
                    need = S_IXGRP;
        if (!(st.st_mode & need))
            return 0;
        if (!slash)
            return 1;
        if (keep)
            *slash = keep;
    }
}

/* user (process control): the run goes through the exec shim (runas.h) that becomes the
 * user before it execs the program; HOME, USER and LOGNAME are the user's; a code file is
 * handed to the user. Everything is checked here, so the answer is a 400, not a failed run. */
static int apply_user(struct decode_arena *ar, const struct run *r, struct proc_spec *sp,
                      struct fail *f)
{
    struct runas_user u;
    char *uid = decode_take(ar, 16), *gid = decode_take(ar, 16);
    char *groups = decode_take(ar, RUNAS_GROUPS_MAX * 11 + 1);
    char *vars = decode_take(ar, 3 * (RUNAS_HOME_MAX + 16));
    size_t n = 0, nenv = 0;
    while (sp->argv[n])
        n++;
    while (sp->envp[nenv])
        nenv++;
    char **argv = decode_take(ar, (n + 8) * sizeof *argv);
    char **env = decode_take(ar, (nenv + 4) * sizeof *env);
    if (!uid || !gid || !groups || !vars || !argv || !env)
        return fail(f, 500, "INTERNAL_ERROR", "%s", "out of memory");
    if (runas_lookup(r->user, &u) < 0)
        return fail(f, 400, "INVALID_REQUEST", "no such user: %s", r->user);
    if (!user_can_enter(sp->cwd, &u)) {
        fail(f, 400, "PERMISSION_DENIED", "%s", "");
        snprintf(f->msg, sizeof f->msg, "user %s cannot enter the working directory %s",
                 u.name, sp->cwd);
        return -1;
    }
    if (sp->code_path && chown(sp->code_path, u.uid, u.gid) < 0)
        return fail(f, 500, "INTERNAL_ERROR", "cannot hand the code file to the user: %s",
                    strerror(errno));
    snprintf(uid, 16, "%u", (unsigned)u.uid);
    snprintf(gid, 16, "%u", (unsigned)u.gid);
    groups[0] = 0;
    for (int i = 0; i < u.ngroups; i++)
        sprintf(groups + strlen(groups), "%s%u", i ? "," : "", (unsigned)u.groups[i]);
    size_t k = 0;
    argv[k++] = "sandbox-agent", argv[k++] = "exec-as", argv[k++] = uid, argv[k++] = gid;
    argv[k++] = groups, argv[k++] = "--", argv[k++] = (char *)sp->path;
    for (size_t i = 0; i < n; i++)
        argv[k++] = sp->argv[i];
    argv[k] = NULL;
    k = 0;
    for (size_t i = 0; i < nenv; i++)
        if (strncmp(sp->envp[i], "HOME=", 5) && strncmp(sp->envp[i], "USER=", 5) &&
            strncmp(sp->envp[i], "LOGNAME=", 8))
            env[k++] = sp->envp[i];
    int w = sprintf(vars, "HOME=%s", u.home) + 1;
    env[k++] = vars;
    env[k++] = vars + w;
    w += sprintf(vars + w, "USER=%s", u.name) + 1;
    env[k++] = vars + w;
    sprintf(vars + w, "LOGNAME=%s", u.name);
    env[k] = NULL;
    sp->path = "/proc/self/exe";   /* the agent itself, as the shim */
    sp->argv = argv;
    sp->envp = env;
    return 0;
}

/* Turns a decoded run into a proc_spec: argv, environment, resolved program. */
static int prepare(struct decode_arena *ar, struct run *r, struct proc_spec *sp, struct fail *f)
{
    memset(sp, 0, sizeof *sp);
    char **env = build_env(ar, r);
    char **argv = decode_take(ar, 6 * sizeof *argv);
    if (!env || !argv)
        return fail(f, 500, "INTERNAL_ERROR", "%s", "out of memory");
    const char *path = env_lookup(env, "PATH");
    sp->envp = env;
    sp->cwd = r->cwd;
    sp->name = r->name;
    sp->timeout_ms = r->timeout_ms;
    sp->stdin_mode = r->stdin_mode;
    sp->stdin_text = r->stdin_text;
    sp->stdin_len = r->stdin_len;
    sp->pty = r->pty;
    sp->cols = (unsigned short)r->cols;
    sp->rows = (unsigned short)r->rows;
    sp->limits = &r->limits;
    if (!r->lang && !r->args) {
        argv[0] = "/bin/sh", argv[1] = "-c", argv[2] = (char *)r->command, argv[3] = NULL;
        sp->path = "/bin/sh";
        sp->argv = argv;
        sp->command = r->command;
        return 0;
    }
    if (!r->lang) {
        char *prog;
        int err = which(ar, r->command, path, &prog);
        if (err) {
            fail(f, 400, "EXECUTION_FAILED", "%s", "");
            snprintf(f->msg, sizeof f->msg, "cannot execute '%s': %s", r->command, strerror(err));
            return -1;
        }
        sp->path = prog;
        sp->argv = r->args;
        /* display form: the words joined by spaces */
        size_t len = 1;
        for (size_t i = 0; r->args[i]; i++)
            len += strlen(r->args[i]) + 1;
        char *cmd = decode_take(ar, len);
        if (!cmd)
            return fail(f, 500, "INTERNAL_ERROR", "%s", "out of memory");
        cmd[0] = 0;
        for (size_t i = 0; r->args[i]; i++)
            strcat(strcat(cmd, i ? " " : ""), r->args[i]);
        sp->command = cmd;
        return 0;
    }
    /* code: the first runner found on PATH; "go run" style runners keep their subcommand */
    char *prog = NULL;
    const char *runner = NULL;
    for (size_t i = 0; i < 4 && r->lang->runners[i] && !prog; i++) {
        char exe[32];
        runner = r->lang->runners[i];
        snprintf(exe, sizeof exe, "%.*s", (int)strcspn(runner, " "), runner);
        if (which(ar, exe, path, &prog) != 0)
            prog = NULL;
    }
    if (!prog) {   /* name every runner tried, so the user knows what to install */
        char tried[100] = "";
        for (size_t i = 0; i < 4 && r->lang->runners[i]; i++)
            snprintf(tried + strlen(tried), sizeof tried - strlen(tried), "%s%.*s",
                     i ? ", " : "", (int)strcspn(r->lang->runners[i], " "), r->lang->runners[i]);
        return fail(f, 400, "EXECUTION_FAILED", "interpreter not installed (tried %s on PATH)",
                    tried);
    }
    char *file = write_code(ar, r, f);
    if (!file)
        return -1;
    int n = 0;
    argv[n++] = prog;
    const char *sub = strchr(runner, ' ');
    if (sub)
        argv[n++] = (char *)sub + 1;
    argv[n++] = file;
    argv[n] = NULL;
    sp->path = prog;
    sp->argv = argv;
    sp->command = r->lang_name;
    sp->language = r->lang_name;
    sp->code_path = file;
    return 0;
}

/* 1 when one of lang's runners is on PATH (path: a PATH value). */
static int language_present(const struct language *lang, const char *path)
{
    struct decode_arena ar;
    int found = 0;
    if (decode_arena_open(&ar, 8192) < 0)
        return 0;
    for (size_t i = 0; i < 4 && lang->runners[i] && !found; i++) {
        char exe[32], *prog;
        snprintf(exe, sizeof exe, "%.*s", (int)strcspn(lang->runners[i], " "), lang->runners[i]);
        ar.used = 0;
        found = which(&ar, exe, path, &prog) == 0;
    }
    decode_arena_close(&ar);
    return found;
}

void api_proc_languages(struct buf *b)
{
    char **env = malloc((envset_base_max() + 1) * sizeof *env);
    const char *path = NULL;
    if (env) {
        envset_base(env, NULL);
        path = env_lookup(env, "PATH");
    }
    buf_putc(b, '[');
    for (size_t i = 0; i < NLANGUAGES; i++) {
        if (!language_present(&languages[i], path ? path : DEFAULT_PATH))
            continue;
        json_sep(b);
        json_put_cstr(b, languages[i].names[0]);
    }
    buf_putc(b, ']');
    free(env);
}

/* ---- answering ---- */

static void put_time(struct buf *b, const char *key, int64_t ms)
{
    json_put_key(b, key);
    if (!ms) {
        json_put_null(b);
        return;
    }
    char ts[25];
    util_rfc3339(ms, ts);
    json_put_cstr(b, ts);
}

/* A stream's kept bytes as a JSON string. Output is bytes read in pieces: a character cut
 * by the ring's oldest kept byte (its start dropped) is left out, and while the process
 * runs an unfinished character at the end waits for its last bytes, so neither turns into
 * U+FFFD; what is invalid still becomes one U+FFFD. */
static void put_ring(struct buf *b, const struct proc *p, const struct proc_ring *r)
{
    const char *p1, *p2;
    size_t n1, n2;
    proc_output(r, 0, &p1, &n1, &p2, &n2);
    char *joined = NULL;
    if (n2) {   /* a wrapped ring: join the halves so a sequence across the seam stays whole */
        joined = malloc(n1 + n2);
        if (!joined) {
            b->failed = 1;
            return;
        }
        memcpy(joined, p1, n1);
        memcpy(joined + n1, p2, n2);
        p1 = joined;
        n1 += n2;
    }
    if (!p1)
        p1 = "";   /* nothing kept yet */
    size_t skip = r->total > r->len ? utf8_orphan_head(p1, n1) : 0;
    size_t hold = p->state == PROC_RUNNING ? utf8_partial_tail(p1 + skip, n1 - skip) : 0;
    json_put_str(b, p1 + skip, n1 - skip - hold);
    free(joined);
}

/* "timeout" in seconds: an integer when whole, else with the milliseconds asked for */
static void put_timeout(struct buf *b, const struct proc *p)
{
    json_put_key(b, "timeout");
    if (p->timeout_ms % 1000 == 0)
        json_put_int(b, p->timeout_ms / 1000);
    else
        json_put_num(b, (double)p->timeout_ms / 1000.0, 3);
}

static const char *status_name(const struct proc *p)
{
    switch (p->state) {
    case PROC_QUEUED: return "queued";
    case PROC_RUNNING: return "running";
    default: return p->reason == PROC_R_EXIT && p->exit_code == 0 ? "completed" : "failed";
    }
}

static const char *reason_name(enum proc_reason r)
{
    static const char *const names[] = { NULL, "exit", "signal", "timeout", "killed",
                                         "spawn_error", "oom" };
    return names[r];
}

/* "callback": {url, state, attempts, last_status, last_error, delivered_at}, when set. */
static void put_callback(struct buf *b, const struct proc *p)
{
    static const char *const phases[] = { "pending", "delivered", "failed" };
    const struct hook_state *hs = hook_state(p);
    if (!hs)
        return;
    json_put_key(b, "callback");
    buf_putc(b, '{');
    json_put_key(b, "url");
    json_put_cstr(b, hs->url);
    json_put_key(b, "state");
    json_put_cstr(b, phases[hs->phase]);
    json_put_key(b, "attempts");
    json_put_int(b, hs->attempts);
    json_put_key(b, "last_status");
    if (hs->last_status)
        json_put_int(b, hs->last_status);
    else
        json_put_null(b);
    json_put_key(b, "last_error");
    json_put_cstr(b, hs->last_error);
    put_time(b, "delivered_at", hs->delivered_ms);
    buf_putc(b, '}');
}

static void put_record(struct buf *b, const struct proc *p, int with_output)
{
    int done = p->state == PROC_FINISHED;
    buf_putc(b, '{');
    json_put_key(b, "process_id");
    json_put_cstr(b, p->id);
    json_put_key(b, "execution_id");
    json_put_cstr(b, p->exec_id);
    json_put_key(b, "name");
    json_put_cstr(b, p->name);
    json_put_key(b, "kind");
    json_put_cstr(b, p->is_code ? "code" : "command");
    json_put_key(b, "command");
    json_put_cstr(b, p->command);
    json_put_key(b, "language");
    json_put_cstr(b, p->language);
    json_put_key(b, "status");
    json_put_cstr(b, status_name(p));
    json_put_key(b, "reason");
    json_put_cstr(b, done ? reason_name(p->reason) : NULL);
    json_put_key(b, "pid");   /* kept once finished: which process it was */
    if (p->pid > 0)
        json_put_int(b, p->pid);
    else
        json_put_null(b);
    json_put_key(b, "exit_code");
    if (done && p->exit_code >= 0)
        json_put_int(b, p->exit_code);
    else
        json_put_null(b);
    json_put_key(b, "signal");
    json_put_cstr(b, p->term_signal ? proc_signal_name(p->term_signal) : NULL);
    if (p->reason == PROC_R_SPAWN_ERROR) {
        json_put_key(b, "error");
        json_put_cstr(b, strerror(p->spawn_errno));
    }
    put_time(b, "created_at", p->created_ms);
    put_time(b, "started_at", p->started_ms);
    put_time(b, "completed_at", done ? p->finished_ms : 0);
    json_put_key(b, "execution_time");
    json_put_num(b, proc_runtime(p), 3);
    if (done && p->have_usage) {   /* process control: wait4's account of the run */
        json_put_key(b, "resources");
        buf_putc(b, '{');
        json_put_key(b, "user_cpu_s");
        json_put_num(b, p->user_cpu_s, 3);
        json_put_key(b, "system_cpu_s");
        json_put_num(b, p->system_cpu_s, 3);
        json_put_key(b, "max_rss_kb");
        json_put_int(b, p->max_rss_kb);
        buf_putc(b, '}');
    }
    if (p->cg_name[0]) {   /* process control: the record has (had) its own cgroup */
        char path[700];
        snprintf(path, sizeof path, "%s/%s", cgroup_records_path(), p->cg_name);
        json_put_key(b, "cgroup");
        json_put_cstr(b, path);
    }
    if (p->memory_peak_bytes >= 0) {
        json_put_key(b, "memory_peak_bytes");
        json_put_int(b, p->memory_peak_bytes);
    }
    if (with_output) {
        json_put_key(b, "stdout");
        put_ring(b, p, &p->out);
        json_put_key(b, "stderr");
        put_ring(b, p, &p->err);
    }
    json_put_key(b, "stdout_bytes");
    json_put_int(b, (int64_t)p->out.total);
    json_put_key(b, "stderr_bytes");
    json_put_int(b, (int64_t)p->err.total);
    json_put_key(b, "stdout_truncated");
    json_put_bool(b, p->out.total > p->out.len);
    json_put_key(b, "stderr_truncated");
    json_put_bool(b, p->err.total > p->err.len);
    put_timeout(b, p);
    put_callback(b, p);
    buf_putc(b, '}');
}

/* A finished record is rendered once, both forms into one block, and kept on the record:
 * lists of finished records are then copies. Records whose output alone passes the cap
 * are not tried; one that fails to fit anyway is tried again next time (bounded work). */
static void put_record_cached(struct buf *b, struct proc *p, int with_output)
{
    /* a pending webhook still changes the record's callback state: not cached until settled */
    const struct hook_state *hs = hook_state(p);
    if (p->state == PROC_FINISHED && !p->cache && (!hs || hs->phase != HOOK_PENDING) &&
        p->out.len + p->err.len < LIMIT_RECORD_CACHE / 2) {
        struct buf c;
        buf_init(&c, LIMIT_RECORD_CACHE);
        put_record(&c, p, 1);
        size_t split = c.len;
        put_record(&c, p, 0);
        char *data = c.failed ? NULL : realloc(c.data, c.len);
        if (!data)
            buf_free(&c);
        proc_cache_set(p, data, c.len, split);
    }
    if (!p->cache) {
        put_record(b, p, with_output);
        return;
    }
    if (with_output)
        buf_append(b, p->cache, p->cache_split);
    else
        buf_append(b, p->cache + p->cache_split, p->cache_len - p->cache_split);
}

static void answer_fail(const struct server_request *req, struct server_reply *rep,
                        const struct fail *f)
{
    api_error(req, rep, f->status, f->code, f->msg);
}

/* The callback fields of a start request, checked and copied (hook_new) before anything
 * starts. Returns 0 with *out (NULL: no callback), or -1 after answering. */
static int check_callback(struct server_request *req, struct server_reply *rep,
                          const struct run_req *q, int required, struct hook **out)
{
    *out = NULL;
    if (!q->cb.url) {
        if (!required && !q->cb.headers.n && !q->cb.secret.p)
            return 0;
        api_error(req, rep, 400, "MISSING_PARAMETER", "'callback_url' is required");
        return -1;
    }
    /* an empty secret is no secret: nothing worth signing with */
    struct hook_request hr = { q->cb.url, q->cb.headers.keys, q->cb.headers.vals,
                               q->cb.headers.n, q->cb.secret.len ? q->cb.secret.p : NULL,
                               q->cb.secret.len };
    char why[200];
    int status;
    *out = hook_new(&hr, &status, why, sizeof why);
    if (*out)
        return 0;
    api_error(req, rep, status, status == 400 ? "INVALID_REQUEST"
                               : status == 503 ? "EXECUTION_FAILED" : "INTERNAL_ERROR", why);
    return -1;
}

/* Decodes, prepares and creates a record. Returns it, or NULL after answering.
 * callback: 0 (synchronous routes), 1 (optional: background), 2 (required: async). */
static struct proc *start_run(const struct api_ctx *c, struct server_request *req,
                              struct server_reply *rep, int is_code, int sync, int callback)
{
    struct decode_arena ar;
    struct fail f = { 0 };
    struct proc *p = NULL;
    struct run_req q;
    struct run r;
    struct proc_spec sp = { 0 };
    struct hook *hook = NULL;
    int64_t dflt_ms = (sync ? LIMIT_TIMEOUT_SYNC_S : callback == 2 ? LIMIT_TIMEOUT_ASYNC_S
                                                                   : LIMIT_TIMEOUT_BG_S) * 1000;
    if (api_run_open(c, req, rep, &ar, DECODE_ARENA_FOR(req->body_len) + 64 * 1024) < 0)
        return NULL;
    if (api_decode_body(req, rep, is_code ? &code_table : &command_table, &ar, &q, NULL) < 0)
        goto done;
    if (check_run(&ar, &q, is_code, dflt_ms, sync, c->workdir, &r, &f) < 0) {
        answer_fail(req, rep, &f);
        goto done;
    }
    if (!r.user && c->default_user)   /* --default-user */
        r.user = (char *)c->default_user;
    /* the callback is checked before the code file is written or anything starts */
    if (callback && check_callback(req, rep, &q, callback == 2, &hook) < 0)
        goto done;
    if (prepare(&ar, &r, &sp, &f) < 0 || (r.user && apply_user(&ar, &r, &sp, &f) < 0)) {
        if (r.user && sp.code_path)   /* apply_user refused after the file was written */
            unlink(sp.code_path);
        answer_fail(req, rep, &f);
        goto done;
    }
    p = proc_create(&sp);
    if (!p) {
        int err = errno;
        if (sp.code_path)
            unlink(sp.code_path);
        if (err == ENOMEM || err == EMFILE || err == ENFILE || err == EAGAIN) {
            snprintf(f.msg, sizeof f.msg, "cannot start: %s", strerror(err));
            api_error(req, rep, 503, "EXECUTION_FAILED", f.msg);
        } else {
            snprintf(f.msg, sizeof f.msg, "cannot execute '%s': %s", sp.path, strerror(err));
            api_error(req, rep, 400, "EXECUTION_FAILED", f.msg);
        }
    } else if (hook) {
        hook_attach(hook, p);
        hook = NULL;
    }
done:
    hook_discard(hook);   /* NULL once attached */
    decode_arena_close(&ar);
    return p;
}

static int answer_started(struct server_reply *rep, const struct proc *p)
{
    struct buf *b = &rep->body;
    rep->status = 200;
    buf_putc(b, '{');
    json_put_key(b, "process_id");
    json_put_cstr(b, p->id);
    json_put_key(b, "execution_id");
    json_put_cstr(b, p->exec_id);
    json_put_key(b, "status");
    json_put_cstr(b, status_name(p));
    json_put_key(b, "name");
    json_put_cstr(b, p->name);
    json_put_key(b, "pid");
    if (p->state == PROC_RUNNING)
        json_put_int(b, p->pid);
    else
        json_put_null(b);
    put_time(b, "created_at", p->created_ms);
    put_timeout(b, p);
    const struct hook_state *hs = hook_state(p);
    if (hs) {
        json_put_key(b, "callback_url");
        json_put_cstr(b, hs->url);
    }
    buf_putc(b, '}');
    return 0;
}

int api_commands_background(const struct api_ctx *c, struct server_request *req, struct server_reply *rep,
                            const char *param, size_t param_len)
{
    (void)param, (void)param_len;
    struct proc *p = start_run(c, req, rep, 0, 0, 1);
    return p ? answer_started(rep, p) : 0;
}

int api_execute_background(const struct api_ctx *c, struct server_request *req, struct server_reply *rep,
                           const char *param, size_t param_len)
{
    (void)param, (void)param_len;
    struct proc *p = start_run(c, req, rep, 1, 0, 1);
    return p ? answer_started(rep, p) : 0;
}

int api_execute_async(const struct api_ctx *c, struct server_request *req, struct server_reply *rep,
                      const char *param, size_t param_len)
{
    (void)param, (void)param_len;
    struct proc *p = start_run(c, req, rep, 1, 0, 2);
    return p ? answer_started(rep, p) : 0;
}

/* The webhook payload (API.md): what a client needs to act on the end of the run. */
int api_hook_payload(const struct proc *p, struct buf *b)
{
    buf_putc(b, '{');
    json_put_key(b, "execution_id");
    json_put_cstr(b, p->exec_id);
    json_put_key(b, "process_id");
    json_put_cstr(b, p->id);
    json_put_key(b, "status");
    json_put_cstr(b, status_name(p));
    json_put_key(b, "success");
    json_put_bool(b, p->reason == PROC_R_EXIT && p->exit_code == 0);
    json_put_key(b, "exit_code");
    if (p->exit_code >= 0)
        json_put_int(b, p->exit_code);
    else
        json_put_null(b);   /* dequeued before it ran */
    json_put_key(b, "reason");
    json_put_cstr(b, reason_name(p->reason));
    json_put_key(b, "stdout");
    put_ring(b, p, &p->out);
    json_put_key(b, "stderr");
    put_ring(b, p, &p->err);
    json_put_key(b, "stdout_truncated");
    json_put_bool(b, p->out.total > p->out.len);
    json_put_key(b, "stderr_truncated");
    json_put_bool(b, p->err.total > p->err.len);
    json_put_key(b, "execution_time");
    json_put_num(b, proc_runtime(p), 3);
    put_time(b, "started_at", p->started_ms);
    put_time(b, "completed_at", p->finished_ms);
    buf_putc(b, '}');
    return b->failed ? -1 : 0;
}

/* A synchronous run finished: answer its parked request, if the client is still there. */
static void sync_done(struct proc *p, void *ctx)
{
    uint64_t token = (uint64_t)(uintptr_t)ctx;
    struct server_reply *rep = server_parked(token);
    if (!rep)
        return;   /* the client left; the record stays like any other */
    int timed_out = p->reason == PROC_R_TIMEOUT;
    struct buf *b = &rep->body;
    char ts[25];
    util_rfc3339(p->finished_ms, ts);
    rep->status = timed_out ? 408 : 200;
    buf_reset(b);
    buf_putc(b, '{');
    json_put_key(b, "success");
    json_put_bool(b, p->reason == PROC_R_EXIT && p->exit_code == 0);
    json_put_key(b, "stdout");
    put_ring(b, p, &p->out);
    json_put_key(b, "stderr");
    put_ring(b, p, &p->err);
    json_put_key(b, "exit_code");
    if (p->exit_code >= 0)
        json_put_int(b, p->exit_code);
    else
        json_put_null(b);   /* dequeued before it ran */
    json_put_key(b, "execution_time");
    json_put_num(b, proc_runtime(p), 3);
    if (p->is_code) {
        json_put_key(b, "language");
        json_put_cstr(b, p->language);
    } else {
        json_put_key(b, "command");
        json_put_cstr(b, p->command);
    }
    json_put_key(b, "pid");
    if (p->pid > 0)
        json_put_int(b, p->pid);
    else
        json_put_null(b);
    json_put_key(b, "process_id");
    json_put_cstr(b, p->id);
    json_put_key(b, "timestamp");
    json_put_cstr(b, ts);
    json_put_key(b, "timed_out");
    json_put_bool(b, timed_out);
    json_put_key(b, "stdout_truncated");
    json_put_bool(b, p->out.total > p->out.len);
    json_put_key(b, "stderr_truncated");
    json_put_bool(b, p->err.total > p->err.len);
    json_put_key(b, "stdout_bytes");
    json_put_int(b, (int64_t)p->out.total);
    json_put_key(b, "stderr_bytes");
    json_put_int(b, (int64_t)p->err.total);
    put_timeout(b, p);
    if (timed_out) {
        json_put_key(b, "error");
        json_put_cstr(b, "execution timed out");
        json_put_key(b, "message");
        json_put_cstr(b, "execution timed out");
        json_put_key(b, "code");
        json_put_cstr(b, "EXECUTION_TIMEOUT");
    }
    buf_putc(b, '}');
    server_resume(token);
}

static int run_sync(const struct api_ctx *c, struct server_request *req, struct server_reply *rep,
                    int is_code)
{
    struct proc *p = start_run(c, req, rep, is_code, 1, 0);
    if (!p)
        return 0;
    if (p->state == PROC_FINISHED) {   /* cannot happen before the loop runs, but decide it */
        answer_started(rep, p);
        return 0;
    }
    p->on_finish = sync_done;
    p->finish_ctx = (void *)(uintptr_t)req->token;
    return SERVER_PARKED;
}

int api_commands_run(const struct api_ctx *c, struct server_request *req, struct server_reply *rep,
                     const char *param, size_t param_len)
{
    (void)param, (void)param_len;
    return run_sync(c, req, rep, 0);
}

int api_execute_run(const struct api_ctx *c, struct server_request *req, struct server_reply *rep,
                    const char *param, size_t param_len)
{
    (void)param, (void)param_len;
    return run_sync(c, req, rep, 1);
}

/* A boolean query value as people write it: true/false, 1/0, yes/no, on/off in any case;
 * present without a value ("?output") is true. -1 for anything else. */
static int query_bool(const char *v)
{
    static const char *const yes[] = { "", "true", "1", "yes", "on" };
    static const char *const no[] = { "false", "0", "no", "off" };
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
        if (!strcasecmp(v, yes[i]))
            return 1;
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        if (!strcasecmp(v, no[i]))
            return 0;
    return -1;
}

static int list_match(const struct proc *p, const char *status, const char *name)
{
    return (!status || !strcmp(status, status_name(p))) &&
           (!name || (p->name && !strcmp(name, p->name)));
}

int api_processes_list(const struct api_ctx *c, struct server_request *req, struct server_reply *rep,
                       const char *param, size_t param_len)
{
    (void)c, (void)param, (void)param_len;
    char status[16], name[256], output[8];
    int has_status = http_query_get(req->query, req->query_len, "status", status, sizeof status);
    int has_name = http_query_get(req->query, req->query_len, "name", name, sizeof name);
    int has_output = http_query_get(req->query, req->query_len, "output", output, sizeof output);
    if (has_name == -2) {
        api_error(req, rep, 400, "INVALID_REQUEST", "malformed query string");
        return 0;
    }
    for (char *q = status; has_status >= 0 && *q; q++)
        *q = (char)tolower((unsigned char)*q);
    if (has_status == -2 || (has_status >= 0 && strcmp(status, "queued") &&
                             strcmp(status, "running") && strcmp(status, "completed") &&
                             strcmp(status, "failed"))) {
        api_error(req, rep, 400, "INVALID_REQUEST",
                  "status must be queued, running, completed or failed");
        return 0;
    }
    int with_output = has_output < 0 ? 1 : query_bool(output);
    if (has_output == -2 || with_output < 0) {
        api_error(req, rep, 400, "INVALID_REQUEST", "output must be true or false");
        return 0;
    }
    const char *want_status = has_status >= 0 ? status : NULL;
    const char *want_name = has_name >= 0 ? name : NULL;
    struct buf *b = &rep->body;
    long count = 0;
    /* one allocation of about the right size: growing by doubling copied and faulted in
     * twice the bytes (a thousand records are ~0.5 MB) */
    size_t need = 64;
    for (struct proc *p = proc_first(); p; p = proc_next(p))
        if (list_match(p, want_status, want_name))
            need += 1 + (!p->cache ? 600 + (with_output ? p->out.len + p->err.len : 0)
                         : with_output ? p->cache_split : p->cache_len - p->cache_split);
    if (need <= b->max - b->len)
        buf_reserve(b, need);
    buf_puts(b, "{\"processes\":[");
    for (struct proc *p = proc_first(); p; p = proc_next(p)) {
        if (!list_match(p, want_status, want_name))
            continue;
        json_sep(b);
        put_record_cached(b, p, with_output);
        count++;
    }
    buf_puts(b, "],\"count\":");
    json_put_int(b, count);
    buf_putc(b, '}');
    return 0;
}

/* PROCESS_NOT_FOUND says "no such process": on a 404 the SDKs turn "not found" into
 * FileNotFoundError. */
static void answer_no_process(struct server_request *req, struct server_reply *rep,
                              const char *id, size_t len)
{
    char msg[120];
    snprintf(msg, sizeof msg, "no such process: %.*s", (int)(len < 64 ? len : 64), id);
    api_error(req, rep, 404, "PROCESS_NOT_FOUND", msg);
}

static struct proc *find_or_404(struct server_request *req, struct server_reply *rep,
                                const char *id, size_t len)
{
    struct proc *p = proc_find(id, len);
    if (!p)
        answer_no_process(req, rep, id, len);
    return p;
}

int api_process_get(const struct api_ctx *c, struct server_request *req, struct server_reply *rep,
                    const char *param, size_t param_len)
{
    (void)c;
    struct proc *p = find_or_404(req, rep, param, param_len);
    int waited = p ? api_stream_wait(req, rep, p) : 0;   /* ?wait=SECONDS long poll */
    if (waited == SERVER_PARKED)
        return waited;
    if (p && waited == 0)
        put_record_cached(&rep->body, p, 1);
    return 0;
}

int api_process_output(const struct api_ctx *c, struct server_request *req, struct server_reply *rep,
                       const char *param, size_t param_len)
{
    (void)c;
    struct proc *p = find_or_404(req, rep, param, param_len);
    if (!p)
        return 0;
    char stream[8] = "stdout", offs[24] = "0";
    int s = http_query_get(req->query, req->query_len, "stream", stream, sizeof stream);
    int o = http_query_get(req->query, req->query_len, "offset", offs, sizeof offs);
    char *end;
    unsigned long long offset = strtoull(offs, &end, 10);
    if (s == -2 || o == -2 || (strcmp(stream, "stdout") && strcmp(stream, "stderr")) ||
        *end || !*offs || offs[0] == '-') {
        api_error(req, rep, 400, "INVALID_REQUEST",
                  "stream must be stdout or stderr, offset a byte count");
        return 0;
    }
    const struct proc_ring *r = strcmp(stream, "stdout") ? &p->err : &p->out;
    const char *p1, *p2;
    size_t n1, n2;
    uint64_t start = proc_output(r, offset, &p1, &n1, &p2, &n2);
    buf_append(&rep->body, p1, n1);
    buf_append(&rep->body, p2, n2);
    rep->content_type = "application/octet-stream";
    buf_printf(&rep->headers, "X-Output-Start: %llu\r\nX-Output-Next-Offset: %llu\r\n"
                              "X-Process-Status: %s\r\n",
               (unsigned long long)start, (unsigned long long)(start + n1 + n2), status_name(p));
    return 0;
}

int api_process_forget(const struct api_ctx *c, struct server_request *req, struct server_reply *rep,
                       const char *param, size_t param_len)
{
    (void)c;
    struct proc *p = find_or_404(req, rep, param, param_len);
    if (!p)
        return 0;
    char id[22];
    memcpy(id, p->id, sizeof id);
    if (proc_forget(p) < 0) {
        api_error(req, rep, 409, "INVALID_REQUEST", p->pins
                  ? "the process's webhook is still being delivered; try again after it settles"
                  : "process is still running; kill it first");
        return 0;
    }
    buf_printf(&rep->body, "{\"process_id\":\"%s\",\"deleted\":true}", id);
    return 0;
}

/* Kill requests: {process_id, signal?} in the body, or the id in the path. */
struct kill_req {
    const char *process_id;
    const char *signal;   /* name or number, as text; NULL: SIGTERM */
};
#define KILL(x) offsetof(struct kill_req, x)
static const struct decode_field kill_body_fields[] = {
    { "process_id", .type = DECODE_STRING, .off = KILL(process_id), .flags = DECODE_REQUIRED },
    { "signal", .type = DECODE_SCALAR, .off = KILL(signal) },
};
static const struct decode_table kill_body_table = DECODE_TABLE(kill_body_fields);
static const struct decode_table kill_path_table = { kill_body_fields + 1, 1 };

/* A signal as clients spell it: "SIGTERM", "sigterm", "TERM", "term", "15". 0 when unknown. */
static int parse_signal(const char *s)
{
    char up[16];
    size_t n = strlen(s);
    if (n == 0 || n >= sizeof up)
        return 0;
    for (size_t i = 0; i <= n; i++)
        up[i] = (char)toupper((unsigned char)s[i]);
    int sig = proc_signal_parse(up, n);
    return sig > 0 ? sig : 0;
}

static void answer_kill(struct server_reply *rep, const struct proc *p, int sig, int rc)
{
    struct buf *b = &rep->body;
    int terminating = rc == 1 || proc_signal_is_kill(sig);
    buf_putc(b, '{');
    json_put_key(b, "process_id");
    json_put_cstr(b, p->id);
    json_put_key(b, "status");
    json_put_cstr(b, terminating ? "killed" : status_name(p));
    json_put_key(b, "signal");
    if (rc == 1)
        json_put_null(b);
    else
        json_put_cstr(b, proc_signal_name(sig));
    if (rc == 1) {
        json_put_key(b, "dequeued");
        json_put_bool(b, 1);
    }
    json_put_key(b, "message");
    json_put_cstr(b, rc == 1 ? "dequeued before it started: nothing to signal, no exit code"
                     : terminating ? "signal sent to the process group; SIGKILL follows after "
                                     "the grace period if it is still running"
                                   : "signal sent to the process group once");
    buf_putc(b, '}');
}

static int kill_common(struct server_request *req, struct server_reply *rep,
                       const struct kill_req *k, const char *id, size_t id_len)
{
    int sig = SIGTERM;
    if (k->signal && !(sig = parse_signal(k->signal))) {
        char msg[80];
        snprintf(msg, sizeof msg, "unknown signal: %.32s", k->signal);
        api_error(req, rep, 400, "INVALID_REQUEST", msg);
        return 0;
    }
    struct proc *p = find_or_404(req, rep, id, id_len);
    if (!p)
        return 0;
    int rc = proc_kill(p, sig);
    if (rc == -1) {
        char msg[80];
        snprintf(msg, sizeof msg, "process already finished: %s", p->id);
        api_error(req, rep, 404, "PROCESS_NOT_FOUND", msg);
        /* say how it ended: the body is the error object plus "status" */
        rep->body.len--;
        buf_printf(&rep->body, ",\"process_id\":\"%s\",\"status\":\"%s\"}", p->id, status_name(p));
        return 0;
    }
    if (rc == -2) {
        api_error(req, rep, 409, "INVALID_REQUEST",
                  "process is queued: only TERM, INT, QUIT or KILL (dequeue) apply before it starts");
        return 0;
    }
    answer_kill(rep, p, sig, rc);
    return 0;
}

int api_kill_body(const struct api_ctx *c, struct server_request *req, struct server_reply *rep,
                  const char *param, size_t param_len)
{
    (void)c, (void)param, (void)param_len;
    struct decode_arena ar;
    struct kill_req k;
    if (decode_arena_open(&ar, DECODE_ARENA_FOR(req->body_len)) < 0) {
        api_error(req, rep, 500, "INTERNAL_ERROR", "out of memory");
        return 0;
    }
    if (api_decode_body(req, rep, &kill_body_table, &ar, &k, NULL) == 0)
        kill_common(req, rep, &k, k.process_id, strlen(k.process_id));
    decode_arena_close(&ar);
    return 0;
}

int api_kill_path(const struct api_ctx *c, struct server_request *req, struct server_reply *rep,
                  const char *param, size_t param_len)
{
    (void)c;
    struct decode_arena ar;
    struct kill_req k;
    if (decode_arena_open(&ar, DECODE_ARENA_FOR(req->body_len)) < 0) {
        api_error(req, rep, 500, "INTERNAL_ERROR", "out of memory");
        return 0;
    }
    if (api_decode_body(req, rep, &kill_path_table, &ar, &k, NULL) == 0)
        kill_common(req, rep, &k, param, param_len);
    decode_arena_close(&ar);
    return 0;
}

/* ---- for the live streams (api_stream.c) ---- */

struct proc *api_proc_start(const struct api_ctx *c, struct server_request *req,
                            struct server_reply *rep, int is_code, int64_t dflt_timeout)
{
    /* a live stream runs as a synchronous run would (its default timeout), no callback */
    return start_run(c, req, rep, is_code, dflt_timeout != 0, 0);
}

void api_proc_record(struct buf *b, struct proc *p, int with_output)
{
    put_record_cached(b, p, with_output);
}
