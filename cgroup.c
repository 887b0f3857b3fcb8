#include "cgroup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "limits.h"

#define CGROUP2_SUPER_MAGIC 0x63677270   /* include/uapi/linux/magic.h */
#define CGROUP_ROOT "/sys/fs/cgroup"
#define RECORDS_DIR "sandbox-agent"      /* the records' cgroups live under this one */
#define CPU_PERIOD_US 100000             /* cpu.max period: the kernel's default */

static int records_fd = -1;              /* <agent's cgroup>/sandbox-agent */
static char records_path[600];           /* its path as /proc/PID/cgroup shows it */
static int home_fd = -1;                 /* where the agent itself lives (cgroup_leave) */
static int have_memory, have_pids, have_cpu;
/* Creating and removing a cgroup costs about as much as a spawn (kernfs, controller state;
 * ~10 ms each under TCG), so neither happens on a request's path: records take a cgroup
 * made ahead of time, and the removal of theirs waits; cgroup_idle does one of those at a
 * time between loop rounds. */
struct spare {
    int fd;
    char name[CGROUP_NAME_MAX];
};
static struct spare spares[LIMIT_CGROUP_SPARES];
static int nspares;
static unsigned long long next_serial;
static char linger[LIMIT_CGROUP_LINGER][CGROUP_NAME_MAX];   /* to remove, oldest first */
static int nlinger;
static int linger_new;                   /* queued since the last scan found all busy */
static int64_t linger_retry_us;          /* when busy ones are looked at again */

/* ---- helpers ---- */

static int write_at(int dirfd, const char *file, const char *text)
{
    int fd = openat(dirfd, file, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = write(fd, text, strlen(text));
    int e = errno;
    close(fd);
    errno = e;
    return n == (ssize_t)strlen(text) ? 0 : -1;
}

/* Reads a small file into buf (NUL-terminated). Returns the length or -1. */
static ssize_t read_at(int dirfd, const char *file, char *buf, size_t cap)
{
    int fd = openat(dirfd, file, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, cap - 1);
    close(fd);
    if (n < 0)
        return -1;
    buf[n] = 0;
    return n;
}

/* The agent's own cgroup path from /proc/self/cgroup's "0::/path" line (cgroup v2). */
static int own_path(char *out, size_t cap)
{
    char buf[1024];
    ssize_t n = read_at(AT_FDCWD, "/proc/self/cgroup", buf, sizeof buf);
    if (n <= 0)
        return -1;
    char *line = strstr(buf, "0::");
    if (!line || (line != buf && line[-1] != '\n'))
        return -1;
    line += 3;
    size_t len = strcspn(line, "\n");
    if (len == 0 || len >= cap)
        return -1;
    memcpy(out, line, len);
    out[len] = 0;
    return 0;
}

/* Enables each controller the parent offers; remembers which took. */
static void enable_controllers(int dirfd)
{
    have_memory = write_at(dirfd, "cgroup.subtree_control", "+memory") == 0;
    have_pids = write_at(dirfd, "cgroup.subtree_control", "+pids") == 0;
    have_cpu = write_at(dirfd, "cgroup.subtree_control", "+cpu") == 0;
}

static int set_limits(int cg, const struct cgroup_limits *l)
{
    char v[48];
    if (l->memory_bytes) {
        snprintf(v, sizeof v, "%" PRId64, l->memory_bytes);
        if (write_at(cg, "memory.max", v) < 0)
            return -1;
        write_at(cg, "memory.swap.max", "0");   /* absent without swap accounting: fine */
    }
    if (have_memory)   /* an OOM kill ends the whole record, not one process of it */
        write_at(cg, "memory.oom.group", "1");
    if (l->pids) {   /* + 1: the agent itself is in it while it spawns (cgroup_leave) */
        snprintf(v, sizeof v, "%" PRId64, l->pids + 1);
        if (write_at(cg, "pids.max", v) < 0)
            return -1;
    }
    if (l->cpu_percent) {
        snprintf(v, sizeof v, "%" PRId64 " %d", l->cpu_percent * CPU_PERIOD_US / 100,
                 CPU_PERIOD_US);
        if (write_at(cg, "cpu.max", v) < 0)
            return -1;
    }
    return 0;
}

/* Cgroups an earlier run of the agent left (it was killed, or its processes outlived it):
 * the empty ones go; one still holding processes stays (removing it would need a kill). */
static void sweep_leftovers(void)
{
    int fd = dup(records_fd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0)
            close(fd);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_type == DT_DIR && e->d_name[0] == 'c')
            unlinkat(records_fd, e->d_name, AT_REMOVEDIR);
    closedir(d);
}

