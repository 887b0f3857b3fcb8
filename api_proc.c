#include "api_proc.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api.h"
#include "envset.h"
#include "json.h"
#include "limits.h"
#include "proc.h"
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

/* A run request, decoded. Strings live in one arena freed with the request. */
struct run {
    char *command;        /* commands */
    char **args;          /* NULL: through /bin/sh -c */
    size_t nargs;
    char *code;           /* code */
    size_t code_len;
    const struct language *lang;
    const char *lang_name;
    int64_t timeout_s;
    char *cwd;
    char *name;
    char **env;           /* "K=V", NULL-terminated, request's own */
    size_t nenv;
    struct cgroup_limits limits;   /* process control; all 0: none */
    char *user;                    /* process control: name or uid; NULL: the agent's */
};

struct arena {
    char *base;
    size_t used, cap;
};

/* Arenas up to this size live in static storage (one request decodes at a time): a malloc of
 * 64 KiB+ per run was an mmap, page faults and an munmap, ~7% of the agent's CPU per spawn.
 * Only the pages a request touches become resident. */
#define ARENA_STATIC (96 * 1024)
static char arena_static[ARENA_STATIC] __attribute__((aligned(16)));

/* ---- decoding ---- */

static void *arena_take(struct arena *ar, size_t n)
{
    n = (n + 7) & ~(size_t)7;
    if (n > ar->cap - ar->used)
        return NULL;
    void *p = ar->base + ar->used;
    ar->used += n;
    return p;
}

/* A decoded string token, NUL-terminated; *len gets its length (it may hold NULs). */
static char *arena_str(struct arena *ar, const char *s, const struct json_token *t, size_t *len)
{
    char *out = arena_take(ar, t->len + 1);
    if (!out)
        return NULL;
    size_t n = json_str_decode(s, t, out);
    out[n] = 0;
    if (len)
        *len = n;
    return out;
}

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

/* An optional string field without NUL bytes. Returns 1 found, 0 absent/null, -1 bad. */
static int get_str(const char *s, const struct json_token *t, const char *key, struct arena *ar,
                   char **out, struct fail *f)
{
    int i = json_get(s, t, 0, key);
    if (i < 0 || t[i].type == JSON_NULL)
        return 0;
    if (t[i].type != JSON_STRING)
        return fail(f, 400, "INVALID_REQUEST", "'%s' must be a string", key);
    size_t len;
    *out = arena_str(ar, s, &t[i], &len);
    if (!*out)
        return fail(f, 500, "INTERNAL_ERROR", "out of memory decoding '%s'", key);
    if (strlen(*out) != len)
        return fail(f, 400, "INVALID_REQUEST", "'%s' must not contain NUL bytes", key);
    return 1;
}

static int decode_args(const char *s, const struct json_token *t, struct arena *ar, struct run *r,
                       struct fail *f)
{
    int i = json_get(s, t, 0, "args");
    if (i < 0 || t[i].type == JSON_NULL)
        return 0;
    if (t[i].type != JSON_ARRAY)
        return fail(f, 400, "INVALID_REQUEST", "'%s' must be an array of strings", "args");
    if (t[i].size > LIMIT_ARGS)
        return fail(f, 400, "INVALID_REQUEST", "'%s' has too many entries", "args");
    r->args = arena_take(ar, (t[i].size + 2) * sizeof *r->args);
    if (!r->args)
        return fail(f, 500, "INTERNAL_ERROR", "out of memory decoding '%s'", "args");
    r->args[0] = r->command;
    for (uint32_t k = 0, e = (uint32_t)i + 1; k < t[i].size; k++, e = t[e].next) {
        size_t len;
        if (t[e].type != JSON_STRING)
            return fail(f, 400, "INVALID_REQUEST", "'%s' must be an array of strings", "args");
        char *a = arena_str(ar, s, &t[e], &len);
        if (!a)
            return fail(f, 500, "INTERNAL_ERROR", "out of memory decoding '%s'", "args");
        if (strlen(a) != len)
            return fail(f, 400, "INVALID_REQUEST", "'%s' must not contain NUL bytes", "args");
        r->args[1 + k] = a;
    }
    r->nargs = t[i].size;
    r->args[1 + r->nargs] = NULL;
    return 0;
}

