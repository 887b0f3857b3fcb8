/* Followers of a record's output: each at its own stdout and stderr offsets in the
 * record's rings (STYLE.md: readers at their own offset), for every front-end that streams
 * output (HopX SSE/WebSocket in api_stream.c, E2B's Connect streams in api_e2b_proc.c).
 *
 * A follower holds no output of its own: follow_next hands out the next span straight
 * from the ring (or, when it wraps, from one shared scratch chunk), so a client that stops
 * reading costs nothing here, and one that fell behind the kept bytes learns how much it
 * missed. The owner embeds struct follow in its reader and is told, through fn, when its
 * record gains output, finishes or goes away; it sends from there or from its own timer. */
#ifndef SANDBOX_FOLLOW_H
#define SANDBOX_FOLLOW_H
#include <stddef.h>
#include <stdint.h>

#include "proc.h"

struct follow;
/* ev: PROC_EV_OUTPUT (the rings gained bytes: reading them is safe in here),
 * PROC_EV_FINISHED, or PROC_EV_EVICTED (the record is gone: f->p is NULL already).
 * Called from inside proc's notification: render records or free nothing here; arm a
 * timer for that. */
typedef void follow_fn(struct follow *f, enum proc_event ev);

struct follow {
    struct proc *p;            /* NULL: not attached yet, or the record is gone */
    uint64_t off[2];           /* next stdout, stderr byte to hand out */
    follow_fn *fn;
    struct follow *prev, *next;
};

/* Registers f (p may be NULL and be set later: f->p = p) from offsets 0, 0. */
void follow_start(struct follow *f, struct proc *p, follow_fn *fn);
/* Unregisters f; fn is not called again. */
void follow_stop(struct follow *f);

enum follow_kind { FOLLOW_NONE, FOLLOW_DATA, FOLLOW_GAP };

struct follow_span {
    int stream;                /* 0 stdout, 1 stderr */
    uint64_t at;               /* stream offset of data[0], or where the kept bytes resume */
    const char *data;          /* FOLLOW_DATA: valid until the next follow_next */
    size_t n;                  /* FOLLOW_DATA: bytes (1..LIMIT_STREAM_CHUNK) */
    uint64_t gap;              /* FOLLOW_GAP: bytes lost */
};

/* Don't hand out the first bytes of a UTF-8 character whose rest may still come (text
 * front-ends: a split character would reach the client as two U+FFFD). */
#define FOLLOW_WHOLE_CHARS 1

/* The next span the follower is due, stdout first, and advances past it: FOLLOW_GAP when
 * it fell behind the kept bytes (it resumes at the oldest kept byte), FOLLOW_DATA, or
 * FOLLOW_NONE (nothing new, or f->p is NULL). */
enum follow_kind follow_next(struct follow *f, int flags, struct follow_span *s);

#endif
