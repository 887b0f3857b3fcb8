/* libFuzzer target: the JSON parser and encoder. Every accepted text is walked token by
 * token (spans, sizes, next links), each number read as int64 and double, each string
 * decoded, and the whole value re-encoded: the encoding must parse and re-encode to
 * itself (json.h promises a fixed point). Any input bytes also go through json_put_str,
 * whose output must be one valid JSON string. api.c's token budget (len + 1, capped) is
 * used: below the cap JSON_ERR_TOKENS must never appear, and with the budget api.c first
 * had (len/2 + 2) it may only for texts that are not JSON anyway ("[[[[[" found that). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "limits.h"

#define REQUIRE(c) do { if (!(c)) abort(); } while (0)

static struct json_token toks[LIMIT_JSON_TOKENS];
static struct json_token toks2[LIMIT_JSON_TOKENS];

static uint32_t budget(size_t len)   /* as api_parse_body */
{
    return len + 1 < LIMIT_JSON_TOKENS ? (uint32_t)(len + 1) : LIMIT_JSON_TOKENS;
}

static void walk(const char *s, size_t len, int n)
{
    char *dec = malloc(len + 1);
    REQUIRE(dec);
    REQUIRE(toks[0].next == (uint32_t)n);
    for (int i = 0; i < n; i++) {
        const struct json_token *t = &toks[i];
        REQUIRE(t->start <= len && t->len <= len - t->start);
        REQUIRE(t->next > (uint32_t)i && t->next <= (uint32_t)n);
        int64_t iv;
        double dv;
        switch (t->type) {
        case JSON_STRING:
            REQUIRE(json_str_decode(s, t, dec) <= t->len);
            break;
        case JSON_NUMBER:
            json_get_int64(s, t, &iv);
            json_get_double(s, t, &dv);
            break;
        case JSON_ARRAY:
        case JSON_OBJECT: {
            uint32_t e = (uint32_t)i + 1, k = 0;
            for (; k < t->size; k++)   /* objects: key, value, key, value... */
                e = t->type == JSON_OBJECT ? toks[e + 1].next : toks[e].next;
            REQUIRE(e == t->next);
            break;
        }
        default:
            REQUIRE(json_get_int64(s, t, &iv) == -1 && json_get_double(s, t, &dv) == -1);
        }
    }
    static const char *const keys[] = { "command", "env", "", "a" };
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        int v = json_get(s, toks, 0, keys[k]);
        REQUIRE(v == -1 || (toks[0].type == JSON_OBJECT && v > 0 && v < n));
    }
    free(dec);
}

static void round_trip(const char *s, int n)
{
    struct buf a, b;
    buf_init(&a, 64u << 20);
    buf_init(&b, 64u << 20);
    json_put_token(&a, s, toks, 0);
    REQUIRE(!a.failed);
    int m = json_parse(a.data, a.len, toks2, LIMIT_JSON_TOKENS, LIMIT_JSON_DEPTH);
    REQUIRE(m == n);
    json_put_token(&b, a.data, toks2, 0);
    REQUIRE(!b.failed && a.len == b.len && memcmp(a.data, b.data, a.len) == 0);
    buf_free(&a);
    buf_free(&b);
}

/* json_put_str of arbitrary bytes: one string value, re-encoding to itself. */
static void put_str(const char *p, size_t n)
{
    struct buf a, b;
    buf_init(&a, 64u << 20);
    buf_init(&b, 64u << 20);
    json_put_str(&a, p, n);
    REQUIRE(!a.failed);
    int m = json_parse(a.data, a.len, toks2, 4, 0);
    REQUIRE(m == 1 && toks2[0].type == JSON_STRING);
    json_put_token(&b, a.data, toks2, 0);
    REQUIRE(!b.failed && a.len == b.len && memcmp(a.data, b.data, a.len) == 0);
    buf_free(&a);
    buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    int n = json_parse(s, size, toks, budget(size), LIMIT_JSON_DEPTH);
    REQUIRE(n == JSON_ERR_INVALID || n == JSON_ERR_DEPTH || n >= 1 ||
            (n == JSON_ERR_TOKENS && budget(size) == LIMIT_JSON_TOKENS));
    uint32_t half = size / 2 + 2 < LIMIT_JSON_TOKENS ? (uint32_t)(size / 2 + 2) : LIMIT_JSON_TOKENS;
    if (n >= 1)
        REQUIRE(json_parse(s, size, toks2, half, LIMIT_JSON_DEPTH) == n);
    if (n >= 1) {
        walk(s, size, n);
        round_trip(s, n);
    }
    /* a smaller budget or depth may only turn success into the matching error */
    int small = json_parse(s, size, toks2, 8, 2);
    REQUIRE(small == n || small == JSON_ERR_DEPTH || small == JSON_ERR_TOKENS);
    put_str(s, size);
    return 0;
}
