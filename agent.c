/* sandbox-agent: main, configuration, signals and the poll loop. */
#include "agent.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "api.h"
#include "api_e2b.h"
#include "api_files.h"
#include "api_ops.h"
#include "api_proc.h"
#include "cgroup.h"
#include "hook.h"
#include "init.h"
#include "initnet.h"
#include "limits.h"
#include "log.h"
#include "loop.h"
#include "proc.h"
#include "resolve.h"
#include "pysession.h"
#include "runas.h"
#include "secret.h"
#include "server.h"
#include "util.h"

#define DEFAULT_LISTEN  "0.0.0.0:7777"
#define DEFAULT_WORKDIR "/workspace"
#define TOKEN_TTL_S     3600

enum flag_kind { FLAG_STR, FLAG_LONG, FLAG_BYTES, FLAG_BOOL };

struct flag {
    const char *name;   /* --name; env SANDBOX_AGENT_NAME with '-' as '_' */
    enum flag_kind kind;
    size_t offset;      /* into struct config */
    const char *help;
};

#define CFG(field) offsetof(struct config, field)
static const struct flag flags[] = {
    { "listen", FLAG_STR, CFG(listen), "HOST:PORT to serve on (default " DEFAULT_LISTEN ", port 0 = any)" },
    { "workdir", FLAG_STR, CFG(workdir), "default working directory (default " DEFAULT_WORKDIR ")" },
    { "jwt-secret-file", FLAG_STR, CFG(secret_file), "HS256 secret file (or env SANDBOX_AGENT_JWT_SECRET)" },
    { "jwt-audience", FLAG_STR, CFG(jwt_audience), "require this aud claim" },
    { "jwt-subject", FLAG_STR, CFG(jwt_subject), "require this sub claim" },
    { "jwt-previous-grace", FLAG_LONG, CFG(jwt_prev_grace_s), "after a SIGHUP rotation, also accept the old secret this many seconds (default 0)" },
    { "log-format", FLAG_STR, CFG(log_format), "logfmt (default) or json: one object per line" },
    { "no-auth", FLAG_BOOL, CFG(no_auth), "serve without tokens (loopback addresses only)" },
    { "max-running", FLAG_LONG, CFG(max_running), "processes running at once (default 128)" },
    { "max-records", FLAG_LONG, CFG(max_records), "process records kept (default 1000)" },
    { "output-limit", FLAG_BYTES, CFG(output_limit), "bytes kept per output stream (default 1M)" },
    { "output-budget", FLAG_BYTES, CFG(output_budget), "bytes kept over all records (default 256M)" },
    { "grace", FLAG_LONG, CFG(grace_s), "seconds between SIGTERM and SIGKILL (default 5)" },
    { "terminal-keep", FLAG_LONG, CFG(terminal_keep_s), "seconds an unattached WS /terminal session waits for its client before it is hung up (default 300)" },
    { "init", FLAG_BOOL, CFG(init_mode), "be a VM's init: mounts, lo up, PATH; power off at exit" },
    { "hostname", FLAG_STR, CFG(hostname), "set the hostname at start" },
    /* webhooks (issue 16) */
    { "ca-file", FLAG_STR, CFG(ca_file), "CA bundle for https callbacks (default /etc/ssl/certs/ca-certificates.crt)" },
    { "hook-backoff-ms", FLAG_LONG, CFG(hook_backoff_ms), "first webhook retry delay, doubled per attempt (default 1000; tests)" },
    { "hook-timeout-ms", FLAG_LONG, CFG(hook_timeout_ms), "one webhook attempt's deadline (default 30000; tests)" },
    { "resolv-conf", FLAG_STR, CFG(resolv_conf), "nameservers for callback hosts (default /etc/resolv.conf)" },
    { "hosts-file", FLAG_STR, CFG(hosts_file), "host names for callbacks before DNS (default /etc/hosts)" },
    { "python-sessions", FLAG_LONG, CFG(python_sessions), "Python sessions alive at once (default 8, at most 64)" },
    { "python-idle", FLAG_LONG, CFG(python_idle_s), "seconds an unused Python session lives (default 1800)" },
    { "files-root", FLAG_STR, CFG(files_root), "confine the file endpoints beneath this directory" },
    /* VM init and process control (issues 17, 18) */
    { "modules", FLAG_STR, CFG(modules), "load the kernel modules listed in FILE, in order" },
    { "net", FLAG_STR, CFG(net), "configure IFACE=ADDR/PREFIX[,gw=GW][,mtu=N] (IPv4)" },
    { "dns", FLAG_STR, CFG(dns), "write /etc/resolv.conf naming this nameserver IP" },
    { "no-cgroups", FLAG_BOOL, CFG(no_cgroups), "process groups only, even where cgroup v2 is usable" },
    { "default-user", FLAG_STR, CFG(default_user), "run processes as this user (name or uid) unless a request names one" },
    { "e2b-listen", FLAG_STR, CFG(e2b_listen), "HOST:PORT to serve E2B's envd protocol on (default off; E2B uses 49983)" },
    { "e2b-token-file", FLAG_STR, CFG(e2b_token_file), "E2B protocol: require this X-Access-Token (default: none)" },
    { "gzip-limit", FLAG_BYTES, CFG(gzip_limit), "bytes a Content-Encoding: gzip upload may inflate to, else 413 (default 4G)" },
};
#define NFLAGS (sizeof flags / sizeof flags[0])

