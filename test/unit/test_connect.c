/* connect.c: envelopes from tables, every split of a stream of them, and the code table. */
#include "connect.h"
#include "unit.h"

struct vec {
    const char *in;
    size_t len;
    size_t max;
    long want;           /* bytes spanned, or a connect_result */
    const char *payload;
};

static const struct vec vecs[] = {
    { "", 0, 100, CONNECT_INCOMPLETE, NULL },
    { "\0", 1, 100, CONNECT_INCOMPLETE, NULL },
    { "\0\0\0\0", 4, 100, CONNECT_INCOMPLETE, NULL },
    { "\0\0\0\0\0", 5, 100, 5, "" },
    { "\0\0\0\0\2{}", 7, 100, 7, "{}" },
    { "\0\0\0\0\2{}rest", 11, 100, 7, "{}" },
    { "\0\0\0\0\3{}", 6, 100, CONNECT_INCOMPLETE, NULL },
    { "\0\0\0\0\3{}", 6, 2, CONNECT_TOO_LARGE, NULL },
    { "\0\xff\xff\xff\xff", 5, 1u << 20, CONNECT_TOO_LARGE, NULL },
    { "\1\0\0\0\0", 5, 100, CONNECT_INVALID, NULL },     /* compressed */
    { "\2\0\0\0\0", 5, 100, CONNECT_INVALID, NULL },     /* end-stream from a client */
    { "\x80", 1, 100, CONNECT_INVALID, NULL },           /* unknown flag, known at once */
};

static void table(void)
{
    for (size_t i = 0; i < sizeof vecs / sizeof vecs[0]; i++) {
        const struct vec *v = &vecs[i];
        struct connect_envelope e;
        long r = connect_parse(v->in, v->len, v->max, &e);
        CHECK(r == v->want, "vec %zu: got %ld want %ld", i, r, v->want);
        if (r > 0 && v->payload)
            CHECK(e.len == strlen(v->payload) && memcmp(e.data, v->payload, e.len) == 0,
                  "vec %zu: payload", i);
    }
}

/* Three envelopes in one stream, fed as a reader would: the first k bytes, then all. */
static void splits(void)
{
    unsigned char s[64];
    size_t n = 0;
    const char *msgs[] = { "{\"a\":1}", "", "{\"process\":{\"pid\":7}}" };
    for (int m = 0; m < 3; m++) {
        uint32_t l = (uint32_t)strlen(msgs[m]);
        connect_prefix(s + n, 0, l);
        memcpy(s + n + CONNECT_PREFIX, msgs[m], l);
        n += CONNECT_PREFIX + l;
    }
    for (size_t k = 0; k <= n; k++) {
        size_t off = 0, have = k;
        int got = 0;
        for (int pass = 0; pass < 2; pass++) {
            for (;;) {
                struct connect_envelope e;
                long r = connect_parse((const char *)s + off, have - off, 1024, &e);
                if (r == CONNECT_INCOMPLETE)
                    break;
                CHECK(r > 0, "split %zu: error %ld", k, r);
                if (r <= 0)
                    return;
                CHECK(e.len == strlen(msgs[got]) && memcmp(e.data, msgs[got], e.len) == 0,
                      "split %zu: message %d", k, got);
                got++;
                off += (size_t)r;
            }
            have = n;   /* the rest arrives */
        }
        CHECK(got == 3 && off == n, "split %zu: %d messages, %zu bytes", k, got, off);
    }
}

static void prefix_and_codes(void)
{
    unsigned char p[CONNECT_PREFIX];
    connect_prefix(p, CONNECT_FLAG_END, 0x01020304);
    CHECK(memcmp(p, "\2\1\2\3\4", 5) == 0, "prefix bytes");
    CHECK(connect_code_status("not_found") == 404, "not_found");
    CHECK(connect_code_status("already_exists") == 409, "already_exists");
    CHECK(connect_code_status("deadline_exceeded") == 504, "deadline_exceeded");
    CHECK(connect_code_status("no_such_code") == 500, "unknown code");
    CHECK(strcmp(connect_status_code(404), "not_found") == 0, "404");
    CHECK(strcmp(connect_status_code(400), "invalid_argument") == 0, "400");
    CHECK(strcmp(connect_status_code(429), "resource_exhausted") == 0, "429");
    CHECK(strcmp(connect_status_code(418), "invalid_argument") == 0, "other 4xx");
    CHECK(strcmp(connect_status_code(502), "internal") == 0, "other 5xx");
}

int main(void)
{
    table();
    splits();
    prefix_and_codes();
    printf("connect: %d passed, %d failed, %d skipped\n", unit_passed, unit_failed, unit_skipped);
    return unit_failed != 0;
}
