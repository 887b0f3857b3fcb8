/* b64.c: RFC 4648 10 vectors both ways, the strict and lax decoders' rules by table,
 * decoding in place, and strict unpadded base64url (JWTs). */
#include "b64.h"

#include "unit.h"

static void check_rfc(void)
{
    static const char *const plain[] = { "", "f", "fo", "foo", "foob", "fooba", "foobar" };
    static const char *const coded[] = { "", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=",
                                         "Zm9vYmFy" };
    for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++) {
        char enc[16];
        unsigned char dec[16];
        size_t pn = strlen(plain[i]), cn = strlen(coded[i]);
        size_t e = b64_encode((const unsigned char *)plain[i], pn, enc);
        CHECK(e == cn && e == B64_ENCODED_LEN(pn) && !memcmp(enc, coded[i], e), "encode %zu", i);
        for (unsigned flags = 0; flags <= B64_LAX; flags++) {
            long d = b64_decode(coded[i], cn, dec, flags);
            CHECK(d == (long)pn && !memcmp(dec, plain[i], pn), "decode %zu flags %u: %ld", i,
                  flags, d);
        }
    }
}

static void check_rules(void)
{
    static const struct {
        const char *s;
        long strict, lax;      /* decoded length or -1 */
    } cases[] = {
        { "Zm8", 2, 2 },            /* padding optional */
        { "Z", -1, -1 },            /* one leftover character */
        { "Zm8=x", -1, -1 },        /* data after '=' */
        { "Z=m8", -1, -1 },
        { "Zg===", 1, -1 },         /* strict ignores any '=' run; lax allows two */
        { "=", 0, 0 },
        { "Zm 9v", -1, 3 },         /* whitespace: lax only */
        { "Zm9v\r\n", -1, 3 },
        { "Zg= =", -1, 1 },
        { "-_8", -1, 2 },           /* URL-safe: lax only */
        { "+/8", 2, 2 },
        { "Zm9*", -1, -1 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        unsigned char dec[16];
        size_t n = strlen(cases[i].s);
        long s = b64_decode(cases[i].s, n, dec, 0), l = b64_decode(cases[i].s, n, dec, B64_LAX);
        CHECK(s == cases[i].strict, "case %zu strict: %ld", i, s);
        CHECK(l == cases[i].lax, "case %zu lax: %ld", i, l);
    }
    static const unsigned char bytes[] = { 0xfb, 0xff, 0xbf };   /* "+/+/" and "-_-_" */
    unsigned char dec[4];
    CHECK(b64_decode("-_-_", 4, dec, B64_LAX) == 3 && !memcmp(dec, bytes, 3), "url-safe bytes");
}

static void check_in_place(void)
{
    char s[] = "Zm9v YmFy\nYg==";
    long d = b64_decode(s, strlen(s), (unsigned char *)s, B64_LAX);
    CHECK(d == 7 && !memcmp(s, "foobarb", 7), "in place: %ld", d);
}

static void check_url(void)
{
    static const char *const plain[] = { "", "f", "fo", "foo", "foob", "fooba", "foobar" };
    static const char *const coded[] = { "", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy" };
    for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++) {
        char enc[16];
        unsigned char dec[16];
        size_t pn = strlen(plain[i]), cn = strlen(coded[i]);
        size_t e = b64url_encode((const unsigned char *)plain[i], pn, enc);
        CHECK(e == cn && e == B64URL_ENCODED_LEN(pn) && !memcmp(enc, coded[i], e), "url %zu", i);
        long d = b64_decode(coded[i], cn, dec, B64_URL);
        CHECK(d == (long)pn && !memcmp(dec, plain[i], pn), "url decode %zu: %ld", i, d);
    }
    static const struct {
        const char *s;
        long len;              /* decoded length or -1 */
    } cases[] = {
        { "-_8", 2 },           /* the URL-safe alphabet ... */
        { "+/8", -1 },          /* ... only */
        { "Zg==", -1 },         /* no padding */
        { "Zg=", -1 },
        { "Zm 9v", -1 },        /* no whitespace */
        { "Z", -1 },            /* one leftover character */
        { "Zh", -1 },           /* unused bits set: "Zg" is the one encoding of "f" */
        { "Zm9", -1 },          /* "Zm8" is the one encoding of "fo" */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        unsigned char dec[16];
        long d = b64_decode(cases[i].s, strlen(cases[i].s), dec, B64_URL);
        CHECK(d == cases[i].len, "url case %zu: %ld", i, d);
    }
    static const unsigned char bytes[] = { 0xfb, 0xff, 0xbf };
    char enc[4];
    CHECK(b64url_encode(bytes, 3, enc) == 4 && !memcmp(enc, "-_-_", 4), "url-safe encode");
}

int main(void)
{
    check_rfc();
    check_rules();
    check_in_place();
    check_url();
    return unit_report("b64");
}
