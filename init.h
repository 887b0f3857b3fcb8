/* Being init: reaper setup, the --init system bring-up (mounts, lo, hostname) for a VM's
 * /sbin/init, and signalling the processes the agent is responsible for at shutdown.
 * Makes syscalls, never logs: each bring-up step is reported to the caller's callback. */
#ifndef SANDBOX_INIT_H
#define SANDBOX_INIT_H
#include <sys/types.h>

/* Makes the agent the reaper of its descendants' orphans. Returns 1 when it is PID 1 (the
 * kernel reparents every orphan of the namespace to it already), 0 when it became a child
 * subreaper (prctl PR_SET_CHILD_SUBREAPER), -1 with errno when that failed. */
int init_reaper(void);

enum init_result {
    INIT_DONE,       /* the step was carried out */
    INIT_PRESENT,    /* already in place: nothing to do */
    INIT_SKIPPED,    /* not permitted here (EPERM, EACCES, EROFS) or unsafe (a non-empty dir) */
    INIT_FAILED      /* any other error; the next steps run anyway */
};

/* step: "mount /proc", "lo up", "hostname"...; err: errno for SKIPPED/FAILED, else 0. */
typedef void init_report_fn(void *ctx, const char *step, enum init_result result, int err);

/* --init: mounts /proc, /sys, /dev (devtmpfs), /dev/pts, /dev/shm, /tmp, /run and cgroup2 on
 * /sys/fs/cgroup where they are not mount points (a tmpfs never hides a non-empty /tmp or
 * /run), reopens closed stdio on /dev/console, brings up lo, sets a default PATH when there
 * is none, and as a VM's init turns Ctrl-Alt-Del into SIGINT. Sets the hostname when
 * hostname is not NULL (with or without the rest: mounts is 0 or 1). Every step is
 * reported once, in order. */
void init_system(int mounts, const char *hostname, init_report_fn *report, void *ctx);

/* --modules FILE: loads the kernel modules FILE lists (one path a line, relative to FILE's
 * directory unless absolute; blank lines and '#' comments skipped; at most
 * LIMIT_MODULES_LIST_BYTES), in order, with finit_module. Each module is a step ("module
 * virtio_net.ko": PRESENT when already loaded or built in); a failed one does not stop the
 * next, since a NIC needs only its own chain. Returns -1 when the list cannot be read,
 * else 0 (whether each module loaded is in its report). */
int init_modules(const char *list, init_report_fn *report, void *ctx);

/* --dns IP: writes /etc/resolv.conf ("nameserver IP"), replacing it atomically. ip is a
 * validated address. One step, "dns". */
void init_dns(const char *ip, init_report_fn *report, void *ctx);

/* At shutdown: is this process being asked to signal pid (whose group is pgid)? Return 1
 * to skip it (its group was signalled already), 0 to signal it. */
typedef int init_skip_fn(void *ctx, pid_t pid, pid_t pgid);

/* Sends sig to every process the agent must stop at shutdown, but those skip claims: as
 * PID 1 every other process of the namespace but kernel threads (kill(-1) when /proc cannot
 * be read), else the agent's direct children (its own and adopted orphans). Returns the number signalled. */
int init_signal_all(int sig, init_skip_fn *skip, void *ctx);

/* 1 while the agent has any child (running or not yet reaped), else 0. Reaps nothing. */
int init_has_children(void);

/* 1 when this process is PID 1 of the initial PID namespace (a VM's real init), else 0. */
int init_is_vm(void);

/* With --init as PID 1 of the initial PID namespace (a VM's real init, where exiting would
 * panic the kernel): sync and power off. Returns (doing nothing) anywhere else, e.g. in a
 * container or a PID namespace, so the caller then exits. */
void init_poweroff(void);

#endif
