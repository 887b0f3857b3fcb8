/* json.c: tables of input and expected result, every proper prefix of sample texts, and
 * JSONTestSuite (nst/JSONTestSuite test_parsing) from the shared testdata when present.
 * Inputs are copied into buffers of their exact size so ASan sees any read past the end. */
#include "json.h"
#include "limits.h"
#include "unit.h"

#include <dirent.h>
#include <float.h>
#include <math.h>

#define NTOK 64

/* In the tables, len 0 means strlen(in): an explicit length is only needed for NUL bytes. */
static size_t len_of(const char *in, size_t len)
{
    return len ? len : strlen(in);
}

/* A malloc'd copy of exactly len bytes (never NUL-terminated). */
static char *exact(const char *in, size_t len)
{
    char *p = malloc(len ? len : 1);
    if (!p)
        abort();
    memcpy(p, in, len);
    return p;
}

static int parse_exact(const char *in, size_t len, struct json_token *toks, uint32_t max_toks,
                       uint32_t max_depth)
{
    char *s = exact(in, len);
    int r = json_parse(s, len, toks, max_toks, max_depth);
    free(s);
    return r;
}

#define BAD JSON_ERR_INVALID

static void test_parse(void)
{
    static const struct { const char *in; size_t len; int want; } t[] = {
        /* valid: the token count */
        { "0", 0, 1 }, { "\"\"", 0, 1 }, { "true", 0, 1 }, { "false", 0, 1 }, { "null", 0, 1 },
        { " [ ] ", 0, 1 }, { "{}", 0, 1 }, { "[1,2,3]", 0, 4 }, { " \t\r\n1\n", 0, 1 },
        { "{\"a\":1,\"b\":[true,false,null]}", 0, 8 }, { "[[[]],{}]", 0, 4 },
        { "{\"a\":{\"b\":{}}}", 0, 5 }, { "[\"\\u0000\"]", 0, 2 },
        { "\"\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\xF4\x8F\xBF\xBF\xEF\xBF\xBF\x7F\"", 0, 1 },
        { "\"\xED\x9F\xBF\xEE\x80\x80\xF0\x90\x80\x80\"", 0, 1 },
        { "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\uD83D\\uDE00\\udbff\\udfff\"", 0, 1 },
        /* numbers */
        { "-0", 0, 1 }, { "-0.0e-0", 0, 1 }, { "1E5", 0, 1 }, { "1e05", 0, 1 }, { "0e0", 0, 1 },
        { "1.5e+10", 0, 1 }, { "123456789012345678901234567890", 0, 1 },
        { "[-1,0.5,1e-7]", 0, 4 },
        { "01", 0, BAD }, { "00", 0, BAD }, { "-01", 0, BAD }, { "+1", 0, BAD }, { ".5", 0, BAD },
        { "1.", 0, BAD }, { "1.e3", 0, BAD }, { "1e", 0, BAD }, { "1e+", 0, BAD }, { "1E", 0, BAD },
        { "-", 0, BAD }, { "--1", 0, BAD }, { "- 1", 0, BAD }, { "0x10", 0, BAD },
        { "-.5", 0, BAD }, { "1.0.0", 0, BAD }, { "1e1.5", 0, BAD }, { "Infinity", 0, BAD },
        { "NaN", 0, BAD }, { "[1_000]", 0, BAD }, { "[.1]", 0, BAD },
        /* structure */
        { "", 0, BAD }, { " ", 0, BAD }, { "[", 0, BAD }, { "]", 0, BAD }, { "[1,]", 0, BAD },
        { "[,1]", 0, BAD }, { "{,}", 0, BAD }, { "{\"a\"}", 0, BAD }, { "{\"a\":}", 0, BAD },
        { "{\"a\" 1}", 0, BAD }, { "{1:2}", 0, BAD }, { "[1 2]", 0, BAD }, { "{\"a\":1,}", 0, BAD },
        { "[}", 0, BAD }, { "{]", 0, BAD }, { "{\"a\":1 \"b\":2}", 0, BAD }, { "[1]]", 0, BAD },
        { "tru", 0, BAD }, { "truex", 0, BAD }, { "nul", 0, BAD }, { "[true false]", 0, BAD },
        { "True", 0, BAD }, { "'a'", 0, BAD }, { "[1]x", 0, BAD }, { "{}{}", 0, BAD },
        { "1 2", 0, BAD }, { "[1]\0", 4, BAD }, { "\f1", 0, BAD }, { "1\v", 0, BAD },
        { "\xEF\xBB\xBF{}", 0, BAD }, { "[\xC3\xA9]", 0, BAD }, { "\xC2\xA0" "1", 0, BAD },
        { "/* */1", 0, BAD },
        /* strings and escapes */
        { "\"abc", 0, BAD }, { "\"\\x\"", 0, BAD }, { "\"\\u12\"", 0, BAD }, { "\"\\", 0, BAD },
        { "\"\\u12g4\"", 0, BAD }, { "\"\\U0041\"", 0, BAD }, { "\"\\'\"", 0, BAD },
        { "\"a\tb\"", 0, BAD }, { "\"\x01\"", 0, BAD }, { "\"\x1f\"", 0, BAD },
        { "\"a\0b\"", 5, BAD }, { "\"a\nb\"", 0, BAD },
        /* surrogates in escapes */
        { "\"\\uD800\"", 0, BAD }, { "\"\\uDC00\"", 0, BAD }, { "\"\\uD800\\u0041\"", 0, BAD },
        { "\"\\uD800\\\"\"", 0, BAD }, { "\"\\uDBFF\\uDBFF\"", 0, BAD },
        { "\"\\uDC00\\uDC00\"", 0, BAD }, { "\"\\uDC00\\uD800\"", 0, BAD },
        { "\"\\uD800x\\uDC00\"", 0, BAD }, { "\"\\uD800\\n\"", 0, BAD },
        { "\"\\uD83D\\uDE0\"", 0, BAD },
        /* UTF-8: overlongs, surrogates, past U+10FFFF, stray and truncated sequences */
        { "\"\xC0\xAF\"", 0, BAD }, { "\"\xC1\xBF\"", 0, BAD }, { "\"\xE0\x80\xAF\"", 0, BAD },
        { "\"\xF0\x80\x80\xAF\"", 0, BAD }, { "\"\xED\xA0\x80\"", 0, BAD },
        { "\"\xED\xBF\xBF\"", 0, BAD }, { "\"\xF4\x90\x80\x80\"", 0, BAD },
        { "\"\xF5\x80\x80\x80\"", 0, BAD }, { "\"\xC3\"", 0, BAD }, { "\"\xE2\x82\"", 0, BAD },
        { "\"\xF0\x9F\x98\"", 0, BAD }, { "\"\x80\"", 0, BAD }, { "\"\xBF\"", 0, BAD },
        { "\"\xFE\"", 0, BAD }, { "\"\xFF\"", 0, BAD }, { "\"\xC3\xA9\xC3\"", 0, BAD },
        { "\"\xE2\x28\xA1\"", 0, BAD }, { "\"\xC3", 0, BAD }, { "\"\xF0\x9F", 0, BAD },
    };
    struct json_token toks[NTOK];

    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        int r = parse_exact(t[i].in, len_of(t[i].in, t[i].len), toks, NTOK, 8);
        CHECK(r == t[i].want, "parse case %zu: got %d, want %d", i, r, t[i].want);
    }
}

