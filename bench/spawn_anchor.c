/* The spawn anchor for make bench: the least a supervisor can do per command, in a loop.
 * posix_spawn with the agent's attributes (own session, reset mask and dispositions, stdin
 * /dev/null, stdout and stderr on pipes), read both pipes to EOF, waitpid. No HTTP, no
 * records, no poll loop. Built by scripts/bench.sh with musl-gcc -static -O2, like the agent.
 *
 * Usage: spawn_anchor N [PROGRAM ARG...]   (default program: /bin/sh -c true, what
 * POST /commands/run {"command":"true"} runs). Prints "N SECONDS RATE SPAWN_US" on stdout:
 * SPAWN_US is the mean time inside posix_spawn, which returns once the child has exec'd
 * (musl: CLONE_VFORK), the part of a run a single-threaded supervisor cannot overlap. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static double spawn_s;   /* summed time inside posix_spawn */

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void drain(int fd)
{
    char buf[4096];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n > 0 || (n < 0 && errno == EINTR))
            continue;
        break;
    }
    close(fd);
}

static int run_one(char *const argv[])
{
    int out[2], err[2];
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t none, all;
    pid_t pid;
    int status;

    if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0)
        return -1;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&attr);
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, err[1], 2);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK |
                                        POSIX_SPAWN_SETSIGDEF);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    double t0 = now_s();
    int rc = posix_spawn(&pid, argv[0], &fa, &attr, argv, environ);
    spawn_s += now_s() - t0;
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    close(out[1]);
    close(err[1]);
    if (rc == 0) {
        drain(out[0]);
        drain(err[0]);
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
    } else {
        close(out[0]);
        close(err[0]);
    }
    return rc ? -1 : 0;
}

int main(int argc, char **argv)
{
    static char *dflt[] = { "/bin/sh", "-c", "true", NULL };
    long n = argc > 1 ? atol(argv[1]) : 1000;
    char *const *prog = argc > 2 ? argv + 2 : dflt;
    double t0 = now_s();
    for (long i = 0; i < n; i++)
        if (run_one(prog) < 0) {
            perror("spawn_anchor");
            return 1;
        }
    double s = now_s() - t0;
    printf("%ld %.6f %.1f %.1f\n", n, s, (double)n / s, spawn_s * 1e6 / (double)n);
    return 0;
}