/* One more spare cgroup ("c" + a serial). Returns 0 or -1 with errno. */
static int spare_make(void)
{
    struct spare *sp = &spares[nspares];
    for (int tries = 0; tries < 100; tries++) {
        snprintf(sp->name, sizeof sp->name, "c%llu", ++next_serial);
        if (mkdirat(records_fd, sp->name, 0755) == 0)
            break;
        if (errno != EEXIST)   /* EEXIST: left by an earlier run of the agent */
            return -1;
    }
    sp->fd = openat(records_fd, sp->name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (sp->fd < 0) {
        int e = errno;
        unlinkat(records_fd, sp->name, AT_REMOVEDIR);
        errno = e;
        return -1;
    }
    nspares++;
    return 0;
}

/* ---- API ---- */

int cgroup_init(char *why, size_t cap)
{
    struct statfs sf;
    char path[512], full[600];
    if (statfs(CGROUP_ROOT, &sf) < 0 || sf.f_type != CGROUP2_SUPER_MAGIC) {
        snprintf(why, cap, "no cgroup2 mounted on " CGROUP_ROOT);
        return 0;
    }
    if (own_path(path, sizeof path) < 0) {
        snprintf(why, cap, "/proc/self/cgroup names no cgroup2 path");
        return 0;
    }
    snprintf(full, sizeof full, CGROUP_ROOT "%s", strcmp(path, "/") ? path : "");
    int base = open(full, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (base < 0) {
        snprintf(why, cap, "cannot open %s: %s", full, strerror(errno));
        return 0;
    }
    home_fd = dup(base);
    if (strcmp(path, "/") != 0) {
        /* a non-root cgroup with processes cannot enable controllers for its children:
         * the agent moves into a leaf beside the records first */
        char pid[16];
        snprintf(pid, sizeof pid, "%d", (int)getpid());
        close(home_fd);
        home_fd = -1;
        if ((mkdirat(base, "agent", 0755) < 0 && errno != EEXIST) ||
            (home_fd = openat(base, "agent", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 ||
            write_at(home_fd, "cgroup.procs", pid) < 0) {
            snprintf(why, cap, "cannot move the agent into %s/agent: %s", full, strerror(errno));
            goto fail;
        }
    }
    enable_controllers(base);
    if ((mkdirat(base, RECORDS_DIR, 0755) < 0 && errno != EEXIST) ||
        (records_fd = openat(base, RECORDS_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        snprintf(why, cap, "cannot create %s/" RECORDS_DIR ": %s", full, strerror(errno));
        goto fail;
    }
    enable_controllers(records_fd);
    sweep_leftovers();
    snprintf(records_path, sizeof records_path, "%s/" RECORDS_DIR, strcmp(path, "/") ? path : "");
    close(base);
    return 1;
fail:
    close(base);
    if (home_fd >= 0)
        close(home_fd);
    home_fd = -1;
    have_memory = have_pids = have_cpu = 0;
    return 0;
}

int cgroup_enabled(void)
{
    return records_fd >= 0;
}

const char *cgroup_records_path(void)
{
    return records_path;
}

int cgroup_has(const char *c)
{
    return records_fd >= 0 && (!strcmp(c, "memory") ? have_memory : !strcmp(c, "pids") ? have_pids
                                                     : !strcmp(c, "cpu") ? have_cpu : 0);
}

int cgroup_create(const struct cgroup_limits *l, char name[CGROUP_NAME_MAX])
{
    if (records_fd < 0) {
        errno = ENOTSUP;
        return -1;
    }
    if ((l->memory_bytes && !have_memory) || (l->pids && !have_pids) ||
        (l->cpu_percent && !have_cpu)) {
        errno = EOPNOTSUPP;
        return -1;
    }
    if (nspares == 0 && spare_make() < 0)
        return -1;
    struct spare sp = spares[--nspares];
    strcpy(name, sp.name);
    if (set_limits(sp.fd, l) < 0) {
        int e = errno;
        cgroup_remove(sp.fd, sp.name);
        errno = e;
        return -1;
    }
    return sp.fd;
}

int cgroup_enter(int cg)
{
    char pid[16];
    snprintf(pid, sizeof pid, "%d", (int)getpid());
    return write_at(cg, "cgroup.procs", pid);
}

void cgroup_leave(int cg, const struct cgroup_limits *l)
{
    char v[24];
    snprintf(v, sizeof v, "%d", (int)getpid());
    if (home_fd >= 0)
        write_at(home_fd, "cgroup.procs", v);
    cgroup_pids_room(cg, l, 0);
}

int cgroup_pids_room(int cg, const struct cgroup_limits *l, int room)
{
    char v[24];
    if (!l->pids)
        return 0;
    snprintf(v, sizeof v, "%" PRId64, l->pids + room);
    return write_at(cg, "pids.max", v);
}

int cgroup_kill(int cg)
{
    if (write_at(cg, "cgroup.kill", "1") == 0)
        return 0;
    if (errno != ENOENT)
        return -1;
    char buf[4096];   /* before 5.14: one pass over the pids (a fork racing it is rare) */
    if (read_at(cg, "cgroup.procs", buf, sizeof buf) < 0)
        return -1;
    for (char *p = buf, *end; *p; p = end) {
        long pid = strtol(p, &end, 10);
        if (end == p)
            break;
        if (pid > 0)
            kill((pid_t)pid, SIGKILL);
    }
    return 0;
}

int cgroup_oom_killed(int cg)
{
    char buf[512];
    if (read_at(cg, "memory.events", buf, sizeof buf) < 0)
        return 0;
    char *k = strstr(buf, "oom_kill ");
    return k && (k == buf || k[-1] == '\n') && strtoll(k + 9, NULL, 10) > 0;
}

int64_t cgroup_memory_peak(int cg)
{
    char buf[32];
    if (read_at(cg, "memory.peak", buf, sizeof buf) <= 0)
        return -1;
    return strtoll(buf, NULL, 10);
}

void cgroup_remove(int cg, const char *name)
{
    if (cg >= 0)
        close(cg);
    if (records_fd < 0)
        return;
    if (nlinger < LIMIT_CGROUP_LINGER) {
        strcpy(linger[nlinger++], name);
        linger_new = 1;
    } else {
        unlinkat(records_fd, name, AT_REMOVEDIR);   /* a backlog that long: at once */
    }
}

int64_t cgroup_idle(int64_t now)
{
    if (records_fd < 0)
        return -1;
    /* one removal that can happen now; cgroups still holding processes a record left
     * behind are busy: looked at again when one more is queued, else after a while */
    if (nlinger && (linger_new || now >= linger_retry_us)) {
        for (int i = 0; i < nlinger; i++) {
            if (unlinkat(records_fd, linger[i], AT_REMOVEDIR) < 0 && errno == EBUSY)
                continue;
            memmove(linger[i], linger[i + 1], (size_t)(nlinger - i - 1) * sizeof linger[0]);
            nlinger--;
            return now;
        }
        linger_new = 0;
        linger_retry_us = now + LIMIT_CGROUP_RETRY_MS * 1000;
    }
    if (nspares < LIMIT_CGROUP_SPARES && spare_make() == 0 && nspares < LIMIT_CGROUP_SPARES)
        return now;
    return nlinger ? linger_retry_us : -1;
}
