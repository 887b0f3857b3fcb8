#include "api_ops.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "decode.h"
#include "envset.h"
#include "json.h"
#include "limits.h"
#include "log.h"
#include "metrics.h"
#include "proc.h"
#include "sysinfo.h"
#include "util.h"

#define PROM_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* ---- process lifecycle log ---- */

/* Ids, pids, reasons and signals only: command lines and names may carry secrets. */
static void on_proc_event(const struct proc *p, enum proc_event ev, int sig)
{
    static const char *const reasons[] = { "none", "exit", "signal", "timeout", "killed",
                                           "spawn_error" };
    const char *sname = proc_signal_name(ev == PROC_EV_KILLED ? sig : p->term_signal);
    switch (ev) {
    case PROC_EV_STARTED:
        log_line("level=info event=process_started process_id=%s pid=%d kind=%s", p->id,
                 (int)p->pid, p->is_code ? "code" : "command");
        break;
    case PROC_EV_FINISHED:
        log_line("level=info event=process_exited process_id=%s pid=%d reason=%s exit_code=%d "
                 "signal=%s runtime_ms=%lld", p->id, (int)p->pid, reasons[p->reason],
                 p->exit_code, sname ? sname : "none", (long long)(proc_runtime(p) * 1000));
        break;
    case PROC_EV_KILLED:
        log_line("level=info event=process_killed process_id=%s pid=%d signal=%s", p->id,
                 (int)p->pid, sname ? sname : "none");
        break;
    case PROC_EV_EVICTED:
        log_line("level=info event=process_evicted process_id=%s", p->id);
        break;
    case PROC_EV_OUTPUT:   /* not a lifecycle step */
        break;
    }
}

void api_ops_init(void)
{
    struct sysinfo_cpu c;
    proc_observe(on_proc_event);
    sysinfo_cpu_read(&c, util_mono_us());   /* so the first snapshot already has an interval */
}

/* ---- /env ---- */

/* {"env_vars":{...}, "count", "agent_set", "inherited"}: what a process started now gets
 * before its request's own env. */
static int answer_env(struct server_request *req, struct server_reply *rep)
{
    char **env = malloc((envset_base_max() + 1) * sizeof *env);
    if (!env) {
        api_error(req, rep, 500, "INTERNAL_ERROR", "out of memory");
        return 0;
    }
    size_t n = envset_base(env, NULL);
    struct buf *b = &rep->body;
    buf_reset(b);
    rep->status = 200;
    buf_puts(b, "{\"env_vars\":{");
    for (size_t i = 0; i < n; i++) {
        size_t klen = strcspn(env[i], "=");
        json_sep(b);
        json_put_str(b, env[i], klen);
        buf_putc(b, ':');
        json_put_cstr(b, env[i] + klen + 1);
    }
    buf_putc(b, '}');
    json_put_key(b, "count");
    json_put_int(b, (int64_t)n);
    json_put_key(b, "agent_set");
    json_put_int(b, (int64_t)envset_count());
    json_put_key(b, "inherited");
    json_put_bool(b, !envset_replaced());
    buf_putc(b, '}');
    free(env);
    return 0;
}

/* PUT /env and PATCH /env: {env_vars, merge?} */
struct env_req {
    int merge;                  /* -1: not given */
    struct decode_map vars;
};
#define ENV(x) offsetof(struct env_req, x)
static const struct decode_field env_fields[] = {
    { "merge", .type = DECODE_BOOL, .off = ENV(merge), .def_int = -1 },
    { "env_vars", .type = DECODE_MAP, .off = ENV(vars),
      .flags = DECODE_REQUIRED | DECODE_ENV | DECODE_TOO_LARGE_413, .max = LIMIT_ENV_VARS },
};
static const struct decode_table env_table = DECODE_TABLE(env_fields);

/* PUT replaces and PATCH merges, unless the body's "merge" says otherwise. */
static int env_update(struct server_request *req, struct server_reply *rep, int replace)
{
    struct decode_arena ar;
    struct env_req q;
    if (decode_arena_open(&ar, DECODE_ARENA_FOR(req->body_len)) < 0) {
        api_error(req, rep, 500, "INTERNAL_ERROR", "out of memory");
        return 0;
    }
    if (api_decode_body(req, rep, &env_table, &ar, &q, NULL) < 0)
        goto done;
    if (q.merge >= 0)
        replace = !q.merge;
    int rc = envset_update(q.vars.env, q.vars.n, replace);
    if (rc == ENVSET_E_COUNT)
        api_error(req, rep, 413, "PAYLOAD_TOO_LARGE",
                  "the agent environment would hold more than 1024 variables");
    else if (rc == ENVSET_E_BYTES)
        api_error(req, rep, 413, "PAYLOAD_TOO_LARGE",
                  "the agent environment would pass 131072 bytes");
    else if (rc < 0)
        api_error(req, rep, 500, "INTERNAL_ERROR", "out of memory");
    else
        answer_env(req, rep);
done:
    decode_arena_close(&ar);
    return 0;
}

