/* The output anchor for make bench: the least a supervisor can do to drain a child's stdout.
 * Spawns the child the agent's 1 GB output bench runs (posix_spawn with the agent's
 * attributes: own session, reset mask and dispositions, stdin /dev/null, stdout and stderr on
 * pipes), then poll() + read() on both pipes into a 1 MiB ring per stream (what the agent keeps
 * per stream, LIMIT_OUTPUT_BYTES), reading directly at the ring's write position, until EOF on
 * both; waitpid. No HTTP, no records. Built by scripts/bench.sh with musl-gcc -static -O2.
 *
 * Usage: drain_anchor COMMAND   (run as /bin/sh -c COMMAND). Prints "BYTES SECONDS GB/S
 * HWM_KIB" on stdout: SECONDS from just before posix_spawn to waitpid's return, as the agent's
 * record times spawn to exit; HWM_KIB is this process's VmHWM. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "anchor.h"

#define RING (1u << 20)
#define READ_MAX 65536   /* the agent's LIMIT_PIPE_READ */

static long hwm_kib(void)
{
    char line[256];
    long v = -1;
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "VmHWM:", 6))
            v = atol(line + 6);
    fclose(f);
    return v;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: drain_anchor COMMAND\n");
        return 2;
    }
    char *args[] = { "/bin/sh", "-c", argv[1], NULL };
    static char ring[2][RING];
    size_t at[2] = { 0, 0 };
    unsigned long long total = 0;
    int out, err, status;
    pid_t pid;

    double t0 = now_s();
    int rc = anchor_spawn(args, &out, &err, &pid, NULL);
    if (rc) {
        errno = rc;
        perror("spawn");
        return 1;
    }
    fcntl(out, F_SETFL, O_NONBLOCK);
    fcntl(err, F_SETFL, O_NONBLOCK);
    struct pollfd pf[2] = { { out, POLLIN, 0 }, { err, POLLIN, 0 } };
    int open_fds = 2;
    while (open_fds) {
        if (poll(pf, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            perror("poll");
            return 1;
        }
        for (int i = 0; i < 2; i++) {
            if (pf[i].fd < 0 || !pf[i].revents)
                continue;
            size_t want = RING - at[i] < READ_MAX ? RING - at[i] : READ_MAX;
            ssize_t n = read(pf[i].fd, ring[i] + at[i], want);
            if (n > 0) {
                total += (unsigned long long)n;
                at[i] = (at[i] + (size_t)n) % RING;
            } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
                close(pf[i].fd);
                pf[i].fd = -1;
                open_fds--;
            }
        }
    }
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    double s = now_s() - t0;
    printf("%llu %.6f %.3f %ld\n", total, s, (double)total / s / 1e9, hwm_kib());
    return 0;
}