static void test_tokens(void)
{
    const char *s = "{\"a\":[1,\"x\"],\"b\\n\":{}}";
    struct json_token toks[NTOK];
    int n = json_parse(s, strlen(s), toks, NTOK, 8);
    static const struct { enum json_type type; uint32_t start, len, size, next; } want[] = {
        { JSON_OBJECT, 0, 22, 2, 7 }, { JSON_STRING, 2, 1, 0, 2 }, { JSON_ARRAY, 5, 7, 2, 5 },
        { JSON_NUMBER, 6, 1, 0, 4 }, { JSON_STRING, 9, 1, 0, 5 }, { JSON_STRING, 14, 3, 0, 6 },
        { JSON_OBJECT, 19, 2, 0, 7 },
    };

    CHECK(n == 7, "token count %d", n);
    for (int i = 0; i < n && i < 7; i++)
        CHECK(toks[i].type == want[i].type && toks[i].start == want[i].start &&
              toks[i].len == want[i].len && toks[i].size == want[i].size &&
              toks[i].next == want[i].next,
              "token %d: type %d start %u len %u size %u next %u", i, toks[i].type,
              toks[i].start, toks[i].len, toks[i].size, toks[i].next);
}

/* Nesting `depth` arrays: "[[[...]]]" into a malloc'd buffer of exactly 2*depth bytes. */
static int parse_nested(uint32_t depth, uint32_t max_toks, uint32_t max_depth)
{
    char *s = malloc(2 * (size_t)depth);
    struct json_token *toks = malloc((max_toks ? max_toks : 1) * sizeof *toks);
    if (!s || !toks)
        abort();
    memset(s, '[', depth);
    memset(s + depth, ']', depth);
    int r = json_parse(s, 2 * (size_t)depth, toks, max_toks, max_depth);
    free(s);
    free(toks);
    return r;
}