int api_env_get(const struct api_ctx *c, struct server_request *req, struct server_reply *rep,
                const char *param, size_t param_len)
{
    (void)c, (void)param, (void)param_len;
    return answer_env(req, rep);
}

int api_env_put(const struct api_ctx *c, struct server_request *req, struct server_reply *rep,
                const char *param, size_t param_len)
{
    (void)c, (void)param, (void)param_len;
    return env_update(req, rep, 1);
}

int api_env_patch(const struct api_ctx *c, struct server_request *req, struct server_reply *rep,
                  const char *param, size_t param_len)
{
    (void)c, (void)param, (void)param_len;
    return env_update(req, rep, 0);
}

int api_env_delete(const struct api_ctx *c, struct server_request *req, struct server_reply *rep,
                   const char *param, size_t param_len)
{
    (void)c, (void)param, (void)param_len;
    envset_clear();
    return answer_env(req, rep);
}

/* DELETE /env/{key}: idempotent, like DELETE /env: an unset key answers the same. */
int api_env_delete_key(const struct api_ctx *c, struct server_request *req,
                       struct server_reply *rep, const char *param, size_t param_len)
{
    (void)c;
    char key[LIMIT_ENV_KEY_BYTES + 1];
    int n = http_percent_decode(param, param_len, key, sizeof key - 1, 0);
    if (n <= 0 || !envset_key_ok(key, (size_t)n)) {
        api_error(req, rep, 400, "INVALID_REQUEST",
                  "the key must be a variable name: non-empty, without '=' or NUL");
        return 0;
    }
    key[n] = 0;
    int rc = envset_remove(key);
    if (rc == ENVSET_E_COUNT || rc == ENVSET_E_BYTES)
        api_error(req, rep, 413, "PAYLOAD_TOO_LARGE",
                  "the inherited environment is too large to hold without this variable");
    else if (rc < 0)
        api_error(req, rep, 500, "INTERNAL_ERROR", "out of memory");
    else
        answer_env(req, rep);
    return 0;
}

/* ---- /cache ---- */

/* The agent never replays a cached result (code has side effects), so the SDK's cache calls
 * get the empty figures instead of a 404. */
int api_cache_get(const struct api_ctx *c, struct server_request *req, struct server_reply *rep,
                  const char *param, size_t param_len)
{
    (void)c, (void)req, (void)param, (void)param_len;
    char now[25];
    util_rfc3339(util_wall_ms(), now);
    buf_printf(&rep->body, "{\"cache\":{\"size\":0,\"max_size\":0,\"total_hits\":0,"
                           "\"ttl\":0,\"enabled\":false},\"timestamp\":\"%s\"}", now);
    return 0;
}

int api_cache_clear(const struct api_ctx *c, struct server_request *req,
                    struct server_reply *rep, const char *param, size_t param_len)
{
    (void)c, (void)req, (void)param, (void)param_len;
    char now[25];
    util_rfc3339(util_wall_ms(), now);
    buf_printf(&rep->body, "{\"message\":\"nothing cached: the agent never replays results\","
                           "\"entries_removed\":0,\"timestamp\":\"%s\"}", now);
    return 0;
}

/* ---- metrics ---- */

/* Everything both metrics formats report, read once. */
struct figures {
    int64_t uptime_s;
    const struct metrics_requests *rq;
    uint64_t errors;
    struct proc_counts pc;
    struct sysinfo_cpu cpu;
    struct sysinfo_mem mem;
    struct sysinfo_disk disk;
};

static void gather(const struct api_ctx *c, struct figures *f)
{
    int64_t now = util_mono_us();
    f->uptime_s = (now - c->start_mono_us) / 1000000;
    f->rq = metrics_get();
    f->errors = f->rq->by_class[4] + f->rq->by_class[5];
    proc_counts(&f->pc);
    sysinfo_cpu_read(&f->cpu, now);
    sysinfo_mem_read(&f->mem);
    sysinfo_disk_read(c->workdir, &f->disk);
}

static double percent(uint64_t part, uint64_t whole)
{
    return whole ? 100.0 * (double)part / (double)whole : 0;
}

