#include "timer.h"

#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "loop.h"
#include "util.h"

static int tfd = -1;
static struct timer *armed;    /* unsorted: a few thousand timers at most, scanned per fire */
static int narmed;
static int64_t set_at;         /* what the timerfd is armed for; 0 = disarmed */

/* Arms the timerfd for the earliest timer (or disarms it). */
static void rearm(void)
{
    int64_t min = 0;
    for (struct timer *t = armed; t; t = t->next)
        if (!min || t->at < min)
            min = t->at;
    if (min == set_at)
        return;
    set_at = min;
    struct itimerspec its = { 0 };
    if (min) {
        its.it_value.tv_sec = min / 1000000;
        its.it_value.tv_nsec = (min % 1000000) * 1000;
        if (!its.it_value.tv_sec && !its.it_value.tv_nsec)
            its.it_value.tv_nsec = 1;
    }
    timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL);
}

static void unlink_timer(struct timer *t)
{
    if (t->prev)
        t->prev->next = t->next;
    else
        armed = t->next;
    if (t->next)
        t->next->prev = t->prev;
    t->prev = t->next = NULL;
    t->at = 0;
    narmed--;
}

/* Fires every due timer. A callback may arm, cancel or free any timer (its own included),
 * so the scan starts over after each one. */
static void on_timerfd(void *ctx, int fd, short revents)
{
    (void)ctx, (void)revents;
    uint64_t n;
    while (read(fd, &n, sizeof n) < 0 && errno == EINTR)
        ;
    set_at = 0;
    int64_t now = util_mono_us();
    for (;;) {
        struct timer *due = NULL;
        for (struct timer *t = armed; t; t = t->next)
            if (t->at <= now) {
                due = t;
                break;
            }
        if (!due)
            break;
        unlink_timer(due);
        due->fn(due->ctx);
    }
    rearm();
}

void timer_init(struct timer *t, timer_fn *fn, void *ctx)
{
    t->at = 0;
    t->fn = fn;
    t->ctx = ctx;
    t->prev = t->next = NULL;
}

int timer_arm(struct timer *t, int64_t at)
{
    if (tfd < 0) {
        tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        if (tfd < 0)
            return -1;
        if (loop_add(tfd, POLLIN, on_timerfd, NULL) < 0) {
            close(tfd);
            tfd = -1;
            return -1;
        }
    }
    if (at <= 0)
        at = 1;
    if (t->at)
        unlink_timer(t);
    t->at = at;
    t->prev = NULL;
    t->next = armed;
    if (armed)
        armed->prev = t;
    armed = t;
    narmed++;
    if (!set_at || at < set_at)
        rearm();
    return 0;
}

void timer_cancel(struct timer *t)
{
    if (!t->at)
        return;
    unlink_timer(t);
    if (!armed)
        rearm();   /* a stale earlier wake-up is harmless otherwise: on_timerfd rearms */
}

int timer_count(void)
{
    return narmed;
}