static void test_limits(void)
{
    static const struct { const char *in; uint32_t max_toks, max_depth; int want; } t[] = {
        { "[[1]]", 3, 2, 3 }, { "[[1]]", 2, 2, JSON_ERR_TOKENS }, { "[[1]]", 3, 1, JSON_ERR_DEPTH },
        { "1", 1, 0, 1 }, { "[]", 1, 0, JSON_ERR_DEPTH }, { "[]", 0, 1, JSON_ERR_TOKENS },
        { "1", 0, 0, JSON_ERR_TOKENS }, { "{\"a\":1}", 2, 1, JSON_ERR_TOKENS },
        { "{\"a\":1}", 3, 1, 3 }, { "x", 0, 0, JSON_ERR_INVALID },
        { "[[],[],[]]", 4, 2, 4 }, { "[[],[],[]]", 3, 2, JSON_ERR_TOKENS },
        { "[1,2,3]x", 3, 1, JSON_ERR_TOKENS },   /* the first error met, left to right */
        { "[[[x", 10, 2, JSON_ERR_DEPTH }, { "[[x", 10, 2, JSON_ERR_INVALID },
        /* fuzz regression (fuzz_json): an unclosed text outruns a len/2 + 2 budget, which
         * api.c used and answered 413; len + 1 tokens never run out before the text does */
        { "[[[[[", 4, 64, JSON_ERR_TOKENS }, { "[[[[[", 6, 64, JSON_ERR_INVALID },
        { "[1,[2,[3,[", 11, 64, JSON_ERR_INVALID },
    };
    struct json_token toks[NTOK];

    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        int r = parse_exact(t[i].in, strlen(t[i].in), toks, t[i].max_toks, t[i].max_depth);
        CHECK(r == t[i].want, "limits case %zu (%s): got %d, want %d", i, t[i].in, r, t[i].want);
    }
    CHECK(parse_nested(LIMIT_JSON_DEPTH, LIMIT_JSON_DEPTH, LIMIT_JSON_DEPTH) == LIMIT_JSON_DEPTH,
          "%d nested arrays fit", LIMIT_JSON_DEPTH);
    CHECK(parse_nested(LIMIT_JSON_DEPTH + 1, LIMIT_JSON_TOKENS, LIMIT_JSON_DEPTH) == JSON_ERR_DEPTH,
          "%d nested arrays are too deep", LIMIT_JSON_DEPTH + 1);
    CHECK(parse_nested(100000, 100000, 100000) == 100000, "deep nesting needs no recursion");
    CHECK(parse_nested(100000, LIMIT_JSON_TOKENS, 100000) == JSON_ERR_TOKENS, "token limit");
}

static void test_str_decode(void)
{
    static const struct { const char *in; const char *want; size_t want_len; } t[] = {
        { "\"\"", "", 0 },
        { "\"plain \xE2\x82\xAC\"", "plain \xE2\x82\xAC", 0 },
        { "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", "\"\\/\b\f\n\r\t", 0 },
        { "\"\\u0041\\u00e9\\u20AC\\uFFFF\"", "A\xC3\xA9\xE2\x82\xAC\xEF\xBF\xBF", 0 },
        { "\"\\uD83D\\uDE00\"", "\xF0\x9F\x98\x80", 0 },
        { "\"\\ud800\\udc00\\uDBFF\\uDFFF\"", "\xF0\x90\x80\x80\xF4\x8F\xBF\xBF", 0 },
        { "\"a\\u0000b\"", "a\0b", 3 },
        { "\"\\u0000\"", "\0", 1 },
        { "\"x\\u007F\\u0080\\u07FF\\u0800\"", "x\x7F\xC2\x80\xDF\xBF\xE0\xA0\x80", 0 },
    };
    struct json_token toks[NTOK];

    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        size_t want_len = len_of(t[i].want, t[i].want_len);
        char *s = exact(t[i].in, strlen(t[i].in));
        int r = json_parse(s, strlen(t[i].in), toks, NTOK, 8);
        CHECK(r == 1 && toks[0].type == JSON_STRING, "decode case %zu parses: %d", i, r);
        if (r == 1) {
            char *out = malloc(toks[0].len ? toks[0].len : 1);   /* the promised bound */
            size_t n = json_str_decode(s, &toks[0], out);
            CHECK(n == want_len && memcmp(out, t[i].want, n) == 0,
                  "decode case %zu: %zu bytes, want %zu", i, n, want_len);
            free(out);
        }
        free(s);
    }
}

