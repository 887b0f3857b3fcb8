/* multipart.c: tables of bodies and their parts, each fed whole, split at every offset,
 * and one byte at a time; boundary extraction from Content-Type values. */
#include "multipart.h"

#include "unit.h"

#define OUT_CAP 8192

/* Feeds body in pieces (cuts: offsets where a new call starts, ascending) and renders
 * the events as text: "[name|filename]data..." per part, "$" at the end, "!" on error. */
static void render(const char *body, size_t n, const size_t *cuts, size_t ncuts, char *out)
{
    struct multipart m;
    multipart_init(&m, "XyZ-b", 5);
    size_t o = 0, start = 0;
    out[0] = 0;
    for (size_t c = 0; c <= ncuts; c++) {
        size_t end = c < ncuts ? cuts[c] : n;
        const char *p = body + start;
        size_t left = end - start;
        while (left > 0) {
            struct multipart_event ev;
            long r = multipart_feed(&m, p, left, &ev);
            if (r < 0) {
                o += (size_t)snprintf(out + o, OUT_CAP - o, "!%ld", r);
                return;
            }
            if (r == 0 && ev.kind == MULTIPART_NONE) {
                o += (size_t)snprintf(out + o, OUT_CAP - o, "!stuck");
                return;
            }
            switch (ev.kind) {
            case MULTIPART_PART:
                o += (size_t)snprintf(out + o, OUT_CAP - o, "[%s|%s%s]", m.name,
                                      m.has_filename ? "f=" : "", m.filename);
                break;
            case MULTIPART_DATA:
                if (o + ev.len < OUT_CAP) {
                    memcpy(out + o, ev.data, ev.len);
                    o += ev.len;
                }
                break;
            case MULTIPART_PART_END:
                out[o++] = '/';
                break;
            case MULTIPART_END:
                out[o++] = '$';
                break;
            case MULTIPART_NONE:
                break;
            }
            out[o] = 0;
            p += r;
            left -= (size_t)r;
        }
        start = end;
    }
    if (!m.done)
        o += (size_t)snprintf(out + o, OUT_CAP - o, "(cut)");
}

struct mcase {
    const char *body;
    const char *want;
};

#define D "--XyZ-b"
#define CRLF "\r\n"
static const struct mcase cases[] = {
    { D CRLF "Content-Disposition: form-data; name=\"file\"; filename=\"a.bin\"" CRLF
      "Content-Type: application/octet-stream" CRLF CRLF "hello" CRLF
      D CRLF "Content-Disposition: form-data; name=path" CRLF CRLF "/w/a.bin" CRLF D "--" CRLF,
      "[file|f=a.bin]hello/[path|]/w/a.bin/$" },
    /* preamble, epilogue, transport padding after a delimiter */
    { "ignore me" CRLF D "  \t" CRLF "content-disposition: FORM-DATA; NAME=\"x\"" CRLF CRLF
      "v" CRLF D "--epilogue\r\n--XyZ-b--",
      "[x|]v/$" },
    /* data full of near-delimiters: CR, CRLF-, CRLF--XyZ, a longer boundary, CR CR LF */
    { D CRLF "Content-Disposition: form-data; name=\"f\"; filename=\"\"" CRLF CRLF
      "\r\r\n\r\n-\r\n--\r\n--XyZ\r\n--XyZ-\r\r\n--XyZ-c" CRLF D "--",
      "[f|f=]\r\r\n\r\n-\r\n--\r\n--XyZ\r\n--XyZ-\r\r\n--XyZ-c/$" },
    /* empty part, quoted escapes in a name */
    { D CRLF "Content-Disposition: form-data; name=\"a\\\"b\"" CRLF CRLF CRLF D "--",
      "[a\"b|]/$" },
    /* no part headers at all */
    { D CRLF CRLF "x" CRLF D "--", "[|]x/$" },
    /* cut short: no closing delimiter */
    { D CRLF "Content-Disposition: form-data; name=\"f\"" CRLF CRLF "abc", "[f|]abc(cut)" },
    /* malformed: junk after a delimiter, bare LF in headers, a header without a colon */
    { D "x" CRLF, "!-1" },
    { D CRLF "Content-Disposition: form-data; name=a\n\r\n", "!-1" },
    { D CRLF "NoColon" CRLF CRLF, "!-1" },
    { D CRLF "Content-Disposition: attachment; name=a" CRLF CRLF, "!-1" },
    { D CRLF "Content-Disposition: form-data; name=\"unterminated" CRLF CRLF, "!-1" },
    { D "-x", "!-1" },
    /* only a preamble */
    { "no delimiter here", "(cut)" },
    { "", "(cut)" },
};

