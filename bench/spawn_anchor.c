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
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "anchor.h"

static double spawn_s;   /* summed time inside posix_spawn */

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
    int out, err, status;
    pid_t pid;
    int rc = anchor_spawn(argv, &out, &err, &pid, &spawn_s);
    if (rc) {
        errno = rc;
        return -1;
    }
    drain(out);
    drain(err);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    return 0;
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
