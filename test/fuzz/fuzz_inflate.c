/* libFuzzer target: gzip streams. The first input byte picks an input piece size and an
 * output buffer size; the bytes decoded in those pieces must equal those decoded whole
 * (restartability), and so must the verdict. The input is bounded, the output capped. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "inflate.h"

#define REQUIRE(c) do { if (!(c)) abort(); } while (0)
#define OUT_MAX (1u << 20)

static struct inflate z;
static unsigned char whole[OUT_MAX], split[OUT_MAX];

/* Returns the output length, or -1 (rejected) / -2 (capped) with *len the bytes so far. */
static long run(const uint8_t *d, size_t n, size_t piece, size_t cap, unsigned char *out)
{
    unsigned char buf[4096];
    size_t total = 0;
    inflate_init(&z);
    for (size_t off = 0;;) {
        size_t len = n - off < piece ? n - off : piece, used, made;
        if (inflate_run(&z, d + off, len, &used, buf, cap, &made) < 0)
            return -1;
        REQUIRE(used <= len && made <= cap);
        REQUIRE(used == len || made == cap);
        if (total + made > OUT_MAX)
            return -2;
        memcpy(out + total, buf, made);
        total += made;
        off += used;
        if (off == n && made < cap)
            break;
    }
    return inflate_done(&z) ? (long)total : -3;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t piece = (size_t)(data[0] & 15) + 1, cap = (size_t)(data[0] >> 4) * 250 + 1;
    data++;
    size--;
    long a = run(data, size, size ? size : 1, 4096, whole);
    long b = run(data, size, piece, cap, split);
    if (a == -2 || b == -2)
        return 0;
    REQUIRE(a == b);
    if (a > 0)
        REQUIRE(!memcmp(whole, split, (size_t)a));
    return 0;
}