/* ---- configuration ---- */

static void usage(FILE *f)
{
    fprintf(f, "usage: sandbox-agent [options]\n"
               "       sandbox-agent token [--secret-file PATH] [--ttl SECONDS] [--sub S] [--aud A]\n\n"
               "options (each also as env SANDBOX_AGENT_<NAME>, flags win):\n");
    for (size_t i = 0; i < NFLAGS; i++)
        fprintf(f, "  --%-17s %s\n", flags[i].name, flags[i].help);
    fprintf(f, "  --%-17s %s\n  --%-17s %s\n", "version", "print the version", "help",
            "print this help");
}

/* "1048576", "1024k", "1m", "2G": a non-negative count, binary suffixes. */
static int parse_long(const char *s, int bytes, long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || v < 0)
        return -1;
    if (bytes && *end) {
        int shift = (*end | 32) == 'k' ? 10 : (*end | 32) == 'm' ? 20 : (*end | 32) == 'g' ? 30 : -1;
        if (shift < 0 || v > (1LL << (62 - shift)))
            return -1;
        v <<= shift;
        end++;
    }
    if (*end || v > 0x7fffffffLL * 1024)
        return -1;
    *out = (long)v;
    return 0;
}

static int set_flag(struct config *cfg, const struct flag *f, const char *val)
{
    char *field = (char *)cfg + f->offset;
    switch (f->kind) {
    case FLAG_STR:
        *(const char **)field = val;
        return 0;
    case FLAG_BOOL:
        *(int *)field = !val || strcmp(val, "0") != 0;
        return 0;
    case FLAG_LONG:
    case FLAG_BYTES:
        return parse_long(val, f->kind == FLAG_BYTES, (long *)field);
    }
    return -1;
}

static void config_defaults(struct config *cfg)
{
    *cfg = (struct config){
        .listen = DEFAULT_LISTEN,
        .workdir = DEFAULT_WORKDIR,
        .max_running = LIMIT_MAX_RUNNING,
        .max_records = LIMIT_MAX_RECORDS,
        .output_limit = LIMIT_OUTPUT_BYTES,
        .output_budget = LIMIT_OUTPUT_BUDGET,
        .grace_s = LIMIT_GRACE_S,
        .python_sessions = LIMIT_PY_SESSIONS,
        .python_idle_s = LIMIT_PY_IDLE_S,
        .terminal_keep_s = LIMIT_TERM_KEEP_S,
        .gzip_limit = LIMIT_GZIP_INFLATED,
    };
}

static int config_env(struct config *cfg)
{
    for (size_t i = 0; i < NFLAGS; i++) {
        char name[64] = "SANDBOX_AGENT_";
        size_t n = strlen(name);
        for (const char *p = flags[i].name; *p && n < sizeof name - 1; p++)
            name[n++] = *p == '-' ? '_' : (char)(*p & ~32);
        name[n] = 0;
        const char *v = getenv(name);
        if (v && *v && set_flag(cfg, &flags[i], v) < 0) {
            fprintf(stderr, "sandbox-agent: bad value for %s: '%s'\n", name, v);
            return -1;
        }
    }
    return 0;
}

