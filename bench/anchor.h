/* What the bench anchors (spawn_anchor.c, drain_anchor.c) share: a monotonic clock, and a
 * child spawned as the agent spawns one (posix_spawn in its own session, reset signal mask
 * and dispositions, stdin /dev/null, stdout and stderr on pipes). Header-only: each anchor
 * is one file built by scripts/bench.sh with musl-gcc -static -O2. */
#ifndef BENCH_ANCHOR_H
#define BENCH_ANCHOR_H

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Spawns argv with its stdout and stderr on new pipes, whose read ends it leaves in *out and
 * *err (the write ends closed here). Adds the time spent inside posix_spawn to *spawn_s when
 * spawn_s is not NULL. Returns 0, or an errno value (no descriptor left open). */
static int anchor_spawn(char *const argv[], int *out, int *err, pid_t *pid, double *spawn_s)
{
    int o[2], e[2];
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t none, all;

    if (pipe2(o, O_CLOEXEC) < 0)
        return errno;
    if (pipe2(e, O_CLOEXEC) < 0) {
        int rc = errno;
        close(o[0]);
        close(o[1]);
        return rc;
    }
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&attr);
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, o[1], 1);
    posix_spawn_file_actions_adddup2(&fa, e[1], 2);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK |
                                        POSIX_SPAWN_SETSIGDEF);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    double t0 = now_s();
    int rc = posix_spawn(pid, argv[0], &fa, &attr, argv, environ);
    if (spawn_s)
        *spawn_s += now_s() - t0;
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    close(o[1]);
    close(e[1]);
    if (rc) {
        close(o[0]);
        close(e[0]);
        return rc;
    }
    *out = o[0];
    *err = e[0];
    return 0;
}

#endif