static int env_key_ok(const char *k, size_t len)
{
    return len > 0 && strlen(k) == len && !strchr(k, '=');
}

static int decode_env(const char *s, const struct json_token *t, struct arena *ar, struct run *r,
                      struct fail *f)
{
    int i = json_get(s, t, 0, "env");
    if (i < 0 || t[i].type == JSON_NULL)
        return 0;
    if (t[i].type != JSON_OBJECT)
        return fail(f, 400, "INVALID_REQUEST", "'%s' must be an object of strings", "env");
    if (t[i].size > LIMIT_ENV_VARS)
        return fail(f, 400, "INVALID_REQUEST", "'%s' has too many variables", "env");
    r->env = arena_take(ar, (t[i].size + 1) * sizeof *r->env);
    if (!r->env)
        return fail(f, 500, "INTERNAL_ERROR", "out of memory decoding '%s'", "env");
    for (uint32_t k = 0, e = (uint32_t)i + 1; k < t[i].size; k++, e = t[e + 1].next) {
        size_t klen, vlen;
        char *key = arena_str(ar, s, &t[e], &klen);
        if (!key)
            return fail(f, 500, "INTERNAL_ERROR", "out of memory decoding '%s'", "env");
        if (!env_key_ok(key, klen))
            return fail(f, 400, "INVALID_REQUEST",
                        "env keys must be non-empty, without '=' or NUL (got '%s')", key);
        if (t[e + 1].type != JSON_STRING)
            return fail(f, 400, "INVALID_REQUEST", "env value of '%s' must be a string", key);
        char *val = arena_str(ar, s, &t[e + 1], &vlen);
        char *kv = val ? arena_take(ar, klen + vlen + 2) : NULL;
        if (!kv)
            return fail(f, 500, "INTERNAL_ERROR", "out of memory decoding '%s'", "env");
        if (strlen(val) != vlen)
            return fail(f, 400, "INVALID_REQUEST", "env value of '%s' must not contain NUL", key);
        memcpy(kv, key, klen);
        kv[klen] = '=';
        memcpy(kv + klen + 1, val, vlen + 1);
        r->env[r->nenv++] = kv;
    }
    r->env[r->nenv] = NULL;
    return 0;
}

static int decode_timeout(const char *s, const struct json_token *t, int64_t dflt, struct run *r,
                          struct fail *f)
{
    r->timeout_s = dflt;
    int i = json_get(s, t, 0, "timeout");
    if (i < 0 || t[i].type == JSON_NULL)
        return 0;
    double v;
    if (t[i].type != JSON_NUMBER || json_get_double(s, &t[i], &v) < 0)
        return fail(f, 400, "INVALID_REQUEST", "'%s' must be a number of seconds", "timeout");
    if (!(v >= 0) || v > LIMIT_TIMEOUT_MAX_S)
        return fail(f, 400, "INVALID_REQUEST", "'%s' must be between 0 and 604800 seconds",
                    "timeout");
    r->timeout_s = (int64_t)ceil(v);
    return 0;
}

/* working_dir (aliases workdir, cwd): must be an existing directory; relative ones are
 * taken from the agent's workdir. */
static int decode_cwd(const char *s, const struct json_token *t, struct arena *ar,
                      const char *workdir, struct run *r, struct fail *f)
{
    static const char *const keys[] = { "working_dir", "workdir", "cwd" };
    char *dir = NULL;
    for (size_t k = 0; k < 3 && !dir; k++)
        if (get_str(s, t, keys[k], ar, &dir, f) < 0)
            return -1;
    if (!dir || !*dir) {
        r->cwd = (char *)workdir;
        return 0;
    }
    if (dir[0] != '/') {
        char *abs = arena_take(ar, strlen(workdir) + strlen(dir) + 2);
        if (!abs)
            return fail(f, 500, "INTERNAL_ERROR", "out of memory decoding '%s'", "working_dir");
        sprintf(abs, "%s/%s", workdir, dir);
        dir = abs;
    }
    struct stat st;   /* "not found" is kept for FILE_NOT_FOUND (the SDKs' FileNotFoundError) */
    if (stat(dir, &st) < 0)
        return fail(f, 400, "DIRECTORY_NOT_FOUND", "no such working directory: %s", dir);
    if (!S_ISDIR(st.st_mode))
        return fail(f, 400, "DIRECTORY_NOT_FOUND", "working directory is not a directory: %s",
                    dir);
    r->cwd = dir;
    return 0;
}