static void test_cases(void)
{
    static char want[OUT_CAP], got[OUT_CAP];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *b = cases[i].body;
        size_t n = strlen(b);
        render(b, n, NULL, 0, got);
        CHECK(strcmp(got, cases[i].want) == 0, "case %zu whole: got '%s' want '%s'", i, got,
              cases[i].want);
        snprintf(want, sizeof want, "%s", got);
        /* every single split */
        for (size_t cut = 1; cut < n; cut++) {
            render(b, n, &cut, 1, got);
            CHECK(strcmp(got, want) == 0, "case %zu split at %zu: '%s'", i, cut, got);
        }
        /* every pair of splits */
        for (size_t c1 = 1; c1 < n; c1++)
            for (size_t c2 = c1 + 1; c2 < n; c2++) {
                size_t cuts[2] = { c1, c2 };
                render(b, n, cuts, 2, got);
                if (strcmp(got, want) != 0) {
                    CHECK(0, "case %zu split at %zu,%zu: '%s'", i, c1, c2, got);
                    c1 = n;
                    break;
                }
            }
        /* one byte at a time */
        size_t cuts[512];
        size_t nc = 0;
        for (size_t k = 1; k < n && nc < 512; k++)
            cuts[nc++] = k;
        render(b, n, cuts, nc, got);
        CHECK(strcmp(got, want) == 0, "case %zu bytewise: '%s'", i, got);
    }
}

static void test_limits(void)
{
    /* a header section over LIMIT_MULTIPART_HEADER */
    static char body[LIMIT_MULTIPART_HEADER * 2];
    size_t o = (size_t)snprintf(body, sizeof body, D CRLF);
    while (o + 100 < sizeof body)
        o += (size_t)snprintf(body + o, sizeof body - o, "X-Pad: %080d" CRLF, 0);
    char got[OUT_CAP];
    render(body, o, NULL, 0, got);
    CHECK(strcmp(got, "!-2") == 0, "huge header section: '%s'", got);
    /* a name over LIMIT_MULTIPART_NAME */
    o = (size_t)snprintf(body, sizeof body, D CRLF "Content-Disposition: form-data; name=\"");
    memset(body + o, 'n', LIMIT_MULTIPART_NAME + 5);
    o += LIMIT_MULTIPART_NAME + 5;
    o += (size_t)snprintf(body + o, sizeof body - o, "\"" CRLF CRLF);
    render(body, o, NULL, 0, got);
    CHECK(strcmp(got, "!-2") == 0, "long name: '%s'", got);
}

struct bcase {
    const char *ct;
    const char *want;   /* NULL: -1 */
};

static const struct bcase bcases[] = {
    { "multipart/form-data; boundary=abc", "abc" },
    { "Multipart/Form-Data;boundary=\"a b:c\"", "a b:c" },
    { "multipart/form-data; charset=utf-8; boundary=----WebKitFormBoundary7MA4YWxkTrZu0gW",
      "----WebKitFormBoundary7MA4YWxkTrZu0gW" },
    { "multipart/form-data; boundary=--------------------------123456789012345678901234",
      "--------------------------123456789012345678901234" },
    { "multipart/form-data", NULL },
    { "multipart/mixed; boundary=abc", NULL },
    { "application/octet-stream", NULL },
    { "multipart/form-data; boundary=", NULL },
    { "multipart/form-data; boundary=\"trailing \"", NULL },
    { "multipart/form-data; boundary=a\rb", NULL },
    { "multipart/form-data; boundary=\"unterminated", NULL },
    { "multipart/form-data; boundary=12345678901234567890123456789012345678901234567890"
      "123456789012345678901", NULL },
    { "multipart/form-dataX; boundary=abc", NULL },
};

static void test_boundary(void)
{
    for (size_t i = 0; i < sizeof bcases / sizeof bcases[0]; i++) {
        char out[LIMIT_MULTIPART_BOUNDARY + 1];
        int r = multipart_boundary(bcases[i].ct, strlen(bcases[i].ct), out);
        if (!bcases[i].want)
            CHECK(r == -1, "boundary %zu: %d", i, r);
        else
            CHECK(r == (int)strlen(bcases[i].want) && strcmp(out, bcases[i].want) == 0,
                  "boundary %zu: %d '%s'", i, r, r > 0 ? out : "");
    }
}

int main(void)
{
    test_cases();
    test_limits();
    test_boundary();
    return unit_report("multipart");
}
