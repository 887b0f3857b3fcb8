#include "loop.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/resource.h>

#define LOOP_MAX_FDS 65536  /* registry size cap; RLIMIT_NOFILE is usually far below */

struct slot {
    loop_fn *fn;
    void *ctx;
    int pos;        /* index in pfds, -1 when not watched */
    unsigned gen;   /* bumped on every add/del: a stale ready entry is skipped */
};

struct ready {
    int fd;
    short revents;
    unsigned gen;
};

static struct slot *slots;
static struct pollfd *pfds;   /* dense: what poll() sees */
static struct ready *ready;   /* copied out so callbacks may change pfds freely */
static int nslots, npfds;

int loop_init(void)
{
    struct rlimit rl;
    nslots = LOOP_MAX_FDS;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        rl.rlim_cur < (rlim_t)nslots)
        nslots = (int)rl.rlim_cur;
    slots = calloc((size_t)nslots, sizeof *slots);
    pfds = calloc((size_t)nslots, sizeof *pfds);
    ready = calloc((size_t)nslots, sizeof *ready);
    if (!slots || !pfds || !ready)
        return -1;
    for (int i = 0; i < nslots; i++)
        slots[i].pos = -1;
    return 0;
}

int loop_add(int fd, short events, loop_fn *fn, void *ctx)
{
    if (fd < 0 || fd >= nslots) {
        errno = EBADF;
        return -1;
    }
    struct slot *s = &slots[fd];
    if (s->pos >= 0) {
        errno = EEXIST;
        return -1;
    }
    s->fn = fn;
    s->ctx = ctx;
    s->pos = npfds;
    s->gen++;
    pfds[npfds++] = (struct pollfd){ .fd = fd, .events = events };
    return 0;
}

void loop_set(int fd, short events)
{
    if (fd >= 0 && fd < nslots && slots[fd].pos >= 0)
        pfds[slots[fd].pos].events = events;
}

void loop_del(int fd)
{
    if (fd < 0 || fd >= nslots || slots[fd].pos < 0)
        return;
    int pos = slots[fd].pos;
    pfds[pos] = pfds[--npfds];
    slots[pfds[pos].fd].pos = pos;
    slots[fd].pos = -1;
    slots[fd].gen++;
}

int loop_poll(int timeout_ms)
{
    int n = poll(pfds, (nfds_t)npfds, timeout_ms);
    if (n < 0)
        return errno == EINTR ? 0 : -1;
    int nready = 0;
    for (int i = 0; i < npfds && nready < n; i++)
        if (pfds[i].revents)
            ready[nready++] = (struct ready){ pfds[i].fd, pfds[i].revents, slots[pfds[i].fd].gen };
    for (int i = 0; i < nready; i++) {
        struct slot *s = &slots[ready[i].fd];
        if (s->pos >= 0 && s->gen == ready[i].gen)
            s->fn(s->ctx, ready[i].fd, ready[i].revents);
    }
    return nready;
}

int loop_count(void)
{
    return npfds;
}
