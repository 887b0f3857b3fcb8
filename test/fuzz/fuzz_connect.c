/* libFuzzer target: envelope parsing, checked against the envelopes' own invariants and
 * against a byte-at-a-time reading of the same input. The first byte picks the max. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "connect.h"

#define REQUIRE(c) do { if (!(c)) abort(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t max = (size_t)data[0] * 7;
    const char *s = (const char *)data + 1;
    size_t n = size - 1, off = 0;
    while (off < n) {
        struct connect_envelope e;
        long r = connect_parse(s + off, n - off, max, &e);
        /* every shorter prefix is incomplete or fails the same way */
        for (size_t k = 0; k < n - off && r > 0 && k < (size_t)r; k++) {
            struct connect_envelope e2;
            long r2 = connect_parse(s + off, k, max, &e2);
            REQUIRE(r2 == CONNECT_INCOMPLETE);
        }
        if (r <= 0)
            break;
        REQUIRE((size_t)r == CONNECT_PREFIX + e.len && e.len <= max);
        REQUIRE(e.data == s + off + CONNECT_PREFIX && e.flags == 0);
        off += (size_t)r;
    }
    return 0;
}
