/* What the machine looks like, read from /proc and statvfs: CPU, memory, disk, and the
 * processes of the whole VM. Makes syscalls, never logs, allocates nothing. Every reader is a
 * few small reads of kernel-generated files, so none of them blocks the loop for long. */
#ifndef SANDBOX_SYSINFO_H
#define SANDBOX_SYSINFO_H
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "limits.h"

struct sysinfo_cpu {
    double usage_percent;     /* busy share of all CPUs over the sampling interval */
    double interval_s;        /* that interval; 0: the average since boot (first sample) */
    long cores;               /* online CPUs */
    double load[3];           /* 1, 5 and 15 minute load averages */
};

struct sysinfo_mem {
    uint64_t total, free, available, used;   /* bytes; used = total - available */
};

struct sysinfo_disk {
    uint64_t total, free, used;   /* bytes; free: what an unprivileged user may still write */
};

/* CPU usage from /proc/stat deltas. A sample is taken at most once per second: a call within
 * a second of the last sample reports that sample's figure, so the loop never waits to
 * measure. now_us is the monotonic clock. Returns 0, or -1 when /proc is unreadable (the
 * fields that could be read are still filled). */
int sysinfo_cpu_read(struct sysinfo_cpu *c, int64_t now_us);
/* From /proc/meminfo. Returns 0 or -1. */
int sysinfo_mem_read(struct sysinfo_mem *m);
/* statvfs of path. Returns 0 or -1 (errno). */
int sysinfo_disk_read(const char *path, struct sysinfo_disk *d);

/* One process of /proc/PID. */
struct sysinfo_proc {
    pid_t pid, ppid;
    char state;                     /* R, S, D, Z, T, ... */
    char name[64];                  /* comm, NUL-terminated */
    long threads;
    uint64_t rss_kb;
    uint64_t cpu_ticks;             /* utime + stime, in clock ticks (sysconf _SC_CLK_TCK) */
    uint64_t start_ticks;           /* when it started, ticks after boot */
    uid_t uid;
    char cmdline[LIMIT_CMDLINE_BYTES]; /* arguments joined by spaces; empty for kernel threads */
    size_t cmdline_len;
};

/* Reads /proc/pid. Returns 0, or -1 when the process is gone (or vanished while being read:
 * callers skip it). */
int sysinfo_proc_read(pid_t pid, struct sysinfo_proc *p);

/* The login name of uid in /etc/passwd text passwd[0..len) into out (NUL-terminated, cut to
 * cap - 1), or the uid in decimal when it has no entry. */
void sysinfo_user_name(const char *passwd, size_t len, uid_t uid, char *out, size_t cap);

/* Reads a small file (/proc, /etc) into buf: at most cap bytes. Returns the length or -1. */
ssize_t sysinfo_read_file(const char *path, char *buf, size_t cap);

#endif