static void put_u64(struct buf *b, const char *key, uint64_t v)
{
    json_put_key(b, key);
    json_put_int(b, (int64_t)v);
}

static void put_num(struct buf *b, const char *key, double v)
{
    json_put_key(b, key);
    json_put_num(b, v, 3);
}

int api_metrics_snapshot(const struct api_ctx *c, struct server_request *req, struct server_reply *rep,
                         const char *param, size_t param_len)
{
    (void)req, (void)param, (void)param_len;
    struct figures f;
    gather(c, &f);
    struct buf *b = &rep->body;
    char now[25];
    util_rfc3339(util_wall_ms(), now);
    buf_putc(b, '{');
    json_put_key(b, "timestamp");
    json_put_cstr(b, now);
    put_u64(b, "uptime_seconds", (uint64_t)f.uptime_s);
    put_u64(b, "total_executions", f.pc.started_total);
    put_u64(b, "active_executions", (uint64_t)f.pc.running);
    put_u64(b, "requests_total", f.rq->total);
    put_u64(b, "total_requests", f.rq->total);   /* the name getAgentMetrics() reads */
    put_u64(b, "error_count", f.errors);
    put_u64(b, "total_errors", f.errors);
    put_u64(b, "server_error_count", f.rq->by_class[5]);
    put_num(b, "avg_duration_ms", f.rq->total ? (double)f.rq->sum_us / 1000.0 / (double)f.rq->total : 0);
    put_num(b, "p50_duration_ms", metrics_quantile_ms(0.50));
    put_num(b, "p95_duration_ms", metrics_quantile_ms(0.95));
    put_num(b, "p99_duration_ms", metrics_quantile_ms(0.99));
    put_num(b, "max_duration_ms", (double)f.rq->max_us / 1000.0);
    put_u64(b, "connections", (uint64_t)server_connections());
    put_u64(b, "env_vars", envset_count());
    json_put_key(b, "process");
    buf_putc(b, '{');
    put_u64(b, "count", (uint64_t)f.pc.records);
    put_u64(b, "running", (uint64_t)f.pc.running);
    put_u64(b, "queued", (uint64_t)f.pc.queued);
    put_u64(b, "completed", (uint64_t)f.pc.completed);
    put_u64(b, "failed", (uint64_t)f.pc.failed);
    put_u64(b, "orphans_reaped", f.pc.orphans_reaped);
    put_u64(b, "output_bytes", f.pc.output_bytes);
    buf_puts(b, "}");
    json_put_key(b, "system");
    buf_puts(b, "{\"cpu\":{");
    put_num(b, "usage_percent", f.cpu.usage_percent);
    put_u64(b, "cores", (uint64_t)f.cpu.cores);
    put_num(b, "load_1m", f.cpu.load[0]);
    put_num(b, "load_5m", f.cpu.load[1]);
    put_num(b, "load_15m", f.cpu.load[2]);
    put_num(b, "interval_seconds", f.cpu.interval_s);
    buf_puts(b, "},\"memory\":{");
    put_u64(b, "total", f.mem.total);
    put_u64(b, "used", f.mem.used);
    put_u64(b, "free", f.mem.available);   /* so used + free = total */
    put_num(b, "usage_percent", percent(f.mem.used, f.mem.total));
    buf_puts(b, "},\"disk\":{");
    json_put_key(b, "path");
    json_put_cstr(b, c->workdir);
    put_u64(b, "total", f.disk.total);
    put_u64(b, "used", f.disk.used);
    put_u64(b, "free", f.disk.free);
    put_num(b, "usage_percent", percent(f.disk.used, f.disk.used + f.disk.free));
    buf_puts(b, "}}}");
    return 0;
}

/* "# HELP name help\n# TYPE name type\n" */
static void prom_head(struct buf *b, const char *name, const char *type, const char *help)
{
    buf_puts(b, "# HELP sandbox_agent_");
    buf_puts(b, name);
    buf_putc(b, ' ');
    buf_puts(b, help);
    buf_puts(b, "\n# TYPE sandbox_agent_");
    buf_puts(b, name);
    buf_putc(b, ' ');
    buf_puts(b, type);
    buf_putc(b, '\n');
}

/* One sample: "sandbox_agent_<name>[{labels}] value\n"; decimals < 0: an integer. */
static void prom_sample(struct buf *b, const char *name, const char *labels, double v,
                        int decimals)
{
    buf_puts(b, "sandbox_agent_");
    buf_puts(b, name);
    if (labels) {
        buf_putc(b, '{');
        buf_puts(b, labels);
        buf_putc(b, '}');
    }
    buf_putc(b, ' ');
    if (decimals < 0)
        json_put_int(b, (int64_t)v);
    else
        json_put_num(b, v, decimals);
    buf_putc(b, '\n');
}