/* Returns 0 to go on, 1 when --help/--version answered, -1 on a bad flag. */
static int config_flags(struct config *cfg, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            usage(stdout);
            return 1;
        }
        if (!strcmp(arg, "--version")) {
            printf("sandbox-agent %s (build %s)\n", AGENT_VERSION, AGENT_BUILD);
            return 1;
        }
        if (strncmp(arg, "--", 2) != 0) {
            fprintf(stderr, "sandbox-agent: unexpected argument '%s' (see --help)\n", arg);
            return -1;
        }
        const char *name = arg + 2, *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        const struct flag *f = NULL;
        for (size_t k = 0; k < NFLAGS; k++)
            if (strlen(flags[k].name) == nlen && !strncmp(flags[k].name, name, nlen))
                f = &flags[k];
        if (!f) {
            fprintf(stderr, "sandbox-agent: unknown flag '%s' (see --help)\n", arg);
            return -1;
        }
        const char *val = eq ? eq + 1 : NULL;
        if (!val && f->kind != FLAG_BOOL) {
            if (i + 1 >= argc) {
                fprintf(stderr, "sandbox-agent: %s needs a value\n", arg);
                return -1;
            }
            val = argv[++i];
        }
        if (set_flag(cfg, f, val) < 0) {
            fprintf(stderr, "sandbox-agent: bad value for --%s: '%s'\n", f->name, val);
            return -1;
        }
    }
    return 0;
}

/* The secret: the file's bytes with one trailing newline dropped, else the env variable. */
static int load_secret(const char *path, struct jwt_key *key)
{
    char why[200];
    int rc = secret_load(path, key, why, sizeof why);
    if (rc < 0)
        fprintf(stderr, "sandbox-agent: %s\n", why);
    return rc;
}

/* ---- listening ---- */

static int split_hostport(const char *s, char *host, size_t cap, const char **port)
{
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s)
        return -1;
    const char *h = s, *e = colon;
    if (*h == '[' && e[-1] == ']')
        h++, e--;
    if ((size_t)(e - h) >= cap)
        return -1;
    memcpy(host, h, (size_t)(e - h));
    host[e - h] = 0;
    *port = colon + 1;
    return **port ? 0 : -1;
}

static int is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
    if (sa->sa_family == AF_INET6)
        return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)sa)->sin6_addr);
    return 0;
}

/* Binds HOST:PORT; writes the bound address into addr. */
static int listen_on(const char *spec, int need_loopback, char *addr, size_t cap)
{
    char host[64];
    const char *port;
    if (split_hostport(spec, host, sizeof host, &port) < 0) {
        fprintf(stderr, "sandbox-agent: --listen wants HOST:PORT, got '%s'\n", spec);
        return -1;
    }
    /* numeric addresses only (and "localhost"): no resolver in a static init-like binary */
    struct sockaddr_storage sa = { 0 };
    struct sockaddr_in *v4 = (struct sockaddr_in *)&sa;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&sa;
    socklen_t salen;
    long pnum = strtol(port, NULL, 10);
    if (strspn(port, "0123456789") != strlen(port) || pnum > 65535) {
        fprintf(stderr, "sandbox-agent: bad port in --listen '%s'\n", spec);
        return -1;
    }
    if (!strcmp(host, "localhost"))
        strcpy(host, "127.0.0.1");
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)pnum);
        salen = sizeof *v4;
    } else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)pnum);
        salen = sizeof *v6;
    } else {
        fprintf(stderr, "sandbox-agent: --listen wants a numeric address, got '%s'\n", host);
        return -1;
    }
    if (need_loopback && !is_loopback((struct sockaddr *)&sa)) {
        fprintf(stderr, "sandbox-agent: --no-auth is allowed on loopback addresses only\n");
        return -1;
    }
    int fd = socket(sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(fd, (struct sockaddr *)&sa, salen) < 0 || listen(fd, 1024) < 0) {
        fprintf(stderr, "sandbox-agent: cannot listen on %s: %s\n", spec, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    char ip[INET6_ADDRSTRLEN] = "?";
    int bound_port = 0;
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    if (ss.ss_family == AF_INET6) {
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, ip, sizeof ip);
        bound_port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
        snprintf(addr, cap, "[%s]:%d", ip, bound_port);
    } else {
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, ip, sizeof ip);
        bound_port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        snprintf(addr, cap, "%s:%d", ip, bound_port);
    }
    return fd;
}

