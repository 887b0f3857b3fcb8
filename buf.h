/* A growable byte buffer with a hard cap: the one way the agent builds output.
 * Appends past the cap fail and set `failed`; the caller checks once at the end. */
#ifndef SANDBOX_BUF_H
#define SANDBOX_BUF_H
#include <stddef.h>

struct buf {
    char *data;    /* owned; NULL until the first append */
    size_t len;
    size_t cap;
    size_t max;    /* hard cap on len */
    int failed;    /* an append did not fit or allocation failed */
};

void buf_init(struct buf *b, size_t max);
/* Returns 0, or -1 (and sets failed) when it would pass max or malloc fails. */
int buf_append(struct buf *b, const void *p, size_t n);
/* Makes room for n more bytes (data + len .. + n writable). Returns 0 or -1 like append. */
int buf_reserve(struct buf *b, size_t n);
int buf_putc(struct buf *b, char c);
int buf_puts(struct buf *b, const char *s);
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_reset(struct buf *b);   /* len = 0, failed = 0, memory kept */
/* Memory released; reusable after buf_init. One large buffer (1 MiB..LIMIT_BUF_SPARE) is
 * kept instead, and given to the next buffer that grows past 1 MiB: big replies then reuse
 * pages already faulted in. */
void buf_free(struct buf *b);

#endif