static void test_get(void)
{
    static const struct { const char *doc, *key, *want; } t[] = {
        { "{\"a\":1,\"b\":2}", "b", "2" },
        { "{\"a\":1,\"a\":2}", "a", "2" },
        { "{\"\\u0061b\":3}", "ab", "3" },
        { "{\"a\\/b\":1}", "a/b", "1" },
        { "{\"\\u00e9\":1}", "\xC3\xA9", "1" },
        { "{\"\\uD83D\\uDE00\":\"smile\"}", "\xF0\x9F\x98\x80", "smile" },
        { "{\"\":5}", "", "5" },
        { "{\"a\\u0000b\":1}", "a", NULL },
        { "{\"ab\":1}", "a", NULL },
        { "{\"a\":1}", "ab", NULL },
        { "{\"a\":1}", "A", NULL },
        { "{\"x\":{\"a\":1},\"a\":[1,{\"a\":0}]}", "a", "[1,{\"a\":0}]" },
        { "{\"x\":{\"a\":1},\"y\":[{\"a\":2}]}", "a", NULL },
        { "{}", "a", NULL },
        { "[\"a\",1]", "a", NULL },
        { "\"a\"", "a", NULL },
    };
    struct json_token toks[NTOK];

    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        size_t len = strlen(t[i].doc);
        char *s = exact(t[i].doc, len);
        int r = json_parse(s, len, toks, NTOK, 8);
        CHECK(r > 0, "get case %zu parses: %d", i, r);
        if (r > 0) {
            int v = json_get(s, toks, 0, t[i].key);
            if (!t[i].want)
                CHECK(v == -1, "get case %zu: found %d", i, v);
            else
                CHECK(v > 0 && toks[v].len == strlen(t[i].want) &&
                      memcmp(s + toks[v].start, t[i].want, toks[v].len) == 0,
                      "get case %zu: index %d", i, v);
        }
        free(s);
    }
    const char *s = "{\"a\":{\"b\":true}}";
    json_parse(s, strlen(s), toks, NTOK, 8);
    CHECK(json_get(s, toks, -1, "a") == -1, "negative index");
    CHECK(json_get(s, toks, json_get(s, toks, 0, "a"), "b") == 4, "nested lookup");
}

static void test_int64(void)
{
    static const struct { const char *in; int rc; int64_t want; } t[] = {
        { "0", 0, 0 }, { "-0", 0, 0 }, { "-1", 0, -1 }, { "42", 0, 42 },
        { "9223372036854775807", 0, INT64_MAX }, { "9223372036854775808", -1, 0 },
        { "-9223372036854775808", 0, INT64_MIN }, { "-9223372036854775809", -1, 0 },
        { "18446744073709551616", -1, 0 }, { "12345678901234567890", -1, 0 },
        { "99999999999999999999999999", -1, 0 },
        { "1e3", 0, 1000 }, { "1E+3", 0, 1000 }, { "10.0", 0, 10 }, { "1.5e1", 0, 15 },
        { "100e-2", 0, 1 }, { "123000e-3", 0, 123 }, { "0.1e1", 0, 1 }, { "-2.50e1", 0, -25 },
        { "1e18", 0, 1000000000000000000 }, { "1e19", -1, 0 }, { "-1e19", -1, 0 },
        { "9.223372036854775807e18", 0, INT64_MAX }, { "9.223372036854775808e18", -1, 0 },
        { "-9223372036854775808.000", 0, INT64_MIN }, { "92233720368547758070e-1", 0, INT64_MAX },
        { "0.000e5", 0, 0 }, { "0e999999999999999999999", 0, 0 }, { "-0.0", 0, 0 },
        { "1.5", -1, 0 }, { "1e-1", -1, 0 }, { "123456789e-9", -1, 0 }, { "1E400", -1, 0 },
        { "1e99999999999999999999999", -1, 0 }, { "1e-99999999999999999999999", -1, 0 },
        { "0.00000000000000000000000000000000000001e38", 0, 1 },
        { "\"1\"", -1, 0 }, { "true", -1, 0 }, { "[1]", -1, 0 },
    };
    struct json_token toks[NTOK];

    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        char *s = exact(t[i].in, strlen(t[i].in));
        int64_t v = 12345;
        int r = json_parse(s, strlen(t[i].in), toks, NTOK, 8);
        int rc = r > 0 ? json_get_int64(s, &toks[0], &v) : -2;
        CHECK(rc == t[i].rc && (rc != 0 || v == t[i].want),
              "int64 case %zu (%s): rc %d value %lld", i, t[i].in, rc, (long long)v);
        free(s);
    }
}