static int prepare_workdir(const char *dir)
{
    struct stat st;
    if (stat(dir, &st) == 0 && S_ISDIR(st.st_mode))
        return 0;
    if (mkdir(dir, 0755) == 0)
        return 0;
    fprintf(stderr, "sandbox-agent: workdir %s missing and cannot be created: %s\n", dir,
            strerror(errno));
    return -1;
}

/* ---- signals and the loop ---- */

static void init_report(void *ctx, const char *step, enum init_result r, int err)
{
    static const char *const names[] = { "done", "present", "skipped", "failed" };
    (void)ctx;
    log_line("level=%s event=init step=\"%s\" result=%s%s%s%s", r == INIT_FAILED ? "warn" : "info",
             step, names[r], err ? " reason=\"" : "", err ? strerror(err) : "", err ? "\"" : "");
}

/* Children must start with default dispositions, but ignored signals survive exec and
 * posix_spawn resets only what libc lets it: musl refuses sigaction on its reserved 32-34,
 * and GNU make, for one, runs its children with 32 and 33 ignored. So the agent resets every
 * ignored signal it inherited with the raw syscall before it starts anything. */
static void signals_reset_inherited(void)
{
    struct ksigaction {
        void *handler;
        unsigned long flags;
        void *restorer;
        unsigned long mask;
    } old, dfl = { 0 };
    for (long sig = 1; sig <= 64; sig++)
        if (syscall(SYS_rt_sigaction, sig, NULL, &old, sizeof old.mask) == 0 &&
            old.handler == (void *)SIG_IGN)
            syscall(SYS_rt_sigaction, sig, &dfl, NULL, sizeof dfl.mask);
}

static int signals_block(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    signals_reset_inherited();
    if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
        return -1;
    signal(SIGPIPE, SIG_IGN);   /* writes to gone peers fail with EPIPE instead */
    return signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
}

/* Shutdown skips processes whose group got the signal with its record already. */
static int in_record_group(void *ctx, pid_t pid, pid_t pgid)
{
    (void)ctx, (void)pid;
    for (struct proc *p = proc_first(); p; p = proc_next(p))
        if (p->state == PROC_RUNNING && !p->reaped && p->pid == pgid)
            return 1;
    return 0;
}

/* Shutdown moves one phase per SIGTERM/SIGINT or per deadline:
 *   serving -> 1  stop accepting; TERM every record's group and every other process we
 *                 reap for; in-flight requests still get their answers; up to --grace
 *   1 -> 2        grace over or a second signal: KILL all of them, then up to
 *                 LIMIT_STOP_KILL_MS to reap and send the last answers
 *   2 -> exit     that deadline, or a third signal
 * Either phase ends early once no connection, record or child is left. */
static void stop_advance(struct agent *a)
{
    int64_t now = util_mono_us();
    if (a->stopping == 0) {
        a->stopping = 1;
        a->stop_deadline_us = now + a->cfg.grace_s * 1000000;
        server_shutdown();
        proc_shutdown();
        hook_shutdown();
        pysession_shutdown();   /* interpreters hold no work worth a grace: KILL now */
        int n = init_signal_all(SIGTERM, in_record_group, NULL);
        log_line("level=info event=shutdown phase=term grace_s=%ld others=%d", a->cfg.grace_s, n);
    } else if (a->stopping == 1) {
        a->stopping = 2;
        a->stop_deadline_us = now + LIMIT_STOP_KILL_MS * 1000;
        for (struct proc *p = proc_first(); p; p = proc_next(p))
            if (p->state == PROC_RUNNING)
                proc_kill(p, SIGKILL);
        /* queued meanwhile: ending one may evict others, so walk again after each */
        for (struct proc *p = proc_first(); p;) {
            if (p->state == PROC_QUEUED) {
                proc_kill(p, SIGKILL);
                p = proc_first();
            } else {
                p = proc_next(p);
            }
        }
        int n = init_signal_all(SIGKILL, NULL, NULL);
        log_line("level=info event=shutdown phase=kill others=%d", n);
    } else {
        a->stop_deadline_us = now;
    }
}

