#include "sysinfo.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define CPU_SAMPLE_US 1000000   /* shortest interval a CPU usage figure is computed over */

/* The previous /proc/stat sample and the figure computed at it. */
static struct {
    int64_t at_us;              /* 0: none yet */
    uint64_t busy, total;
    double usage, interval_s;
} cpu_last;

ssize_t sysinfo_read_file(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t len = 0;
    ssize_t n = 0;
    while (len < cap && (n = read(fd, buf + len, cap - len)) > 0)
        len += (size_t)n;
    int err = errno;
    close(fd);
    errno = err;
    return n < 0 ? -1 : (ssize_t)len;
}

/* Decimal at *p (leading blanks skipped); advances *p past it. A sign is skipped: the
 * fields read are never negative, but their neighbours (nice, priority) may be. */
static uint64_t next_u64(const char **p)
{
    const char *s = *p;
    while (*s == ' ' || *s == '\t')
        s++;
    if (*s == '-')
        s++;
    uint64_t v = 0;
    while (*s >= '0' && *s <= '9')
        v = v * 10 + (uint64_t)(*s++ - '0');
    *p = s;
    return v;
}

/* The value of "Key:   123 kB" in /proc/meminfo-style text, in the file's unit. */
static uint64_t field_u64(const char *text, const char *key)
{
    const char *p = strstr(text, key);
    if (!p)
        return 0;
    p += strlen(key);
    return next_u64(&p);
}

int sysinfo_cpu_read(struct sysinfo_cpu *c, int64_t now_us)
{
    char text[512];
    memset(c, 0, sizeof *c);
    c->cores = sysconf(_SC_NPROCESSORS_ONLN);
    ssize_t n = sysinfo_read_file("/proc/loadavg", text, sizeof text - 1);
    if (n > 0) {
        text[n] = 0;
        char *p = text;
        for (int i = 0; i < 3; i++)
            c->load[i] = strtod(p, &p);
    }
    n = sysinfo_read_file("/proc/stat", text, sizeof text - 1);
    if (n < 5 || memcmp(text, "cpu ", 4) != 0)
        return -1;
    text[n] = 0;
    /* user nice system idle iowait irq softirq steal: guest time is already in user */
    const char *p = text + 4;
    uint64_t f[8], total = 0;
    for (int i = 0; i < 8; i++)
        total += f[i] = next_u64(&p);
    uint64_t busy = total - f[3] - f[4];
    if (!cpu_last.at_us) {
        cpu_last.usage = total ? 100.0 * (double)busy / (double)total : 0;
    } else if (now_us - cpu_last.at_us >= CPU_SAMPLE_US && total > cpu_last.total) {
        cpu_last.usage = 100.0 * (double)(busy - cpu_last.busy) / (double)(total - cpu_last.total);
        cpu_last.interval_s = (double)(now_us - cpu_last.at_us) / 1e6;
    } else {
        c->usage_percent = cpu_last.usage;
        c->interval_s = cpu_last.interval_s;
        return 0;
    }
    cpu_last.at_us = now_us;
    cpu_last.busy = busy;
    cpu_last.total = total;
    c->usage_percent = cpu_last.usage;
    c->interval_s = cpu_last.interval_s;
    return 0;
}

int sysinfo_mem_read(struct sysinfo_mem *m)
{
    char text[4096];
    memset(m, 0, sizeof *m);
    ssize_t n = sysinfo_read_file("/proc/meminfo", text, sizeof text - 1);
    if (n <= 0)
        return -1;
    text[n] = 0;
    m->total = field_u64(text, "MemTotal:") * 1024;
    m->free = field_u64(text, "MemFree:") * 1024;
    m->available = strstr(text, "MemAvailable:") ? field_u64(text, "MemAvailable:") * 1024
                                                 : m->free;   /* kernels before 3.14 */
    m->used = m->total > m->available ? m->total - m->available : 0;
    return m->total ? 0 : -1;
}

