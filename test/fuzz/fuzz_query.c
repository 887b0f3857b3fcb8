/* libFuzzer target: request-target splitting, percent-decoding and query lookup, checked
 * against a plain reference decoder. The first input byte picks the output capacity, the
 * rest is the target as a client would send it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

#define REQUIRE(c) do { if (!(c)) abort(); } while (0)

static int hexv(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* The reference: the obvious loop. -1 for a bad escape, a NUL (raw or decoded), or
 * overflow. */
static long ref_decode(const uint8_t *s, size_t n, uint8_t *out, size_t cap, int plus)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int c = s[i];
        if (c == 0)
            return -1;
        if (c == '+' && plus) {
            c = ' ';
        } else if (c == '%') {
            if (n - i < 3)   /* fewer than two bytes follow */
                return -1;
            int hi = hexv(s[i + 1]), lo = hexv(s[i + 2]);
            if (hi < 0 || lo < 0 || (hi | lo) == 0)
                return -1;
            c = hi << 4 | lo;
            i += 2;
        }
        if (o == cap)
            return -1;
        out[o++] = (uint8_t)c;
    }
    return (long)o;
}

static void check_decode(const uint8_t *s, size_t n, size_t cap, int plus)
{
    uint8_t *a = malloc(cap ? cap : 1), *b = malloc(cap ? cap : 1);
    REQUIRE(a && b);
    int r = http_percent_decode((const char *)s, n, (char *)a, cap, plus);
    long want = ref_decode(s, n, b, cap, plus);
    REQUIRE(r == want);
    if (r > 0) {
        REQUIRE((size_t)r <= n && (size_t)r <= cap);
        REQUIRE(memcmp(a, b, (size_t)r) == 0 && memchr(a, 0, (size_t)r) == NULL);
    }
    free(a);
    free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t cap = data[0] < 250 ? data[0] : 4096;
    const char *t = (const char *)data + 1;
    size_t n = size - 1;

    const char *path, *query;
    size_t path_len, query_len;
    http_split_target(t, n, &path, &path_len, &query, &query_len);
    REQUIRE(path_len <= n || (path_len == 1 && path[0] == '/'));
    REQUIRE(query_len <= n);
    REQUIRE(query_len == 0 || (query >= t && query + query_len == t + n && query[-1] == '?'));
    REQUIRE(path_len == 1 && path[0] == '/' ? 1 : (path >= t && path + path_len <= t + n));
    REQUIRE(memchr(path, '?', path_len) == NULL);

    check_decode(data + 1, n, cap, 0);
    check_decode(data + 1, n, cap, 1);
    check_decode((const uint8_t *)query, query_len, cap, 1);

    static const char *const keys[] = { "status", "name", "output", "stream", "offset", "" };
    char *out = malloc(cap ? cap : 1);
    REQUIRE(out);
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        int r = http_query_get(query, query_len, keys[k], out, cap);
        REQUIRE(r >= -2);
        if (r >= 0)
            REQUIRE((size_t)r < cap && out[r] == 0 && strlen(out) == (size_t)r);
    }
    free(out);
    return 0;
}