static void on_signal(void *ctx, int fd, short revents)
{
    struct agent *a = ctx;
    (void)revents;
    /* Read several at once: a short read means the signalfd is empty, so the usual round
     * (one SIGCHLD) spends no second read to hear EAGAIN (issue 21: one syscall of ~30 per
     * /commands/run). Standard signals coalesce: 4 slots hold every one we take. */
    struct signalfd_siginfo sis[4];
    ssize_t got = (ssize_t)sizeof sis;
    size_t k = 0, nsi = 0;
    for (;;) {
        if (k == nsi) {
            if (got < (ssize_t)sizeof sis)
                break;   /* the last read was short (or failed): nothing more pending */
            got = read(fd, sis, sizeof sis);
            if (got < (ssize_t)sizeof sis[0])
                break;
            nsi = (size_t)got / sizeof sis[0];
            k = 0;
        }
        int sig = (int)sis[k++].ssi_signo;
        if (sig == SIGTERM || sig == SIGINT) {
            log_line("level=info event=signal signal=%s", sig == SIGTERM ? "SIGTERM" : "SIGINT");
            stop_advance(a);
        } else if (sig == SIGCHLD) {
            proc_reap();
        } else if (sig == SIGHUP) {
            char why[200];   /* rotation: a bad file keeps the old secret, and says why */
            int rc = secret_rotate(&a->keys, a->cfg.no_auth ? NULL : a->cfg.secret_file,
                                   a->cfg.jwt_prev_grace_s, util_mono_us(), why, sizeof why);
            if (rc < 0)
                log_line("level=error event=secret_reload result=kept_old error=\"%s\"", why);
            else
                log_line("level=info event=secret_reload result=%s previous_grace_s=%ld",
                         rc ? "rotated" : "no_secret_file", a->cfg.jwt_prev_grace_s);
        }
    }
}

static void run_loop(struct agent *a)
{
    for (;;) {
        int64_t now = util_mono_us();
        if (a->stopping) {
            struct proc_counts pc;
            proc_counts(&pc);
            if (server_connections() == 0 && pc.running == 0 && !init_has_children() &&
                !hook_busy())   /* webhooks: due deliveries go out within the grace period */
                break;
            if (now >= a->stop_deadline_us) {
                if (a->stopping == 2)
                    break;
                stop_advance(a);
            }
        }
        int64_t next = server_tick(now), pnext = proc_tick(now);
        if (pnext >= 0 && (next < 0 || pnext < next))
            next = pnext;
        pnext = hook_tick(now);
        if (pnext >= 0 && (next < 0 || pnext < next))
            next = pnext;
        if (a->stopping && (next < 0 || a->stop_deadline_us < next))
            next = a->stop_deadline_us;
        int timeout = next < 0 ? -1 : next <= now ? 0 : (int)((next - now + 999) / 1000);
        log_flush();
        if (loop_poll(timeout) < 0) {
            log_line("level=error event=poll error=\"%s\"", strerror(errno));
            break;
        }
    }
    proc_reap();   /* whatever died in the last round */
    struct proc_counts pc;
    proc_counts(&pc);
    log_line("level=info event=stopped orphans_reaped=%llu children_left=%d",
             (unsigned long long)pc.orphans_reaped, init_has_children());
    log_flush();
}

/* ---- sandbox-agent token ---- */

#define TOKEN_USAGE                                                                          \
    "usage: sandbox-agent token [--secret-file PATH] [--ttl SECONDS] [--sub S] [--aud A]\n"  \
    "Prints an HS256 token for the agent's secret (--secret-file, else env\n"              \
    "SANDBOX_AGENT_JWT_SECRET_FILE or SANDBOX_AGENT_JWT_SECRET).\n"                          \
    "  --ttl SECONDS  lifetime, a whole number > 0 (default 3600 = 1 h)\n"                   \
    "  --sub S        sub claim (for --jwt-subject)\n"                                       \
    "  --aud A        aud claim (for --jwt-audience)\n"

