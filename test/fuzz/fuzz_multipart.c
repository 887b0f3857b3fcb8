/* libFuzzer target: multipart/form-data bodies. The first input byte picks a split
 * stride; the events of the body fed in those pieces must equal those of the body fed
 * whole (restartability), every data view must lie in the input or the parser's
 * delimiter, and consumption must always progress. The Content-Type boundary parser is
 * fed the same bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "multipart.h"

#define REQUIRE(c) do { if (!(c)) abort(); } while (0)

struct out {
    unsigned char *p;
    size_t len, cap;
};

static void put(struct out *o, const void *p, size_t n)
{
    if (o->len + n > o->cap)
        return;
    memcpy(o->p + o->len, p, n);
    o->len += n;
}

static long run(const uint8_t *d, size_t n, size_t stride, struct out *o)
{
    struct multipart m;
    multipart_init(&m, "b0undary", 8);
    for (size_t start = 0; start < n;) {
        size_t end = stride && start + stride < n ? start + stride : n;
        const char *p = (const char *)d + start;
        size_t left = end - start;
        while (left > 0) {
            struct multipart_event ev;
            long r = multipart_feed(&m, p, left, &ev);
            if (r < 0) {
                put(o, "!", 1);
                return r;
            }
            REQUIRE((size_t)r <= left);
            REQUIRE(r > 0 || ev.kind != MULTIPART_NONE);
            if (ev.kind == MULTIPART_DATA) {
                int in_input = ev.data >= p && ev.data + ev.len <= p + left;
                int in_delim = ev.data >= m.delim && ev.data + ev.len <= m.delim + m.dlen;
                REQUIRE(in_input || in_delim);
                put(o, ev.data, ev.len);
            } else if (ev.kind == MULTIPART_PART) {
                REQUIRE(m.name[m.name_len] == 0 && m.name_len <= LIMIT_MULTIPART_NAME);
                put(o, "[", 1);
                put(o, m.name, m.name_len);
                put(o, "|", 1);
                put(o, m.filename, m.filename_len);
                put(o, "]", 1);
            } else if (ev.kind != MULTIPART_NONE) {
                char k = (char)('0' + ev.kind);
                put(o, &k, 1);
            }
            p += r;
            left -= (size_t)r;
        }
        start = end;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t stride = data[0] % 17;
    const uint8_t *body = data + 1;
    size_t n = size - 1;
    struct out a = { malloc(4 * n + 64), 0, 4 * n + 64 };
    struct out b = { malloc(4 * n + 64), 0, 4 * n + 64 };
    REQUIRE(a.p && b.p);
    long ra = run(body, n, 0, &a);
    long rb = run(body, n, stride ? stride : 1, &b);
    REQUIRE(ra == rb);
    REQUIRE(a.len == b.len && memcmp(a.p, b.p, a.len) == 0);
    free(a.p);
    free(b.p);
    char out[LIMIT_MULTIPART_BOUNDARY + 1];
    int r = multipart_boundary((const char *)body, n, out);
    REQUIRE(r == -1 || (r >= 1 && r <= LIMIT_MULTIPART_BOUNDARY && strlen(out) == (size_t)r));
    return 0;
}