/* Parses text as one number and returns json_get_double's result through *out. */
static int num_double(const char *text, double *out)
{
    struct json_token tok;
    char *s = exact(text, strlen(text));
    int r = json_parse(s, strlen(text), &tok, 1, 0);
    r = r == 1 ? json_get_double(s, &tok, out) : -2;
    free(s);
    return r;
}

static void test_double(void)
{
    static const struct { const char *in; int rc; double want; } t[] = {
        { "0", 0, 0 }, { "1.5", 0, 1.5 }, { "-2.5e-3", 0, -0.0025 }, { "0.1", 0, 0.1 },
        { "1e400", -1, 0 }, { "-1e400", -1, 0 }, { "1e-400", 0, 0 },
        { "1.7976931348623157e308", 0, DBL_MAX }, { "4.9e-324", 0, 4.9e-324 },
        { "9007199254740993", 0, 9007199254740992.0 },
        { "123456789012345678901234567890", 0, 1.2345678901234568e29 },
        { "1e99999999999999999999999", -1, 0 }, { "1e-99999999999999999999999", 0, 0 },
    };

    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        double v = -1;
        int rc = num_double(t[i].in, &v);
        CHECK(rc == t[i].rc && (rc != 0 || v == t[i].want),
              "double case %zu (%s): rc %d value %.17g", i, t[i].in, rc, v);
    }

    /* Long digit strings: correct rounding needs every digit, the last one included. */
    static const struct { const char *head; size_t zeros; const char *tail; double want; } l[] = {
        { "1", 1000, "e-1000", 1.0 },
        { "0.", 1000, "1e1001", 1.0 },
        { "9007199254740993.", 900, "", 9007199254740992.0 },   /* halfway: to even */
        { "9007199254740993.", 900, "1", 9007199254740994.0 },  /* just past halfway */
        { "-9007199254740993", 900, "1e-901", -9007199254740994.0 },
    };
    for (size_t i = 0; i < sizeof l / sizeof l[0]; i++) {
        size_t hl = strlen(l[i].head), tl = strlen(l[i].tail);
        char *text = malloc(hl + l[i].zeros + tl + 1);
        double v = 0;
        memcpy(text, l[i].head, hl);
        memset(text + hl, '0', l[i].zeros);
        memcpy(text + hl + l[i].zeros, l[i].tail, tl + 1);
        int rc = num_double(text, &v);
        CHECK(rc == 0 && v == l[i].want, "long double case %zu: rc %d value %.17g", i, rc, v);
        free(text);
    }
    struct json_token tok = { .type = JSON_STRING, .start = 1, .len = 1 };
    double v;
    CHECK(json_get_double("\"1\"", &tok, &v) == -1, "a string is not a number");
}

/* Runs one encoder call on a fresh buffer and compares the bytes. */
static void check_out(struct buf *b, const char *want, size_t want_len, const char *what, size_t i)
{
    size_t n = len_of(want, want_len);
    CHECK(!b->failed && b->len == n && memcmp(b->data, want, n) == 0,
          "%s case %zu: got %d bytes \"%.*s\"", what, i, (int)b->len, (int)b->len,
          b->data ? b->data : "");
    buf_reset(b);
}

#define R "\xEF\xBF\xBD"   /* U+FFFD */

static void test_put_str(void)
{
    static const struct { const char *in; size_t len; const char *want; } t[] = {
        { "", 0, "\"\"" },
        { "a\"b\\c/", 0, "\"a\\\"b\\\\c/\"" },
        { "\n\t\r\b\f", 0, "\"\\n\\t\\r\\b\\f\"" },
        { "\x01\x1f\x7f", 0, "\"\\u0001\\u001f\x7f\"" },
        { "a\0b", 3, "\"a\\u0000b\"" },
        { "\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\xF4\x8F\xBF\xBF\xE2\x80\xA8", 0,
          "\"\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\xF4\x8F\xBF\xBF\xE2\x80\xA8\"" },
        /* maximal subparts, one U+FFFD each (Unicode 3.9, tables 3-8 to 3-11) */
        { "\xC0\xAF", 0, "\"" R R "\"" },
        { "\xE0\x80\xAF", 0, "\"" R R R "\"" },
        { "\xED\xA0\x80", 0, "\"" R R R "\"" },
        { "\xF4\x90\x80\x80", 0, "\"" R R R R "\"" },
        { "\xF0\x80\x80\x80", 0, "\"" R R R R "\"" },
        { "\xF0\x9F\x98x", 0, "\"" R "x\"" },
        { "\xE2\x82", 0, "\"" R "\"" },
        { "\xE2\x82\x41", 0, "\"" R "A\"" },
        { "\x80\x80", 0, "\"" R R "\"" },
        { "\xFF", 0, "\"" R "\"" },
        { "\xF5\x80", 0, "\"" R R "\"" },
        { "\xC3\xA9\xC3", 0, "\"\xC3\xA9" R "\"" },
        { "\xC3\n", 0, "\"" R "\\n\"" },
        { "\x61\xF1\x80\x80\xE1\x80\xC2\x62\x80\x63\x80\xBF\x64", 0,
          "\"a" R R R "b" R "c" R R "d\"" },
    };
    struct buf b;

    buf_init(&b, 1 << 16);
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        char *in = exact(t[i].in, len_of(t[i].in, t[i].len));
        json_put_str(&b, in, len_of(t[i].in, t[i].len));
        free(in);
        check_out(&b, t[i].want, 0, "put_str", i);
    }
    buf_free(&b);
}