static int cmd_token(int argc, char **argv)
{
    const char *file = NULL, *sub = NULL, *aud = NULL;
    long ttl = TOKEN_TTL_S;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf(TOKEN_USAGE);
            return 0;
        }
    }
    for (int i = 1; i < argc; i += 2) {   /* every option takes one value */
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if ((!strcmp(argv[i], "--secret-file") || !strcmp(argv[i], "--jwt-secret-file")) && v) {
            file = v;
        } else if (!strcmp(argv[i], "--ttl") && v) {
            /* a token that is born expired (0, negative) is never what was meant */
            if (parse_long(v, 0, &ttl) < 0 || ttl <= 0) {
                fprintf(stderr, "sandbox-agent token: --ttl wants a whole number of seconds "
                                "> 0, got '%s'\n", v);
                return 2;
            }
        } else if (!strcmp(argv[i], "--sub") && v) {
            sub = v;
        } else if (!strcmp(argv[i], "--aud") && v) {
            aud = v;
        } else {
            fprintf(stderr, "sandbox-agent token: %s '%s'\n" TOKEN_USAGE,
                    v ? "unknown option" : "missing value for", argv[i]);
            return 2;
        }
    }
    if (!file)
        file = getenv("SANDBOX_AGENT_JWT_SECRET_FILE");
    struct jwt_key key;
    int have = load_secret(file && *file ? file : NULL, &key);
    if (have <= 0) {
        if (have == 0)
            fprintf(stderr, "sandbox-agent: no secret: pass --secret-file or set SANDBOX_AGENT_JWT_SECRET\n");
        return 2;
    }
    int64_t now = util_wall_ms() / 1000;
    struct buf claims;
    buf_init(&claims, 2048);
    buf_putc(&claims, '{');
    json_put_key(&claims, "iat");
    json_put_int(&claims, now);
    json_put_key(&claims, "exp");
    json_put_int(&claims, now + ttl);
    if (sub) {
        json_put_key(&claims, "sub");
        json_put_cstr(&claims, sub);
    }
    if (aud) {
        json_put_key(&claims, "aud");
        json_put_cstr(&claims, aud);
    }
    buf_putc(&claims, '}');
    char token[LIMIT_TOKEN_BYTES + 1];
    int n = claims.failed ? -1 : jwt_sign(&key, claims.data, claims.len, token, sizeof token);
    buf_free(&claims);
    if (n < 0) {
        fprintf(stderr, "sandbox-agent: token too long\n");
        return 2;
    }
    printf("%s\n", token);
    return 0;
}

/* --net and --dns are checked before anything is changed: a typo is a usage error. */
static int config_check(struct config *cfg, struct initnet *net)
{
    struct in_addr ip;
    if (cfg->net && initnet_parse(cfg->net, net) < 0) {
        fprintf(stderr, "sandbox-agent: --net wants IFACE=ADDR/PREFIX[,gw=GW][,mtu=N], got '%s'\n",
                cfg->net);
        return -1;
    }
    if (cfg->dns && inet_pton(AF_INET, cfg->dns, &ip) != 1 &&
        inet_pton(AF_INET6, cfg->dns, &ip) != 1) {
        fprintf(stderr, "sandbox-agent: --dns wants an IP address, got '%s'\n", cfg->dns);
        return -1;
    }
    return 0;
}

/* The system steps, each logged: mounts and the rest of --init, modules, network, DNS. */
static void system_up(const struct config *cfg, const struct initnet *net)
{
    if (cfg->init_mode || cfg->hostname)
        init_system(cfg->init_mode, cfg->hostname, init_report, NULL);
    if (cfg->modules)
        init_modules(cfg->modules, init_report, NULL);
    if (cfg->net)
        initnet_configure(net, LIMIT_NET_WAIT_MS, init_report, NULL);
    if (cfg->dns)
        init_dns(cfg->dns, init_report, NULL);
    log_flush();
}

