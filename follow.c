#include "follow.h"

#include <string.h>

#include "limits.h"
#include "utf8.h"

static struct follow *all;
static char chunk[LIMIT_STREAM_CHUNK];   /* output that wraps around a ring, made whole */

/* One observer for every follower: O(followers) per event, a pointer test each. */
static void on_proc(const struct proc *p, enum proc_event ev, int sig)
{
    (void)sig;
    if (ev != PROC_EV_OUTPUT && ev != PROC_EV_FINISHED && ev != PROC_EV_EVICTED)
        return;
    for (struct follow *f = all, *next; f; f = next) {
        next = f->next;   /* fn may stop f (never another follower: see follow.h) */
        if (f->p != p)
            continue;
        if (ev == PROC_EV_EVICTED)
            f->p = NULL;
        f->fn(f, ev);
    }
}

void follow_start(struct follow *f, struct proc *p, follow_fn *fn)
{
    proc_observe(on_proc);   /* again: a no-op */
    f->p = p;
    f->off[0] = f->off[1] = 0;
    f->fn = fn;
    f->prev = NULL;
    f->next = all;
    if (all)
        all->prev = f;
    all = f;
}

void follow_stop(struct follow *f)
{
    if (f->prev)
        f->prev->next = f->next;
    else if (all == f)
        all = f->next;
    if (f->next)
        f->next->prev = f->prev;
    f->prev = f->next = NULL;
}

enum follow_kind follow_next(struct follow *f, int flags, struct follow_span *s)
{
    const struct proc *p = f->p;
    if (!p)
        return FOLLOW_NONE;
    int running = p->state != PROC_FINISHED;
    for (int i = 0; i < 2; i++) {
        const struct proc_ring *ring = i ? &p->err : &p->out;
        uint64_t oldest = ring->total - ring->len;
        s->stream = i;
        if (f->off[i] < oldest) {   /* fell behind what is kept: say how much, go on */
            s->gap = oldest - f->off[i];
            s->at = f->off[i] = oldest;
            s->data = NULL;
            s->n = 0;
            return FOLLOW_GAP;
        }
        if (f->off[i] >= ring->total)
            continue;
        const char *p1, *p2;
        size_t n1, n2;
        uint64_t at = proc_output(ring, f->off[i], &p1, &n1, &p2, &n2);
        size_t n = n1 + n2 < LIMIT_STREAM_CHUNK ? n1 + n2 : LIMIT_STREAM_CHUNK;
        const char *data = p1;
        if (n > n1) {
            memcpy(chunk, p1, n1);
            memcpy(chunk + n1, p2, n - n1);
            data = chunk;
        }
        /* while more may come, hold back the first bytes of a split character */
        if ((flags & FOLLOW_WHOLE_CHARS) && (running || n < n1 + n2))
            n -= utf8_partial_tail(data, n);
        if (n == 0)
            continue;
        f->off[i] = at + n;
        s->at = at;
        s->data = data;
        s->n = n;
        return FOLLOW_DATA;
    }
    return FOLLOW_NONE;
}
