#include "utf8.h"

/* Length of the character a lead byte starts (2..4), or 0 for ASCII, a continuation or an
 * invalid byte. */
static int lead_len(unsigned char c)
{
    return c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4
                                                                                         : 0;
}

/* The second byte's range after a lead (Unicode 3.9 table 3-7): no overlongs, no
 * surrogates, nothing past U+10FFFF. */
static int second_ok(unsigned char lead, unsigned char c)
{
    unsigned char lo = 0x80, hi = 0xBF;
    if (lead == 0xE0)
        lo = 0xA0;
    else if (lead == 0xED)
        hi = 0x9F;
    else if (lead == 0xF0)
        lo = 0x90;
    else if (lead == 0xF4)
        hi = 0x8F;
    return c >= lo && c <= hi;
}

size_t utf8_partial_tail(const char *p, size_t n)
{
    const unsigned char *s = (const unsigned char *)p;
    for (size_t k = 1; k <= 3 && k <= n; k++) {
        unsigned char c = s[n - k];
        if ((c & 0xC0) == 0x80)
            continue;   /* a continuation: the lead is further back */
        int len = lead_len(c);
        if (len == 0 || (size_t)len <= k)
            return 0;   /* ASCII, invalid, or a finished character */
        for (size_t j = 1; j < k; j++)
            if (j == 1 ? !second_ok(c, s[n - k + 1]) : (s[n - k + j] & 0xC0) != 0x80)
                return 0;
        return k;
    }
    return 0;
}

size_t utf8_orphan_head(const char *p, size_t n)
{
    size_t k = 0;
    while (k < 3 && k < n && ((unsigned char)p[k] & 0xC0) == 0x80)
        k++;
    return k;
}
