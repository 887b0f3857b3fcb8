#include "init.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "limits.h"

/* The inode of the initial PID namespace's nsfs entry: fixed by the kernel
 * (include/linux/proc_ns.h, PROC_PID_INIT_INO) since Linux 3.8. */
#define PID_INIT_INO 0xEFFFFFFCu

#ifndef MODULE_INIT_COMPRESSED_FILE
#define MODULE_INIT_COMPRESSED_FILE 4   /* include/uapi/linux/module.h, Linux 6.4 */
#endif
#define PF_KTHREAD 0x00200000u            /* include/linux/sched.h: a kernel thread */
#define INIT_DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* What a VM's init mounts before anything else runs. /tmp and /run get a tmpfs only when
 * empty, so --init given by mistake in a container never hides files (a mounted secret). */
static const struct mount_step {
    const char *step;
    const char *path;
    const char *fstype;
    unsigned long flags;
    const char *data;
    mode_t mode;
    int only_empty;
} mounts[] = {
    { "mount /proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, 0555, 0 },
    { "mount /sys", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, 0555, 0 },
    { "mount /dev", "/dev", "devtmpfs", MS_NOSUID, "mode=0755", 0755, 0 },
    /* newinstance: a private PTY namespace even on kernels older than 4.7, where devpts
     * mounts shared one instance; ptmxmode: /dev/pts/ptmx usable by anyone, like /dev/ptmx */
    { "mount /dev/pts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
      "newinstance,mode=0620,ptmxmode=0666", 0755, 0 },
    { "mount /dev/shm", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777", 01777, 0 },
    { "mount /tmp", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777", 01777, 1 },
    { "mount /run", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755", 0755, 1 },
    /* the unified hierarchy (process control puts each process in a cgroup of its own);
     * sysfs provides the directory. favordynmods (Linux 6.0+; older kernels refuse it and
     * get a plain mount): moving a task between cgroups then waits for no RCU grace period,
     * which the agent does twice per start, for a slightly dearer fork and exit */
    { "mount /sys/fs/cgroup", "/sys/fs/cgroup", "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC,
      "favordynmods", 0555, 0 },
};
#define NMOUNTS (sizeof mounts / sizeof mounts[0])

/* ---- helpers ---- */

static enum init_result classify(int err)
{
    return err == EPERM || err == EACCES || err == EROFS ? INIT_SKIPPED : INIT_FAILED;
}

/* 1 when path is a mount point (its device differs from its parent's), 0 when not, -1 with
 * errno. A bind mount of the same filesystem looks like a plain directory: acceptable, the
 * steps only need to know whether something is mounted at all. */
static int is_mountpoint(const char *path)
{
    char parent[64];
    struct stat st, pst;
    const char *slash = strrchr(path, '/');
    size_t n = slash == path ? 1 : (size_t)(slash - path);
    memcpy(parent, path, n);
    parent[n] = 0;
    if (stat(path, &st) < 0 || stat(parent, &pst) < 0)
        return -1;
    return st.st_dev != pst.st_dev;
}

static int dir_empty(const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return 0;
    struct dirent *e;
    int empty = 1;
    while (empty && (e = readdir(d)))
        empty = !strcmp(e->d_name, ".") || !strcmp(e->d_name, "..");
    closedir(d);
    return empty;
}

static void mount_one(const struct mount_step *m, init_report_fn *report, void *ctx)
{
    int r = is_mountpoint(m->path);
    if (r < 0 && errno == ENOENT) {
        if (mkdir(m->path, m->mode) < 0) {
            report(ctx, m->step, classify(errno), errno);
            return;
        }
        r = 0;
    }
    if (r < 0)
        report(ctx, m->step, classify(errno), errno);
    else if (r > 0)
        report(ctx, m->step, INIT_PRESENT, 0);
    else if (m->only_empty && !dir_empty(m->path))
        report(ctx, m->step, INIT_SKIPPED, ENOTEMPTY);
    else if (mount(m->fstype, m->path, m->fstype, m->flags, m->data) < 0 &&
             (errno != EINVAL || !m->data || strcmp(m->data, "favordynmods") != 0 ||
              mount(m->fstype, m->path, m->fstype, m->flags, NULL) < 0))
        report(ctx, m->step, classify(errno), errno);
    else
        report(ctx, m->step, INIT_DONE, 0);
}

/* The kernel starts init with stdio on /dev/console only when that node exists; with fds
 * 0-2 closed the listening socket would land on fd 1 and the start line would go to a
 * client. Fill the holes (open returns the lowest free descriptor). */
static void stdio_fill(init_report_fn *report, void *ctx)
{
    int filled = 0;
    for (;;) {
        int fd = open("/dev/console", O_RDWR | O_NOCTTY);
        if (fd < 0)
            fd = open("/dev/null", O_RDWR);
        if (fd < 0) {
            report(ctx, "stdio", classify(errno), errno);
            return;
        }
        if (fd > 2) {
            close(fd);
            break;
        }
        filled = 1;
    }
    report(ctx, "stdio", filled ? INIT_DONE : INIT_PRESENT, 0);
}

static void loopback_up(init_report_fn *report, void *ctx)
{
    struct ifreq ifr;
    enum init_result r = INIT_DONE;
    int err = 0;
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    memset(&ifr, 0, sizeof ifr);
    strcpy(ifr.ifr_name, "lo");
    if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) < 0) {
        err = errno;
        r = classify(err);
    } else if (ifr.ifr_flags & IFF_UP) {
        r = INIT_PRESENT;
    } else {
        ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
        if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0) {
            err = errno;
            r = classify(err);
        }
    }
    if (s >= 0)
        close(s);
    report(ctx, "lo up", r, err);
}

static void hostname_set(const char *name, init_report_fn *report, void *ctx)
{
    struct utsname u;
    if (uname(&u) == 0 && !strcmp(u.nodename, name))
        report(ctx, "hostname", INIT_PRESENT, 0);
    else if (sethostname(name, strlen(name)) < 0)
        report(ctx, "hostname", classify(errno), errno);
    else
        report(ctx, "hostname", INIT_DONE, 0);
}

/* ppid and process group of pid from /proc/PID/stat ("pid (comm) S ppid pgrp session tty
 * tpgid flags ..."; comm may hold spaces and parentheses, so parse after the last ')').
 * A kernel thread (PF_KTHREAD in flags; a VM's init sees them all) is -1, errno ESRCH. */
static int read_stat(const char *pid, pid_t *ppid, pid_t *pgid)
{
    char path[32], line[512];
    snprintf(path, sizeof path, "/proc/%s/stat", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, line, sizeof line - 1);
    close(fd);
    if (n <= 0)
        return -1;
    line[n] = 0;
    char *p = strrchr(line, ')');
    if (!p || strlen(p) < 5)
        return -1;
    *ppid = (pid_t)strtol(p + 4, &p, 10);   /* ") S " then ppid, then pgrp */
    *pgid = (pid_t)strtol(p, &p, 10);
    for (int skip = 0; skip < 3; skip++)    /* session, tty_nr, tpgid */
        strtol(p, &p, 10);
    if (strtoul(p, NULL, 10) & PF_KTHREAD) {
        errno = ESRCH;
        return -1;
    }
    return 0;
}

/* /proc belongs to our PID namespace: its "self" names our pid as we see it. */
static int proc_is_ours(void)
{
    char link[24], want[24];
    ssize_t n = readlink("/proc/self", link, sizeof link - 1);
    if (n <= 0)
        return 0;
    link[n] = 0;
    snprintf(want, sizeof want, "%d", (int)getpid());
    return !strcmp(link, want);
}

/* The kernel starts init with HOME and TERM only; commands run by name need a PATH. */
static void path_default(init_report_fn *report, void *ctx)
{
    if (getenv("PATH"))
        report(ctx, "PATH", INIT_PRESENT, 0);
    else if (setenv("PATH", INIT_DEFAULT_PATH, 1) < 0)
        report(ctx, "PATH", INIT_FAILED, errno);
    else
        report(ctx, "PATH", INIT_DONE, 0);
}

/* With CAD off the kernel sends SIGINT to init on Ctrl-Alt-Del (a host's "system_powerdown"
 * on some platforms, a keyboard's three keys on others) instead of rebooting at once: the
 * agent then stops the way it does on SIGTERM. */
static void cad_to_sigint(init_report_fn *report, void *ctx)
{
    if (!init_is_vm())
        report(ctx, "ctrl-alt-del", INIT_SKIPPED, 0);
    else if (reboot(RB_DISABLE_CAD) < 0)
        report(ctx, "ctrl-alt-del", classify(errno), errno);
    else
        report(ctx, "ctrl-alt-del", INIT_DONE, 0);
}

/* Loads one module; compressed files (.ko.xz, .ko.zst, .ko.gz) are left to the kernel to
 * decompress (MODULE_INIT_COMPRESSED_FILE, Linux 6.4+; older kernels answer EINVAL). */
static void module_load(int dirfd, const char *path, init_report_fn *report, void *ctx)
{
    char name[300];
    size_t n = strlen(path);
    int compressed = (n > 3 && !strcmp(path + n - 3, ".xz")) ||
                     (n > 4 && !strcmp(path + n - 4, ".zst")) ||
                     (n > 3 && !strcmp(path + n - 3, ".gz"));
    snprintf(name, sizeof name, "module %s", path);
    int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        report(ctx, name, INIT_FAILED, errno);
        return;
    }
    long rc = syscall(SYS_finit_module, fd, "", compressed ? MODULE_INIT_COMPRESSED_FILE : 0);
    int err = errno;
    close(fd);
    if (rc == 0)
        report(ctx, name, INIT_DONE, 0);
    else if (err == EEXIST)   /* built in, or loaded before */
        report(ctx, name, INIT_PRESENT, 0);
    else
        report(ctx, name, classify(err), err);
}