/* put_str_body writes in place, plain ASCII eight bytes at a time, with appends near a
 * buffer's cap: every byte value at every offset of a word (and of the tail) comes out as
 * the byte-by-byte rule says, both ways; long mixed input (pieces end inside words and
 * inside UTF-8 sequences) comes out the same both ways. */
static void test_put_str_words(void)
{
    struct buf b, small, want;
    char in[24];
    int bad = 0;

    buf_init(&b, 1 << 16);
    buf_init(&small, 1 << 9);   /* below the in-place room: the appends path */
    buf_init(&want, 1 << 10);
    for (int c = 0; c < 256; c++) {
        for (size_t at = 0; at < sizeof in; at++) {
            memset(in, 'a', sizeof in);
            in[at] = (char)c;
            buf_reset(&b);
            buf_reset(&small);
            buf_reset(&want);
            json_put_str(&b, in, sizeof in);
            json_put_str(&small, in, sizeof in);
            buf_putc(&want, '"');
            buf_append(&want, in, at);
            if (c == '"' || c == '\\')
                buf_printf(&want, "\\%c", c);
            else if (c == '\n' || c == '\t' || c == '\r' || c == '\b' || c == '\f')
                buf_printf(&want, "\\%c", c == '\n' ? 'n' : c == '\t' ? 't' : c == '\r' ? 'r'
                                          : c == '\b' ? 'b' : 'f');
            else if (c < 0x20)
                buf_printf(&want, "\\u%04x", c);
            else if (c >= 0x80)
                buf_puts(&want, R);
            else
                buf_putc(&want, (char)c);
            buf_append(&want, in + at + 1, sizeof in - at - 1);
            buf_putc(&want, '"');
            if (b.len != want.len || memcmp(b.data, want.data, b.len) != 0)
                bad++;
            if (small.len != want.len || memcmp(small.data, want.data, small.len) != 0)
                bad++;
        }
    }
    CHECK(bad == 0, "%d byte/offset cases differ from the byte-by-byte rule", bad);
    buf_free(&small);
    buf_free(&want);

    static const char *const parts[] = { "plain text ", "\n", "\xC3\xA9", "\xE2\x82\xAC",
                                         "\xF0\x9F\x98\x80", "\xE2\x82", "\x80", "\"", "\\",
                                         "\x01", "0123456789abcdef" };
    char big[9000];
    size_t n = 0;
    unsigned seed = 7;
    while (n < sizeof big - 20) {
        seed = seed * 1103515245u + 12345u;
        const char *part = parts[(seed >> 16) % (sizeof parts / sizeof parts[0])];
        memcpy(big + n, part, strlen(part));
        n += strlen(part);
    }
    buf_init(&small, 1 << 16);
    buf_init(&want, 1 << 9);   /* each sequence alone, by appends */
    buf_reset(&b);
    json_put_str(&b, big, n);
    for (size_t i = 0, j; i < n; i = j) {   /* a lead byte and its continuations */
        for (j = i + 1; j < n && (big[j] & 0xC0) == 0x80 && j - i < 4; j++)
            ;
        buf_reset(&want);
        json_put_str(&want, big + i, j - i);
        buf_append(&small, want.data + 1, want.len - 2);
    }
    buf_free(&want);
    CHECK(!b.failed && b.len == small.len + 2 && memcmp(b.data + 1, small.data, small.len) == 0,
          "long mixed input: in place %zu bytes vs by appends %zu", b.len, small.len);
    buf_free(&small);
    buf_free(&b);
}

