/* Process control with cgroup v2: a cgroup per process record under
 * <the agent's cgroup>/sandbox-agent/<record id>, so a kill reaches everything the process
 * started (even children that called setsid), limits apply to all of it, and an OOM kill is
 * told apart from other deaths. Where cgroup v2 is not mounted or not writable every call
 * is a no-op and the caller falls back to process groups. Makes syscalls, never logs. */
#ifndef SANDBOX_CGROUP_H
#define SANDBOX_CGROUP_H
#include <stddef.h>
#include <stdint.h>

/* Limits of one process record; 0 = none. */
struct cgroup_limits {
    int64_t memory_bytes;   /* memory.max (and memory.swap.max 0: no escape into swap) */
    int64_t pids;           /* pids.max: processes and threads at once */
    int64_t cpu_percent;    /* cpu.max: percent of one CPU (200 = two CPUs) */
};

/* Once at start: finds the agent's cgroup (/proc/self/cgroup) on a cgroup2 mount at
 * /sys/fs/cgroup, moves the agent into a leaf of its own when it is not the root (the
 * "no internal processes" rule), enables the memory, pids and cpu controllers below, and
 * creates the parent of the records' cgroups. Returns 1 when per-process cgroups are in
 * use, 0 when not; why (cap bytes) then says why not. */
int cgroup_init(char *why, size_t cap);

/* 1 after a successful cgroup_init, else 0. controller: "memory", "pids", "cpu": 1 when
 * that controller is enabled for the records' cgroups. */
int cgroup_enabled(void);
int cgroup_has(const char *controller);
/* The parent of the records' cgroups as /proc/PID/cgroup names it ("/sandbox-agent" in a
 * VM, where the agent is in the root); "" without cgroups. */
const char *cgroup_records_path(void);

#define CGROUP_NAME_MAX 24   /* "c" + a serial, NUL-terminated */

/* A cgroup for one record, with the limits set: one made ahead of time (cgroup_idle) when
 * there is one, else made now. Its name (under <the agent's cgroup>/sandbox-agent) goes
 * into name. Returns a directory descriptor (close-on-exec), or -1 with errno (ENOTSUP
 * without cgroups, EOPNOTSUPP when a limit's controller is missing). */
int cgroup_create(const struct cgroup_limits *l, char name[CGROUP_NAME_MAX]);

/* Moves the agent itself into cg, so that a child spawned now is born there: the fallback
 * where the kernel lacks clone3 with CLONE_INTO_CGROUP (before 5.7; proc.c); cgroup_leave moves it back and then sets pids.max to the
 * limit (cgroup_create left room for the agent). Returns 0 or -1 with errno. */
int cgroup_enter(int cg);
void cgroup_leave(int cg, const struct cgroup_limits *l);
/* pids.max = the limit + room (no limit: nothing to do). cgroup_create leaves room 1 for
 * the agent's cgroup_enter; a child created straight into cg (clone3 CLONE_INTO_CGROUP)
 * needs room 0 before it is born. Returns 0 or -1 with errno. */
int cgroup_pids_room(int cg, const struct cgroup_limits *l, int room);

/* SIGKILL to every process in cg (cgroup.kill, Linux 5.14+; else each pid of
 * cgroup.procs). Returns 0 or -1 with errno. */
int cgroup_kill(int cg);

/* 1 when the OOM killer killed anything in cg (memory.events oom_kill), else 0. */
int cgroup_oom_killed(int cg);
/* memory.peak in bytes (Linux 5.19+), or -1. */
int64_t cgroup_memory_peak(int cg);

/* Closes cg and queues the cgroup named name for removal by cgroup_idle, which retries
 * while processes remain in it (children left running when the record's process exited).
 * Up to LIMIT_CGROUP_LINGER names wait; past that removal is tried at once. */
void cgroup_remove(int cg, const char *name);
/* One unit of deferred work, between loop rounds: a queued removal, or one more spare
 * cgroup (up to LIMIT_CGROUP_SPARES). Returns now when more is waiting (poll without
 * sleeping), the time (monotonic us) to look at busy removals again, or -1 for nothing. */
int64_t cgroup_idle(int64_t now);

#endif