/* limits: {memory_bytes, pids, cpu_percent} (process control), each a whole number in
 * range; a limit whose cgroup controller the agent lacks is a 400 (it then runs every
 * process in a process group only, as /info says), never silently ignored. */
static int decode_limits(const char *s, const struct json_token *t, struct run *r,
                         struct fail *f)
{
    static const struct {
        const char *key, *controller;
        int64_t min, max;
        size_t off;
    } fields[] = {
        { "memory_bytes", "memory", LIMIT_MEMORY_MIN, INT64_MAX / 2,
          offsetof(struct cgroup_limits, memory_bytes) },
        { "pids", "pids", 1, 4194304, offsetof(struct cgroup_limits, pids) },
        { "cpu_percent", "cpu", 1, 100000, offsetof(struct cgroup_limits, cpu_percent) },
    };
    int o = json_get(s, t, 0, "limits");
    if (o < 0 || t[o].type == JSON_NULL)
        return 0;
    if (t[o].type != JSON_OBJECT)
        return fail(f, 400, "INVALID_REQUEST", "'%s' must be an object", "limits");
    for (size_t k = 0; k < sizeof fields / sizeof fields[0]; k++) {
        int64_t v;
        int i = json_get(s, t, o, fields[k].key);
        if (i < 0 || t[i].type == JSON_NULL)
            continue;
        char msg[200];
        if (json_get_int64(s, &t[i], &v) < 0 || v < fields[k].min || v > fields[k].max) {
            snprintf(msg, sizeof msg, "'limits.%s' must be a whole number from %lld to %lld",
                     fields[k].key, (long long)fields[k].min, (long long)fields[k].max);
            return fail(f, 400, "INVALID_REQUEST", "%s", msg);
        }
        if (!cgroup_has(fields[k].controller)) {
            snprintf(msg, sizeof msg, "'limits.%s' needs cgroup v2 with the %s controller, "
                     "which this agent does not have (see process_control in /info)",
                     fields[k].key, fields[k].controller);
            return fail(f, 400, "INVALID_REQUEST", "%s", msg);
        }
        *(int64_t *)((char *)&r->limits + fields[k].off) = v;
    }
    return 0;
}