/* ---- API ---- */

int init_reaper(void)
{
    if (getpid() == 1)
        return 1;
    return prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0 ? -1 : 0;
}

void init_system(int do_mounts, const char *hostname, init_report_fn *report, void *ctx)
{
    if (do_mounts) {
        for (size_t i = 0; i < NMOUNTS; i++) {
            mount_one(&mounts[i], report, ctx);
            if (!strcmp(mounts[i].path, "/dev"))
                stdio_fill(report, ctx);
        }
        loopback_up(report, ctx);
        path_default(report, ctx);
        cad_to_sigint(report, ctx);
    }
    if (hostname)
        hostname_set(hostname, report, ctx);
}

int init_signal_all(int sig, init_skip_fn *skip, void *ctx)
{
    pid_t self = getpid();
    DIR *d = proc_is_ours() ? opendir("/proc") : NULL;
    if (!d)   /* without our /proc only PID 1 can still reach everyone */
        return self == 1 && kill(-1, sig) == 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        pid_t ppid, pgid;
        if (*end || pid <= 0 || pid == self || read_stat(e->d_name, &ppid, &pgid) < 0)
            continue;
        if (self != 1 && ppid != self)
            continue;
        if (skip && skip(ctx, (pid_t)pid, pgid))
            continue;
        n += kill((pid_t)pid, sig) == 0;
    }
    closedir(d);
    return n;
}

