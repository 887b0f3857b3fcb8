/* multipart/form-data (RFC 7578 over RFC 2046 5.1), parsed as it streams: pure and
 * restartable, fed any split of the body, with no allocation and no copy of part data
 * (data events are views into the caller's bytes, or into the parser's own delimiter text
 * when a delimiter that straddled two calls turned out not to be one).
 *
 *   struct multipart m;
 *   multipart_init(&m, boundary, blen);
 *   while (n > 0) {
 *       long r = multipart_feed(&m, p, n, &ev);    // r < 0: invalid
 *       ... act on ev ...
 *       p += r, n -= r;
 *   }
 *   // at the end of the body, m.done must be set, else the body was cut short
 */
#ifndef SANDBOX_MULTIPART_H
#define SANDBOX_MULTIPART_H
#include <stddef.h>

#include "limits.h"

enum multipart_kind {
    MULTIPART_NONE,       /* nothing to report (input consumed) */
    MULTIPART_PART,       /* a part's headers are in: m->name, m->filename, m->has_filename */
    MULTIPART_DATA,       /* ev.data[0..ev.len) belongs to the current part */
    MULTIPART_PART_END,   /* the current part is complete */
    MULTIPART_END,        /* the closing delimiter: the body is complete (m->done) */
};

enum multipart_error {
    MULTIPART_INVALID = -1,    /* malformed delimiter line or part header */
    MULTIPART_TOO_LARGE = -2,  /* a header section over LIMIT_MULTIPART_HEADER, a name over
                                * LIMIT_MULTIPART_NAME */
};

struct multipart_event {
    enum multipart_kind kind;
    const char *data;
    size_t len;
};

struct multipart {
    char delim[4 + LIMIT_MULTIPART_BOUNDARY]; /* "\r\n--" boundary */
    size_t dlen;
    size_t match;          /* bytes of delim matched so far */
    int state;
    int done;              /* the closing delimiter was seen */
    size_t hdr_total;      /* header bytes of the current part */
    char line[LIMIT_MULTIPART_NAME * 2 + 128];  /* the header line being read */
    size_t line_len;
    char name[LIMIT_MULTIPART_NAME + 1];        /* form field name (NUL-terminated) */
    size_t name_len;
    char filename[LIMIT_MULTIPART_NAME + 1];
    size_t filename_len;
    int has_filename;      /* a filename parameter was present (even empty) */
};

/* The boundary parameter of a Content-Type value ct[0..len) (multipart/form-data only,
 * quoted or not), copied into out (LIMIT_MULTIPART_BOUNDARY + 1 bytes, NUL-terminated).
 * Returns its length (1..70), or -1 when ct is not multipart/form-data with a valid one. */
int multipart_boundary(const char *ct, size_t len, char *out);

/* Resets m for a body delimited by boundary[0..blen) (1..70 bytes). */
void multipart_init(struct multipart *m, const char *boundary, size_t blen);

/* Consumes a prefix of p[0..n) and reports at most one event. Returns the bytes consumed
 * (0 only with an event that needs no input, never 0 with MULTIPART_NONE when n > 0), or a
 * multipart_error; after an error m stays in error. The preamble and epilogue are skipped. */
long multipart_feed(struct multipart *m, const char *p, size_t n, struct multipart_event *ev);

#endif
