#include "buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "limits.h"

/* One large buffer, kept when freed, for the next buffer that grows large: a big reply
 * (a 10 000-entry listing is 3-4 MB) otherwise maps fresh memory each time, and faulting
 * its pages in cost more than rendering it. At most one, of SPARE_MIN..LIMIT_BUF_SPARE
 * bytes, so the agent holds no more than that beyond what is in use. */
#define SPARE_MIN (1u << 20)
static char *spare;
static size_t spare_cap;

void buf_init(struct buf *b, size_t max)
{
    b->data = NULL;
    b->len = b->cap = 0;
    b->max = max;
    b->failed = 0;
}

int buf_reserve(struct buf *b, size_t n)
{
    if (b->failed || n > b->max - b->len) {
        b->failed = 1;
        return -1;
    }
    if (b->len + n <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    if (cap > b->max)
        cap = b->max;   /* cap <= max always: the fast paths rely on it */
    while (cap < b->len + n)
        cap = cap > b->max / 2 ? b->max : cap * 2;
    if (spare && cap >= SPARE_MIN && spare_cap >= cap && spare_cap <= b->max) {
        if (b->len)
            memcpy(spare, b->data, b->len);
        free(b->data);
        b->data = spare;
        b->cap = spare_cap;
        spare = NULL;
        return 0;
    }
    char *p = realloc(b->data, cap);
    if (!p) {
        b->failed = 1;
        return -1;
    }
    b->data = p;
    b->cap = cap;
    return 0;
}

int buf_append(struct buf *b, const void *p, size_t n)
{
    if (n && n <= b->cap - b->len && !b->failed) {   /* the common case: it fits (cap <= max) */
        memcpy(b->data + b->len, p, n);
        b->len += n;
        return 0;
    }
    if (n == 0)
        return b->failed ? -1 : 0;
    if (buf_reserve(b, n) < 0)
        return -1;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

int buf_putc(struct buf *b, char c)
{
    if (b->len < b->cap && !b->failed) {
        b->data[b->len++] = c;
        return 0;
    }
    return buf_append(b, &c, 1);
}

int buf_puts(struct buf *b, const char *s)
{
    return buf_append(b, s, strlen(s));
}

int buf_printf(struct buf *b, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = 1;
        return -1;
    }
    if ((size_t)n < sizeof small)
        return buf_append(b, small, (size_t)n);
    if (buf_reserve(b, (size_t)n + 1) < 0)
        return -1;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

void buf_reset(struct buf *b)
{
    b->len = 0;
    b->failed = 0;
}

void buf_free(struct buf *b)
{
    if (!spare && b->cap >= SPARE_MIN && b->cap <= LIMIT_BUF_SPARE) {
        spare = b->data;
        spare_cap = b->cap;
        buf_init(b, b->max);
        return;
    }
    free(b->data);
    buf_init(b, b->max);
}
