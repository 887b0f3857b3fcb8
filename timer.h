/* Timers on the loop: any number of one-shot timers driven by one timerfd (CLOCK_MONOTONIC,
 * absolute), so modules with deadlines (stream pings, long polls, frame spacing) need no
 * call from agent.c's loop. Timers are caller-owned structs: no allocation here. */
#ifndef SANDBOX_TIMER_H
#define SANDBOX_TIMER_H
#include <stdint.h>

typedef void timer_fn(void *ctx);

struct timer {
    int64_t at;            /* monotonic us; 0 = not armed */
    timer_fn *fn;
    void *ctx;
    /* private */
    struct timer *prev, *next;
};

/* Sets fn/ctx (once, before the first timer_arm). */
void timer_init(struct timer *t, timer_fn *fn, void *ctx);
/* Arms t to fire at `at` (monotonic us), replacing an earlier arming. Returns 0, or -1 when
 * the timerfd could not be made (errno). */
int timer_arm(struct timer *t, int64_t at);
/* Disarms t (no-op when not armed). A struct timer must be disarmed before it is freed. */
void timer_cancel(struct timer *t);
/* Timers armed. */
int timer_count(void);

#endif