int sysinfo_disk_read(const char *path, struct sysinfo_disk *d)
{
    struct statvfs v;
    memset(d, 0, sizeof *d);
    if (statvfs(path, &v) < 0)
        return -1;
    d->total = (uint64_t)v.f_blocks * v.f_frsize;
    d->free = (uint64_t)v.f_bavail * v.f_frsize;
    d->used = (uint64_t)(v.f_blocks - v.f_bfree) * v.f_frsize;
    return 0;
}

int sysinfo_proc_read(pid_t pid, struct sysinfo_proc *p)
{
    char path[40], text[1024];
    memset(p, 0, sizeof *p);
    p->pid = pid;
    snprintf(path, sizeof path, "/proc/%d", (int)pid);
    struct stat st;
    if (stat(path, &st) < 0)
        return -1;
    p->uid = st.st_uid;
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    ssize_t n = sysinfo_read_file(path, text, sizeof text - 1);
    if (n <= 0)
        return -1;   /* gone between readdir and here: the read finds nothing */
    text[n] = 0;
    /* "pid (comm) S ppid ...": comm may hold spaces and ')', so it ends at the last ')' */
    char *open = strchr(text, '('), *close = strrchr(text, ')');
    if (!open || !close || close < open || close[1] != ' ' || !close[2])
        return -1;
    size_t nlen = (size_t)(close - open - 1);
    if (nlen >= sizeof p->name)
        nlen = sizeof p->name - 1;
    memcpy(p->name, open + 1, nlen);
    p->state = close[2];
    const char *f = close + 3;
    uint64_t v[22];   /* fields 4.. of proc(5): v[0] ppid, v[10] utime, v[11] stime,
                       * v[16] num_threads, v[18] starttime, v[20] rss */
    for (int i = 0; i < 22; i++)
        v[i] = next_u64(&f);
    p->ppid = (pid_t)v[0];
    p->threads = (long)v[16];
    p->cpu_ticks = v[10] + v[11];
    p->start_ticks = v[18];
    p->rss_kb = v[20] * (uint64_t)sysconf(_SC_PAGESIZE) / 1024;
    snprintf(path, sizeof path, "/proc/%d/cmdline", (int)pid);
    n = sysinfo_read_file(path, p->cmdline, sizeof p->cmdline - 1);
    if (n < 0)
        return -1;
    /* arguments are NUL-separated (and NUL-terminated): join them with spaces */
    while (n > 0 && p->cmdline[n - 1] == 0)
        n--;
    for (ssize_t i = 0; i < n; i++)
        if (p->cmdline[i] == 0)
            p->cmdline[i] = ' ';
    p->cmdline[n] = 0;
    p->cmdline_len = (size_t)n;
    return 0;
}

void sysinfo_user_name(const char *passwd, size_t len, uid_t uid, char *out, size_t cap)
{
    /* name:password:uid:... one entry per line */
    for (size_t i = 0; i < len;) {
        const char *line = passwd + i, *end = memchr(line, '\n', len - i);
        size_t llen = end ? (size_t)(end - line) : len - i;
        i += llen + 1;
        const char *c1 = memchr(line, ':', llen);
        const char *c2 = c1 ? memchr(c1 + 1, ':', llen - (size_t)(c1 + 1 - line)) : NULL;
        if (!c2 || c1 == line)
            continue;
        const char *u = c2 + 1;
        uint64_t id = 0;
        int digits = 0;
        while (u < line + llen && *u >= '0' && *u <= '9' && digits < 12)
            id = id * 10 + (uint64_t)(*u++ - '0'), digits++;
        if (!digits || u >= line + llen || *u != ':' || id != uid)
            continue;
        size_t n = (size_t)(c1 - line) < cap - 1 ? (size_t)(c1 - line) : cap - 1;
        memcpy(out, line, n);
        out[n] = 0;
        return;
    }
    snprintf(out, cap, "%u", (unsigned)uid);
}