int init_has_children(void)
{
    siginfo_t si;
    si.si_pid = 0;
    if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) < 0)
        return errno != ECHILD;
    return 1;   /* a child exists, exited (si_pid set) or not */
}

int init_modules(const char *list, init_report_fn *report, void *ctx)
{
    char dir[4096], *text = NULL;
    int failed = 0, dirfd = -1;
    size_t n = strlen(list);
    const char *slash = strrchr(list, '/');
    if (n >= sizeof dir) {
        report(ctx, "modules list", INIT_FAILED, ENAMETOOLONG);
        return -1;
    }
    if (!slash)
        strcpy(dir, ".");
    else
        snprintf(dir, sizeof dir, "%.*s", slash == list ? 1 : (int)(slash - list), list);
    int fd = open(list, O_RDONLY | O_CLOEXEC);
    dirfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    text = malloc(LIMIT_MODULES_LIST_BYTES + 1);
    ssize_t len = fd < 0 || dirfd < 0 || !text ? -1 : read(fd, text, LIMIT_MODULES_LIST_BYTES + 1);
    if (len < 0 || len > (ssize_t)LIMIT_MODULES_LIST_BYTES) {
        report(ctx, "modules list", INIT_FAILED, len < 0 ? errno : EFBIG);
        failed = 1;
        goto out;
    }
    text[len] = 0;
    for (char *line = text, *next; line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = 0;
        line += strspn(line, " \t");
        size_t ln = strlen(line);
        while (ln && (line[ln - 1] == ' ' || line[ln - 1] == '\t' || line[ln - 1] == '\r'))
            line[--ln] = 0;
        if (!ln || line[0] == '#')
            continue;
        module_load(dirfd, line, report, ctx);
    }
    report(ctx, "modules list", INIT_DONE, 0);
out:
    if (fd >= 0)
        close(fd);
    if (dirfd >= 0)
        close(dirfd);
    free(text);
    return failed ? -1 : 0;
}

void init_dns(const char *ip, init_report_fn *report, void *ctx)
{
    /* written whole under a temporary name, then renamed: a reader never sees half a file */
    static const char tmp[] = "/etc/resolv.conf.sandbox-agent";
    char text[80];
    int n = snprintf(text, sizeof text, "nameserver %s\n", ip);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || write(fd, text, (size_t)n) != n || close(fd) < 0 ||
        rename(tmp, "/etc/resolv.conf") < 0) {
        int err = errno;
        if (fd >= 0)
            unlink(tmp);
        report(ctx, "dns", classify(err), err);
        return;
    }
    report(ctx, "dns", INIT_DONE, 0);
}

/* Only the initial namespace's PID 1 may turn off Ctrl-Alt-Del and power the machine off
 * (elsewhere reboot() signals or fails). */
int init_is_vm(void)
{
    struct stat st;
    return getpid() == 1 && stat("/proc/self/ns/pid", &st) == 0 && st.st_ino == PID_INIT_INO;
}

void init_poweroff(void)
{
    if (!init_is_vm())
        return;
    sync();
    reboot(RB_POWER_OFF);
}