/* A metric with one unlabelled sample. */
static void prom_one(struct buf *b, const char *name, const char *type, const char *help,
                     double v, int decimals)
{
    prom_head(b, name, type, help);
    prom_sample(b, name, NULL, v, decimals);
}

static void prom_requests(struct buf *b, const struct metrics_requests *rq)
{
    static const char *const classes[] = { "code=\"1xx\"", "code=\"2xx\"", "code=\"3xx\"",
                                           "code=\"4xx\"", "code=\"5xx\"" };
    prom_head(b, "http_requests_total", "counter", "HTTP requests answered, by status class.");
    for (int i = 0; i < 5; i++)
        prom_sample(b, "http_requests_total", classes[i], (double)rq->by_class[i + 1], -1);
    prom_head(b, "http_request_duration_seconds", "histogram",
              "Time from a request's first byte to the last byte of its answer.");
    uint64_t cumulative = 0;
    for (int i = 0; i < METRICS_BUCKETS; i++) {
        char le[24];
        cumulative += rq->buckets[i];
        snprintf(le, sizeof le, "le=\"%s\"", metrics_bucket_label(i));
        prom_sample(b, "http_request_duration_seconds_bucket", le, (double)cumulative, -1);
    }
    prom_sample(b, "http_request_duration_seconds_sum", NULL, (double)rq->sum_us / 1e6, 6);
    prom_sample(b, "http_request_duration_seconds_count", NULL, (double)rq->total, -1);
}

static void prom_processes(struct buf *b, const struct proc_counts *pc)
{
    prom_one(b, "processes_started_total", "counter", "Processes started.",
             (double)pc->started_total, -1);
    prom_head(b, "processes", "gauge", "Process records by status.");
    prom_sample(b, "processes", "status=\"queued\"", (double)pc->queued, -1);
    prom_sample(b, "processes", "status=\"running\"", (double)pc->running, -1);
    prom_sample(b, "processes", "status=\"completed\"", (double)pc->completed, -1);
    prom_sample(b, "processes", "status=\"failed\"", (double)pc->failed, -1);
    prom_one(b, "orphans_reaped_total", "counter", "Adopted orphan processes reaped.",
             (double)pc->orphans_reaped, -1);
    prom_one(b, "output_kept_bytes", "gauge", "Process output bytes kept over all records.",
             (double)pc->output_bytes, -1);
}

static void prom_system(struct buf *b, const struct figures *f)
{
    prom_one(b, "system_cpu_usage_percent", "gauge",
             "Busy share of all CPUs since the previous sample (at most one a second).",
             f->cpu.usage_percent, 3);
    prom_one(b, "system_cpu_cores", "gauge", "Online CPUs.", (double)f->cpu.cores, -1);
    prom_head(b, "system_load_average", "gauge", "Load averages from /proc/loadavg.");
    prom_sample(b, "system_load_average", "window=\"1m\"", f->cpu.load[0], 2);
    prom_sample(b, "system_load_average", "window=\"5m\"", f->cpu.load[1], 2);
    prom_sample(b, "system_load_average", "window=\"15m\"", f->cpu.load[2], 2);
    prom_one(b, "system_memory_total_bytes", "gauge", "MemTotal.", (double)f->mem.total, -1);
    prom_one(b, "system_memory_available_bytes", "gauge", "MemAvailable.",
             (double)f->mem.available, -1);
    prom_one(b, "system_disk_total_bytes", "gauge", "Size of the workdir's filesystem.",
             (double)f->disk.total, -1);
    prom_one(b, "system_disk_free_bytes", "gauge",
             "Bytes an unprivileged user may still write in the workdir's filesystem.",
             (double)f->disk.free, -1);
}