/* user: a name or a uid (string or number). Looked up when the run is prepared. */
static int decode_user(const char *s, const struct json_token *t, struct arena *ar,
                       struct run *r, struct fail *f)
{
    int i = json_get(s, t, 0, "user");
    if (i < 0 || t[i].type == JSON_NULL)
        return 0;
    if (t[i].type == JSON_NUMBER) {
        int64_t v;
        if (json_get_int64(s, &t[i], &v) < 0 || v < 0 || v > 0xfffffffe)
            return fail(f, 400, "INVALID_REQUEST", "'%s' must be a user name or a uid", "user");
        r->user = arena_take(ar, 16);
        if (!r->user)
            return fail(f, 500, "INTERNAL_ERROR", "out of memory decoding '%s'", "user");
        snprintf(r->user, 16, "%lld", (long long)v);
        return 0;
    }
    if (get_str(s, t, "user", ar, &r->user, f) < 0)
        return -1;
    if (!r->user || !*r->user || strlen(r->user) >= RUNAS_NAME_MAX)
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

/* Decodes and checks a run request: everything a client can get wrong is answered here,
 * before anything starts. */
static int decode_run(const char *s, const struct json_token *t, struct arena *ar, int is_code,
                      int64_t dflt_timeout, const char *workdir, struct run *r, struct fail *f)
{
    memset(r, 0, sizeof *r);
    if (is_code) {
        int i = json_get(s, t, 0, "code");
        if (i < 0 || t[i].type == JSON_NULL)
            return fail(f, 400, "MISSING_PARAMETER", "'%s' is required", "code");
        if (t[i].type != JSON_STRING)
            return fail(f, 400, "INVALID_REQUEST", "'%s' must be a string", "code");
        r->code = arena_str(ar, s, &t[i], &r->code_len);
        if (!r->code)
            return fail(f, 500, "INTERNAL_ERROR", "out of memory decoding '%s'", "code");
        char *lang = NULL;
        if (get_str(s, t, "language", ar, &lang, f) < 0)
            return -1;
        r->lang_name = lang && *lang ? lang : "python";
        r->lang = find_language(r->lang_name);
        if (!r->lang)
            return fail(f, 400, "INVALID_REQUEST", "unknown language: %s", r->lang_name);
    } else {
        int rc = get_str(s, t, "command", ar, &r->command, f);
        if (rc < 0)
            return -1;
        if (rc == 0 || !*r->command)
            return fail(f, 400, "MISSING_PARAMETER", "'%s' is required", "command");
        if (decode_args(s, t, ar, r, f) < 0)
            return -1;
    }
    if (decode_timeout(s, t, dflt_timeout, r, f) < 0 || decode_cwd(s, t, ar, workdir, r, f) < 0 ||
        decode_env(s, t, ar, r, f) < 0 || get_str(s, t, "name", ar, &r->name, f) < 0 ||
        decode_limits(s, t, r, f) < 0 || decode_user(s, t, ar, r, f) < 0)
        return -1;
    return 0;
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
static char **build_env(struct arena *ar, const struct run *r)
{
    char **env = arena_take(ar, (envset_base_max() + r->nenv + 3) * sizeof *env);
    if (!env)
        return NULL;
    size_t k = envset_base(env, r->env);
    for (size_t i = 0; i < r->nenv; i++)
        env[k++] = r->env[i];
    env[k] = NULL;
    if (!env_lookup(env, "PATH"))
        env[k++] = "PATH=" DEFAULT_PATH;
    if (r->lang && !strcmp(r->lang->suffix, ".py") && !env_lookup(env, "PYTHONUNBUFFERED"))
        env[k++] = "PYTHONUNBUFFERED=1";
    env[k] = NULL;
    return env;
}

/* Finds name on PATH (or as a path) as the child would. Returns 0 or an errno. */
static int which(struct arena *ar, const char *name, const char *path, char **out)
{
    if (strchr(name, '/')) {
        *out = (char *)name;
        return access(name, X_OK) == 0 ? 0 : errno;
    }
    int err = ENOENT;
    for (const char *p = path; *p;) {
        size_t len = strcspn(p, ":");
        char *cand = arena_take(ar, len + strlen(name) + 2);
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
static char *write_code(struct arena *ar, const struct run *r, struct fail *f)
{
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp)
        tmp = "/tmp";
    char *path = arena_take(ar, strlen(tmp) + 40);
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
static int apply_user(struct arena *ar, const struct run *r, struct proc_spec *sp,
                      struct fail *f)
{
    struct runas_user u;
    char *uid = arena_take(ar, 16), *gid = arena_take(ar, 16);
    char *groups = arena_take(ar, RUNAS_GROUPS_MAX * 11 + 1);
    char *vars = arena_take(ar, 3 * (RUNAS_HOME_MAX + 16));
    size_t n = 0, nenv = 0;
    while (sp->argv[n])
        n++;
    while (sp->envp[nenv])
        nenv++;
    char **argv = arena_take(ar, (n + 8) * sizeof *argv);
    char **env = arena_take(ar, (nenv + 4) * sizeof *env);
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
static int prepare(struct arena *ar, struct run *r, struct proc_spec *sp, struct fail *f)
{
    memset(sp, 0, sizeof *sp);
    char **env = build_env(ar, r);
    char **argv = arena_take(ar, 6 * sizeof *argv);
    if (!env || !argv)
        return fail(f, 500, "INTERNAL_ERROR", "%s", "out of memory");
    const char *path = env_lookup(env, "PATH");
    sp->envp = env;
    sp->cwd = r->cwd;
    sp->name = r->name;
    sp->timeout_s = r->timeout_s;
    sp->limits = &r->limits;
    if (!r->lang && !r->args) {
        argv[0] = "/bin/sh", argv[1] = "-c", argv[2] = r->command, argv[3] = NULL;
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
        char *cmd = arena_take(ar, len);
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
    if (!prog)
        return fail(f, 400, "EXECUTION_FAILED", "interpreter not installed: %s",
                    r->lang->runners[0]);
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

static void put_ring(struct buf *b, const struct proc_ring *r)
{
    const char *p1, *p2;
    size_t n1, n2;
    proc_output(r, 0, &p1, &n1, &p2, &n2);
    if (!n2) {
        json_put_str(b, p1 ? p1 : "", n1);
        return;
    }
    /* a wrapped ring: join the halves so a UTF-8 sequence across the seam stays whole */
    char *joined = malloc(n1 + n2);
    if (!joined) {
        b->failed = 1;
        return;
    }
    memcpy(joined, p1, n1);
    memcpy(joined + n1, p2, n2);
    json_put_str(b, joined, n1 + n2);
    free(joined);
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
    json_put_key(b, "pid");
    if (p->state == PROC_RUNNING)
        json_put_int(b, p->pid);
    else
        json_put_null(b);
    json_put_key(b, "exit_code");
    if (done)
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
        put_ring(b, &p->out);
        json_put_key(b, "stderr");
        put_ring(b, &p->err);
    }
    json_put_key(b, "stdout_bytes");
    json_put_int(b, (int64_t)p->out.total);
    json_put_key(b, "stderr_bytes");
    json_put_int(b, (int64_t)p->err.total);
    json_put_key(b, "stdout_truncated");
    json_put_bool(b, p->out.total > p->out.len);
    json_put_key(b, "stderr_truncated");
    json_put_bool(b, p->err.total > p->err.len);
    json_put_key(b, "timeout");
    json_put_int(b, p->timeout_s);
    buf_putc(b, '}');
}

/* A finished record is rendered once, both forms into one block, and kept on the record:
 * lists of finished records are then copies. Records whose output alone passes the cap
 * are not tried; one that fails to fit anyway is tried again next time (bounded work). */
static void put_record_cached(struct buf *b, struct proc *p, int with_output)
{
    if (p->state == PROC_FINISHED && !p->cache &&
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

/* Decodes, prepares and creates a record. Returns it, or NULL after answering. */
static struct proc *start_run(const struct api_ctx *c, struct server_request *req,
                              struct server_reply *rep, int is_code, int64_t dflt_timeout)
{
    if (*c->stopping) {   /* it would miss the SIGTERM already sent to every group */
        api_error(req, rep, 503, "EXECUTION_FAILED", "the agent is shutting down");
        return NULL;
    }
    struct json_token *t = api_parse_body(req, rep);
    if (!t)
        return NULL;
    struct arena ar = { NULL, 0, 3 * req->body_len + 64 * 1024 };
    struct fail f = { 0 };
    struct proc *p = NULL;
    struct run r;
    struct proc_spec sp = { 0 };
    ar.base = ar.cap <= ARENA_STATIC ? arena_static : malloc(ar.cap);
    if (!ar.base) {
        api_error(req, rep, 500, "INTERNAL_ERROR", "out of memory");
        goto done;
    }
    int decoded = decode_run(req->body_len ? req->body : "{}", t, &ar, is_code, dflt_timeout,
                             c->workdir, &r, &f) == 0;
    if (decoded && !r.user && c->default_user)   /* --default-user */
        r.user = (char *)c->default_user;
    if (!decoded || prepare(&ar, &r, &sp, &f) < 0 ||
        (r.user && apply_user(&ar, &r, &sp, &f) < 0)) {
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
    }
done:
    if (ar.base != arena_static)
        free(ar.base);
    free(t);
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
    buf_putc(b, '}');
    return 0;
}

int api_commands_background(const struct api_ctx *c, struct server_request *req, struct server_reply *rep,
                            const char *param, size_t param_len)
{
    (void)param, (void)param_len;
    struct proc *p = start_run(c, req, rep, 0, LIMIT_TIMEOUT_BG_S);
    return p ? answer_started(rep, p) : 0;
}

int api_execute_background(const struct api_ctx *c, struct server_request *req, struct server_reply *rep,
                           const char *param, size_t param_len)
{
    (void)param, (void)param_len;
    struct proc *p = start_run(c, req, rep, 1, LIMIT_TIMEOUT_BG_S);
    return p ? answer_started(rep, p) : 0;
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
    put_ring(b, &p->out);
    json_put_key(b, "stderr");
    put_ring(b, &p->err);
    json_put_key(b, "exit_code");
    json_put_int(b, p->exit_code);
    json_put_key(b, "execution_time");
    json_put_num(b, proc_runtime(p), 3);
    if (p->is_code) {
        json_put_key(b, "language");
        json_put_cstr(b, p->language);
    } else {
        json_put_key(b, "command");
        json_put_cstr(b, p->command);
        json_put_key(b, "pid");
        json_put_int(b, p->pid);
    }
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
    if (timed_out) {
        json_put_key(b, "error");
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
    struct proc *p = start_run(c, req, rep, is_code, LIMIT_TIMEOUT_SYNC_S);
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
    if (has_status == -2 || has_name == -2 || has_output == -2) {
        api_error(req, rep, 400, "INVALID_REQUEST", "malformed query string");
        return 0;
    }
    if (has_status >= 0 && strcmp(status, "queued") && strcmp(status, "running") &&
        strcmp(status, "completed") && strcmp(status, "failed")) {
        api_error(req, rep, 400, "INVALID_REQUEST",
                  "status must be queued, running, completed or failed");
        return 0;
    }
    int with_output = !(has_output >= 0 && (!strcmp(output, "false") || !strcmp(output, "0")));
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
    if (p)
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
        api_error(req, rep, 409, "INVALID_REQUEST", "process is still running; kill it first");
        return 0;
    }
    buf_printf(&rep->body, "{\"process_id\":\"%s\",\"deleted\":true}", id);
    return 0;
}

/* Kill by id with an optional "signal" (name or number) in the body. */
static int kill_common(struct server_request *req, struct server_reply *rep, const char *s,
                       const struct json_token *t, const char *id, size_t id_len)
{
    int sig = SIGTERM;
    int i = json_get(s, t, 0, "signal");
    if (i >= 0 && t[i].type != JSON_NULL) {
        char name[16];
        int64_t num;
        if (t[i].type == JSON_STRING && t[i].len < sizeof name) {
            size_t n = json_str_decode(s, &t[i], name);
            sig = proc_signal_parse(name, n);
        } else if (t[i].type == JSON_NUMBER && json_get_int64(s, &t[i], &num) == 0 && num > 0 &&
                   num < 65) {
            sig = proc_signal_name((int)num) ? (int)num : -1;
        } else {
            sig = -1;
        }
        if (sig <= 0) {
            api_error(req, rep, 400, "INVALID_REQUEST", "unknown signal");
            return 0;
        }
    }
    struct proc *p = find_or_404(req, rep, id, id_len);
    if (!p)
        return 0;
    if (proc_kill(p, sig) < 0) {
        char msg[80];
        snprintf(msg, sizeof msg, "process already finished: %s", p->id);
        api_error(req, rep, 404, "PROCESS_NOT_FOUND", msg);
        /* say how it ended: the body is the error object plus "status" */
        rep->body.len--;
        buf_printf(&rep->body, ",\"process_id\":\"%s\",\"status\":\"%s\"}", p->id, status_name(p));
        return 0;
    }
    struct buf *b = &rep->body;
    buf_putc(b, '{');
    json_put_key(b, "process_id");
    json_put_cstr(b, p->id);
    json_put_key(b, "status");
    json_put_cstr(b, "killed");
    json_put_key(b, "signal");
    json_put_cstr(b, proc_signal_name(sig));
    json_put_key(b, "message");
    json_put_cstr(b, "signal sent to the process group");
    buf_putc(b, '}');
    return 0;
}

int api_kill_body(const struct api_ctx *c, struct server_request *req, struct server_reply *rep,
                  const char *param, size_t param_len)
{
    (void)c, (void)param, (void)param_len;
    struct json_token *t = api_parse_body(req, rep);
    if (!t)
        return 0;
    const char *s = req->body_len ? req->body : "{}";
    int i = json_get(s, t, 0, "process_id");
    char id[32];
    if (i < 0 || t[i].type == JSON_NULL)
        api_error(req, rep, 400, "MISSING_PARAMETER", "'process_id' is required");
    else if (t[i].type != JSON_STRING || t[i].len >= sizeof id)
        answer_no_process(req, rep, "(not an id)", 11);
    else
        kill_common(req, rep, s, t, id, json_str_decode(s, &t[i], id));
    free(t);
    return 0;
}

int api_kill_path(const struct api_ctx *c, struct server_request *req, struct server_reply *rep,
                  const char *param, size_t param_len)
{
    (void)c;
    struct json_token *t = api_parse_body(req, rep);
    if (!t)
        return 0;
    kill_common(req, rep, req->body_len ? req->body : "{}", t, param, param_len);
    free(t);
    return 0;
}