static void test_put_values(void)
{
    static const struct { double v; int decimals; const char *want; } t[] = {
        { 1.532, 3, "1.532" }, { 0, 3, "0.000" }, { -2.5, 1, "-2.5" }, { 1e3, 0, "1000" },
        { 2.5, -1, "2" }, { 0.1, 20, "0.10000000000000001" }, { 12.0004, 3, "12.000" },
        { INFINITY, 3, "null" }, { -INFINITY, 3, "null" }, { NAN, 3, "null" },
    };
    struct buf b;

    buf_init(&b, 1 << 16);
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        json_put_num(&b, t[i].v, t[i].decimals);
        check_out(&b, t[i].want, 0, "put_num", i);
    }
    json_put_int(&b, INT64_MIN);
    check_out(&b, "-9223372036854775808", 0, "put_int", 0);
    json_put_cstr(&b, NULL);
    check_out(&b, "null", 0, "put_cstr", 0);

    json_sep(&b);
    buf_putc(&b, '{');
    json_put_key(&b, "a");
    json_put_int(&b, 1);
    json_put_key(&b, "b\"");
    buf_putc(&b, '[');
    json_sep(&b);
    json_put_bool(&b, 1);
    json_sep(&b);
    json_put_bool(&b, 0);
    json_sep(&b);
    json_put_cstr(&b, "x");
    buf_putc(&b, ']');
    json_put_key(&b, "c");
    json_put_null(&b);
    buf_putc(&b, '}');
    check_out(&b, "{\"a\":1,\"b\\\"\":[true,false,\"x\"],\"c\":null}", 0, "writer", 0);

    /* keys take one append when they need no escaping, else json_put_str's path: the same
     * bytes either way (controls, non-ASCII, long keys go the slow way) */
    buf_putc(&b, '[');
    buf_putc(&b, '{');
    json_put_key(&b, "tab\there");
    json_put_int(&b, 1);
    json_put_key(&b, "\xc3\xa9\xff");
    json_put_int(&b, 2);
    json_put_key(&b, "k123456789012345678901234567890123456789012345678901234567890xyz");
    json_put_int(&b, 3);
    json_put_key(&b, "");
    json_put_int(&b, 4);
    buf_putc(&b, '}');
    buf_putc(&b, ']');
    check_out(&b, "[{\"tab\\there\":1,\"\xc3\xa9" R "\":2,"
                  "\"k123456789012345678901234567890123456789012345678901234567890xyz\":3,"
                  "\"\":4}]", 0, "keys", 0);
    buf_free(&b);

    buf_init(&b, 4);
    json_put_cstr(&b, "hello");
    CHECK(b.failed, "an append past the cap is recorded");
    buf_free(&b);
}

static void test_put_token(void)
{
    static const struct { const char *in; int index; const char *want; } t[] = {
        { " { \"a\" : [ 1 , 2.50 , -0e+1 ] , \"b\\/\" : \"\\u00e9\\n\" } ", 0,
          "{\"a\":[1,2.50,-0e+1],\"b/\":\"\xC3\xA9\\n\"}" },
        { "[ [ ] , { } , [ [ ] ] ]", 0, "[[],{},[[]]]" },
        { "\"\\uD83D\\uDE00\"", 0, "\"\xF0\x9F\x98\x80\"" },
        { "\"\\u0000\\u001F\\u007f\\\"\"", 0, "\"\\u0000\\u001f\x7f\\\"\"" },
        { "[1,[2, 3]]", 2, "[2,3]" },
        { "{\"k\":{\"\\u0041\":null}}", 1, "\"k\"" },
        { "{\"k\":{\"\\u0041\":null}}", 2, "{\"A\":null}" },
        { "[true,false,null]", 0, "[true,false,null]" },
    };
    struct json_token toks[NTOK];
    struct buf b;

    buf_init(&b, 1 << 16);
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        char *s = exact(t[i].in, strlen(t[i].in));
        int r = json_parse(s, strlen(t[i].in), toks, NTOK, 8);
        CHECK(r > t[i].index, "put_token case %zu parses: %d", i, r);
        if (r > t[i].index) {
            json_put_token(&b, s, toks, t[i].index);
            check_out(&b, t[i].want, 0, "put_token", i);
        }
        free(s);
    }
    buf_free(&b);
}

/* For a text whose root is a container or string and that ends with it, every proper
 * prefix is incomplete: all must fail, cleanly, and the whole must succeed. */
