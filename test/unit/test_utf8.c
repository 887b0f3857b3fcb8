/* utf8.c: held-back tails and orphaned heads, by table, and the property that matters:
 * text cut at every offset, each piece rendered up to its partial tail and the tail carried
 * over to the next piece, renders exactly like the whole (no U+FFFD added or lost). */
#include "utf8.h"

#include "buf.h"
#include "json.h"
#include "unit.h"

static void check_tails(void)
{
    static const struct {
        const char *s;
        size_t tail;
    } cases[] = {
        { "", 0 },
        { "abc", 0 },
        { "a\xc3", 1 },                 /* é cut after its lead */
        { "\xc3\xa9", 0 },
        { "\xe2\x82", 2 },              /* € cut after two bytes */
        { "\xe2", 1 },
        { "\xe2\x82\xac", 0 },
        { "\xf0\x9f\x98", 3 },          /* 😀 cut after three */
        { "\xf0\x9f", 2 },
        { "\xf0", 1 },
        { "\xf0\x9f\x98\x80", 0 },
        { "\xc0", 0 },                  /* never valid: not held back */
        { "\xe0\x80", 0 },              /* overlong */
        { "\xed\xa0", 0 },              /* surrogate */
        { "\xf4\x90", 0 },              /* past U+10FFFF */
        { "\xf5", 0 },
        { "\x80", 0 },                  /* lone continuation */
        { "\x80\x80\x80", 0 },
        { "\xe2\x41", 0 },              /* broken already */
        { "x\xf0\x9f\x98", 3 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = strlen(cases[i].s);
        CHECK(utf8_partial_tail(cases[i].s, n) == cases[i].tail, "case %zu: %zu", i,
              utf8_partial_tail(cases[i].s, n));
    }
    CHECK(utf8_orphan_head("\xa9xyz", 4) == 1, "one");
    CHECK(utf8_orphan_head("\x82\xac", 2) == 2, "two");
    CHECK(utf8_orphan_head("\x9f\x98\x80", 3) == 3, "three");
    CHECK(utf8_orphan_head("\x80\x80\x80\x80", 4) == 3, "at most three");
    CHECK(utf8_orphan_head("abc", 3) == 0, "ascii");
    CHECK(utf8_orphan_head("", 0) == 0, "empty");
}

/* Renders s in pieces cut at every pair of offsets, carrying each piece's tail over. */
static void check_splits(const char *s, size_t n)
{
    struct buf whole, parts;
    buf_init(&whole, 1 << 16);
    json_put_str(&whole, s, n);
    for (size_t a = 0; a <= n; a++)
        for (size_t b = a; b <= n; b++) {
            size_t cuts[3] = { a, b, n }, from = 0;
            buf_init(&parts, 1 << 16);
            buf_putc(&parts, '"');
            for (int c = 0; c < 3; c++) {
                size_t to = cuts[c];
                size_t keep = c < 2 ? to - from - utf8_partial_tail(s + from, to - from)
                                    : to - from;
                struct buf one;
                buf_init(&one, 1 << 16);
                json_put_str(&one, s + from, keep);
                buf_append(&parts, one.data + 1, one.len - 2);   /* without its quotes */
                buf_free(&one);
                from += keep;
            }
            buf_putc(&parts, '"');
            CHECK(parts.len == whole.len && !memcmp(parts.data, whole.data, whole.len),
                  "cut at %zu,%zu: %.*s vs %.*s", a, b, (int)parts.len, parts.data,
                  (int)whole.len, whole.data);
            buf_free(&parts);
        }
    buf_free(&whole);
}

int main(void)
{
    check_tails();
    static const char text[] = "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80z\xff\xe2\x82x\xc3";
    check_splits(text, sizeof text - 1);
    check_splits("\xf0\x9f\x98\x80\xf0\x9f\x98\x80", 8);
    return unit_report("utf8");
}
