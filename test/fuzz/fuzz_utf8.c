/* libFuzzer target: output cut into pieces (the first two input bytes pick two cuts, the
 * rest is the output) and rendered piece by piece, each held back by utf8_partial_tail and
 * carried into the next, renders exactly as the whole does; and the bounds of both calls. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "json.h"
#include "utf8.h"

#define REQUIRE(c) do { if (!(c)) abort(); } while (0)

static void put_body(struct buf *out, const char *p, size_t n)
{
    struct buf one;
    buf_init(&one, 1 << 20);
    json_put_str(&one, p, n);
    REQUIRE(!one.failed && one.len >= 2);
    buf_append(out, one.data + 1, one.len - 2);   /* without the quotes */
    buf_free(&one);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2 || size > 4096)
        return 0;
    const char *s = (const char *)data + 2;
    size_t n = size - 2, a = data[0] % (n + 1), b = data[1] % (n + 1);
    if (a > b) {
        size_t t = a;
        a = b;
        b = t;
    }
    REQUIRE(utf8_partial_tail(s, n) <= 3 && utf8_partial_tail(s, n) <= n);
    REQUIRE(utf8_orphan_head(s, n) <= 3 && utf8_orphan_head(s, n) <= n);
    struct buf whole, parts;
    buf_init(&whole, 1 << 20);
    buf_init(&parts, 1 << 20);
    put_body(&whole, s, n);
    size_t cuts[3] = { a, b, n }, from = 0;
    for (int c = 0; c < 3; c++) {
        size_t len = cuts[c] - from;
        size_t keep = c < 2 ? len - utf8_partial_tail(s + from, len) : len;
        put_body(&parts, s + from, keep);
        from += keep;
    }
    REQUIRE(parts.len == whole.len && (!whole.len || !memcmp(parts.data, whole.data, whole.len)));
    buf_free(&whole);
    buf_free(&parts);
    return 0;
}