static int check_prefixes(const char *in, size_t len, struct json_token *toks, uint32_t max_toks)
{
    int bad = 0;
    for (size_t cut = 0; cut < len; cut++)
        if (parse_exact(in, cut, toks, max_toks, LIMIT_JSON_DEPTH) >= 0)
            bad++;
    return bad == 0 && parse_exact(in, len, toks, max_toks, LIMIT_JSON_DEPTH) > 0;
}

static void test_prefixes(void)
{
    static const char *const t[] = {
        "{\"a\":[1,-2.5e+3,true,false,null,\"x\\ny\"],\"b\":{\"c\":{}}}",
        "[\"\\uD83D\\uDE00\xF0\x9F\x98\x80\xC3\xA9\", [], {\"\":0}]",
        "\"\\u0041\\t\"",
        " [ 1 , { \"k\" : \"v\" } ]",
        "[0,10,0.5,1e5,-0]",
    };
    struct json_token toks[NTOK];

    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        CHECK(check_prefixes(t[i], strlen(t[i]), toks, NTOK), "prefix case %zu", i);
}

/* y_: accepted, re-encoded, and the re-encoding parses and re-encodes to itself. */
static void check_accepted(const char *name, const char *s, int r, struct json_token *toks)
{
    struct buf one, two;
    buf_init(&one, 1 << 20);
    buf_init(&two, 1 << 20);
    json_put_token(&one, s, toks, 0);
    char *copy = exact(one.data ? one.data : "", one.len);
    int r2 = json_parse(copy, one.len, toks, LIMIT_JSON_TOKENS, LIMIT_JSON_DEPTH);
    if (r2 > 0)
        json_put_token(&two, copy, toks, 0);
    CHECK(!one.failed && r2 == r && two.len == one.len &&
          memcmp(one.data ? one.data : "", two.data ? two.data : "", one.len) == 0,
          "%s: re-encoding (%d tokens, then %d)", name, r, r2);
    free(copy);
    buf_free(&one);
    buf_free(&two);
}

static void test_suite(void)
{
    const char *shared = unit_shared();
    char path[4096];
    int count[3] = { 0, 0, 0 };

    if (!shared) {
        SKIP("JSONTestSuite: ../shared testdata is absent (SHARED_TESTDATA unset)");
        return;
    }
    snprintf(path, sizeof path, "%s/json-test-suite/test_parsing", shared);
    DIR *d = opendir(path);
    if (!d) {
        SKIP("JSONTestSuite: %s is absent in ../shared testdata", path);
        return;
    }
    struct json_token *toks = malloc(LIMIT_JSON_TOKENS * sizeof *toks);
    if (!toks)
        abort();
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *n = e->d_name, *kinds = "yni", *k = strchr(kinds, n[0]);
        size_t nl = strlen(n), len;
        if (!k || n[0] == 0 || n[1] != '_' || nl < 5 || strcmp(n + nl - 5, ".json") != 0)
            continue;
        snprintf(path, sizeof path, "%s/json-test-suite/test_parsing/%s", shared, n);
        char *text = unit_slurp(path, &len);
        CHECK(text != NULL, "%s: unreadable", n);
        if (!text)
            continue;
        count[k - kinds]++;
        char *s = exact(text, len);
        free(text);
        int r = json_parse(s, len, toks, LIMIT_JSON_TOKENS, LIMIT_JSON_DEPTH);
        if (*k == 'n')
            CHECK(r == JSON_ERR_INVALID || r == JSON_ERR_DEPTH, "%s: accepted (%d)", n, r);
        else if (*k == 'y')
            CHECK(r > 0, "%s: rejected (%d)", n, r);
        if (r > 0) {
            check_accepted(n, s, r, toks);
            if (len > 0 && (s[len - 1] == ']' || s[len - 1] == '}' || s[len - 1] == '"'))
                CHECK(check_prefixes(s, len, toks, LIMIT_JSON_TOKENS), "%s: prefixes", n);
        }
        free(s);
    }
    closedir(d);
    free(toks);
    CHECK(count[0] > 0 && count[1] > 0 && count[2] > 0, "suite files: %d y, %d n, %d i",
          count[0], count[1], count[2]);
    fprintf(stderr, "JSONTestSuite: %d y_, %d n_, %d i_ files\n", count[0], count[1], count[2]);
}

int main(void)
{
    test_parse();
    test_tokens();
    test_limits();
    test_str_decode();
    test_get();
    test_int64();
    test_double();
    test_put_str();
    test_put_str_words();
    test_put_values();
    test_put_token();
    test_prefixes();
    test_suite();
    return unit_report("json");
}