/* What the request handlers may see of the agent (api.h): copies of the settings, and
 * read-only pointers to what changes while running. */
static void api_ctx_fill(struct agent *a)
{
    struct api_ctx *c = &a->api;
    c->workdir = a->cfg.workdir;
    c->listen_addr = a->listen_addr;
    c->log_format = a->cfg.log_format ? a->cfg.log_format : "logfmt";
    c->secret_source = a->cfg.no_auth ? "none" : a->cfg.secret_file ? "file" : "env";
    c->no_auth = a->cfg.no_auth;
    c->jwt_audience = a->cfg.jwt_audience;
    c->jwt_subject = a->cfg.jwt_subject;
    c->jwt_prev_grace_s = a->cfg.jwt_prev_grace_s;
    c->keys = &a->keys;
    c->max_running = a->cfg.max_running;
    c->max_records = a->cfg.max_records;
    c->output_limit = a->cfg.output_limit;
    c->output_budget = a->cfg.output_budget;
    c->grace_s = a->cfg.grace_s;
    c->terminal_keep_s = a->cfg.terminal_keep_s;
    c->pid1 = a->pid1;
    c->start_wall_ms = a->start_wall_ms;
    c->start_mono_us = a->start_mono_us;
    c->stopping = &a->stopping;
    c->default_user = a->cfg.default_user;
    c->gzip_limit = (uint64_t)a->cfg.gzip_limit;
}

static void hook_settled(const struct proc *p, const struct hook_state *st)
{
    log_line("level=%s event=webhook process_id=%s state=%s attempts=%d status=%d%s%s%s",
             st->phase == HOOK_DELIVERED ? "info" : "warn", p->id,
             st->phase == HOOK_DELIVERED ? "delivered" : "failed", st->attempts, st->last_status,
             st->last_error ? " error=\"" : "", st->last_error ? st->last_error : "",
             st->last_error ? "\"" : "");
}

/* Webhooks: the HopX headers, the payload from the HopX front-end, trust anchors. A
 * missing or unusable CA bundle is not fatal (a sandbox without one still runs code):
 * https callbacks are then refused with 400, and the log says why at start. */
static void hooks_init(struct agent *a)
{
    static const char agent_name[] = "sandbox-agent/" AGENT_VERSION;
    struct hook_config hc = { a->cfg.ca_file, a->cfg.hook_backoff_ms, a->cfg.hook_timeout_ms,
                              agent_name,
                              "X-HopX-Timestamp", "X-HopX-Signature", api_hook_payload,
                              hook_settled };
    char why[300] = "";
    resolve_init(a->cfg.hosts_file, a->cfg.resolv_conf);
    int n = hook_init(&hc, why, sizeof why);
    if (n == 0)
        log_line("level=warn event=webhooks https=off reason=\"%s\"", why);
    else
        log_line("level=info event=webhooks https=on trust_anchors=%d", n);
}

/* ---- main: a checklist ---- */

/* A VM's init that returns panics the kernel: whatever ends the agent (a stop, or a setup
 * error already on the console), the machine powers off instead. */