int api_metrics_prometheus(const struct api_ctx *c, struct server_request *req,
                           struct server_reply *rep, const char *param, size_t param_len)
{
    (void)req, (void)param, (void)param_len;
    struct figures f;
    gather(c, &f);
    struct buf *b = &rep->body;
    rep->content_type = PROM_TYPE;
    prom_head(b, "info", "gauge", "Version and build of the agent.");
    buf_puts(b, "sandbox_agent_info{version=\"" AGENT_VERSION "\",build=\"" AGENT_BUILD "\"} 1\n");
    prom_one(b, "start_time_seconds", "gauge", "Unix time the agent started.",
             (double)(c->start_wall_ms / 1000), -1);
    prom_one(b, "uptime_seconds", "gauge", "Seconds since the agent started.",
             (double)f.uptime_s, -1);
    prom_requests(b, f.rq);
    prom_one(b, "http_connections", "gauge", "Open client connections.",
             (double)server_connections(), -1);
    prom_processes(b, &f.pc);
    prom_one(b, "env_vars", "gauge", "Variables in the agent-held environment.",
             (double)envset_count(), -1);
    prom_one(b, "secret_rotations_total", "counter", "SIGHUP secret reloads that took effect.",
             (double)c->keys->rotations, -1);
    prom_system(b, &f);
    return 0;
}

/* ---- /processes ---- */

/* CPU time over lifetime, as ps's %CPU: 100 is one CPU busy all along. */
static double cpu_percent(const struct sysinfo_proc *p, double uptime_s, long hz)
{
    double age = uptime_s - (double)p->start_ticks / (double)hz;
    if (hz <= 0 || age <= 0)
        return 0;
    return 100.0 * (double)p->cpu_ticks / (double)hz / age;
}

static void put_sys_proc(struct buf *b, const struct sysinfo_proc *p, const char *passwd,
                         size_t plen, double uptime_s, long hz)
{
    char user[64];
    sysinfo_user_name(passwd, plen, p->uid, user, sizeof user);
    json_sep(b);
    buf_putc(b, '{');
    put_u64(b, "pid", (uint64_t)p->pid);
    put_u64(b, "ppid", (uint64_t)p->ppid);
    json_put_key(b, "name");
    json_put_cstr(b, p->name);
    json_put_key(b, "command");   /* as ps shows it: kernel threads as [name] */
    if (p->cmdline_len) {
        json_put_str(b, p->cmdline, p->cmdline_len);
    } else {
        char kname[sizeof p->name + 2];
        snprintf(kname, sizeof kname, "[%s]", p->name);
        json_put_cstr(b, kname);
    }
    json_put_key(b, "cmdline");
    json_put_str(b, p->cmdline, p->cmdline_len);
    json_put_key(b, "state");
    json_put_str(b, &p->state, 1);
    put_u64(b, "rss_kb", p->rss_kb);
    put_num(b, "cpu_percent", cpu_percent(p, uptime_s, hz));
    put_u64(b, "threads", (uint64_t)p->threads);
    json_put_key(b, "user");
    json_put_cstr(b, user);
    put_u64(b, "uid", (uint64_t)p->uid);
    buf_putc(b, '}');
}

int api_system_processes(const struct api_ctx *c, struct server_request *req, struct server_reply *rep,
                         const char *param, size_t param_len)
{
    (void)c, (void)param, (void)param_len;
    DIR *d = opendir("/proc");
    char *passwd = malloc(LIMIT_PASSWD_BYTES);
    struct sysinfo_proc *p = malloc(sizeof *p);
    if (!d || !passwd || !p) {
        api_error(req, rep, 500, "INTERNAL_ERROR", d ? "out of memory" : "cannot read /proc");
        goto done;
    }
    ssize_t plen = sysinfo_read_file("/etc/passwd", passwd, LIMIT_PASSWD_BYTES);
    char up[64];
    ssize_t ulen = sysinfo_read_file("/proc/uptime", up, sizeof up - 1);
    up[ulen > 0 ? ulen : 0] = 0;
    double uptime_s = strtod(up, NULL);
    long hz = sysconf(_SC_CLK_TCK);
    struct buf *b = &rep->body;
    long count = 0;
    int truncated = 0;
    buf_puts(b, "{\"processes\":[");
    /* pids come and go while we read: one that vanished between readdir and its files is
     * skipped, one that appeared after readdir passed its slot is simply not listed */
    for (struct dirent *de; (de = readdir(d));) {
        char *end;
        long pid = strtol(de->d_name, &end, 10);
        if (*end || pid <= 0)
            continue;
        if (count >= LIMIT_SYS_PROCESSES) {
            truncated = 1;
            break;
        }
        if (sysinfo_proc_read((pid_t)pid, p) < 0)
            continue;
        put_sys_proc(b, p, passwd, plen > 0 ? (size_t)plen : 0, uptime_s, hz);
        count++;
    }
    buf_puts(b, "],\"count\":");
    json_put_int(b, count);
    json_put_key(b, "truncated");
    json_put_bool(b, truncated);
    buf_putc(b, '}');
done:
    if (d)
        closedir(d);
    free(passwd);
    free(p);
    return 0;
}