static void poweroff_at_exit(void)
{
    if (!init_is_vm())
        return;
    log_line("level=info event=poweroff");
    log_flush();
    init_poweroff();
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "token"))
        return cmd_token(argc - 1, argv + 1);
    if (argc > 1 && !strcmp(argv[1], "exec-as"))   /* a run with `user` on its way (runas.h) */
        return runas_exec_main(argc - 1, argv + 1);

    static struct agent a;
    struct initnet net;
    config_defaults(&a.cfg);
    if (config_env(&a.cfg) < 0)
        return 2;
    int rc = config_flags(&a.cfg, argc, argv);
    if (rc)
        return rc > 0 ? 0 : 2;
    if (a.cfg.init_mode)
        atexit(poweroff_at_exit);
    if (log_set_format(a.cfg.log_format) < 0) {
        fprintf(stderr, "sandbox-agent: --log-format wants logfmt or json\n");
        return 2;
    }
    if (config_check(&a.cfg, &net) < 0)
        return 2;
    /* early: the kernel drops a signal sent to a namespace's init while it is unblocked at
     * SIG_DFL, but never a blocked one (sig_ignored()), so blocking alone makes SIGTERM
     * from inside the namespace and from the host arrive at the signalfd; no handlers.
     * Before the system steps, so a stop asked for while --net waits is kept. */
    int sfd = signals_block();
    system_up(&a.cfg, &net);
    char why[200];   /* process control: a cgroup per record where cgroup v2 is writable */
    if (a.cfg.no_cgroups)
        snprintf(why, sizeof why, "--no-cgroups");
    if (!a.cfg.no_cgroups && cgroup_init(why, sizeof why))
        log_line("level=info event=process_control mode=cgroup2");
    else
        log_line("level=info event=process_control mode=process_groups reason=\"%s\"", why);

    int have = load_secret(a.cfg.secret_file, &a.keys.key);
    if (have < 0)
        return 2;
    a.keys.have_key = have;
    if (!have && !a.cfg.no_auth) {
        fprintf(stderr, "sandbox-agent: no JWT secret: pass --jwt-secret-file PATH or set "
                        "SANDBOX_AGENT_JWT_SECRET (or --no-auth on loopback)\n");
        return 2;
    }
    if (prepare_workdir(a.cfg.workdir) < 0 || api_files_init(a.cfg.files_root, a.cfg.workdir) < 0)
        return 2;

    int lfd = listen_on(a.cfg.listen, a.cfg.no_auth, a.listen_addr, sizeof a.listen_addr);
    if (lfd < 0)
        return 2;
    char e2b_addr[80] = "";
    int e2b_fd = -1;   /* E2B's envd protocol has its own token (or none): any address */
    if (a.cfg.e2b_listen && *a.cfg.e2b_listen &&
        (e2b_fd = listen_on(a.cfg.e2b_listen, 0, e2b_addr, sizeof e2b_addr)) < 0)
        return 2;
    a.pid1 = init_reaper();
    if (a.pid1 < 0)   /* orphans of children then go to the real init: still reaped */
        log_line("level=warn event=reaper mode=none error=\"%s\"", strerror(errno));
    else
        log_line("level=info event=reaper mode=%s", a.pid1 ? "pid1" : "subreaper");
    if (sfd < 0 || loop_init() < 0) {
        fprintf(stderr, "sandbox-agent: setup failed: %s\n", strerror(errno));
        return 1;
    }
    a.start_wall_ms = util_wall_ms();
    a.start_mono_us = util_mono_us();
    struct proc_limits pl = { a.cfg.max_running, a.cfg.max_records, (size_t)a.cfg.output_limit,
                              (size_t)a.cfg.output_budget, a.cfg.grace_s * 1000000 };
    proc_init(&pl);
    struct pysession_limits pyl = { a.cfg.python_sessions, a.cfg.python_idle_s * 1000000,
                                    (int64_t)LIMIT_PY_GRACE_MS * 1000, (size_t)a.cfg.output_limit };
    pysession_init(&pyl);
    api_ops_init();
    log_init();
    hooks_init(&a);
    api_ctx_fill(&a);
    server_on_reply(api_on_reply);   /* Idempotency-Key answers (idem.h) */
    if (server_start(lfd, api_handle, &a.api) < 0 || loop_add(sfd, POLLIN, on_signal, &a) < 0) {
        fprintf(stderr, "sandbox-agent: setup failed: %s\n", strerror(errno));
        return 1;
    }

    if (e2b_fd >= 0 && (api_e2b_init(&a.api, a.cfg.e2b_token_file) < 0 ||
                        server_listen_second(e2b_fd, api_e2b_handle, api_e2b_body_hook, NULL) < 0)) {
        fprintf(stderr, "sandbox-agent: E2B listener setup failed\n");
        return 1;
    }

    printf("listening on %s\n", a.listen_addr);
    if (e2b_fd >= 0)
        printf("e2b listening on %s\n", e2b_addr);
    fflush(stdout);
    log_line("level=info event=start version=%s listen=%s pid=%d auth=%s", AGENT_VERSION,
             a.listen_addr, (int)getpid(), a.cfg.no_auth ? "none" : "jwt");
    run_loop(&a);
    return 0;
}
