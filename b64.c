#include "b64.h"

#include <stdint.h>

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static int value(unsigned char c, unsigned flags)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (flags & B64_URL)
        return c == '-' ? 62 : c == '_' ? 63 : -1;
    if (c == '+' || (c == '-' && (flags & B64_LAX)))
        return 62;
    if (c == '/' || (c == '_' && (flags & B64_LAX)))
        return 63;
    return -1;
}

long b64_decode(const char *s, size_t n, unsigned char *out, unsigned flags)
{
    size_t o = 0, pad = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((flags & B64_LAX) && (c == ' ' || c == '\n' || c == '\r' || c == '\t'))
            continue;
        if (c == '=' && !(flags & B64_URL)) {
            pad++;
            continue;
        }
        int v = value(c, flags);
        if (v < 0 || pad)
            return -1;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    /* one character left over cannot make a byte */
    if (bits >= 6 || ((flags & B64_LAX) && pad > 2))
        return -1;
    if ((flags & B64_URL) && (acc & ((1u << bits) - 1)))
        return -1;   /* unused bits set: a second encoding of the same bytes */
    return (long)o;
}

size_t b64_encode(const unsigned char *in, size_t n, char *out)
{
    char *o = out;
    size_t i = 0;
    for (; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        *o++ = alphabet[v >> 18], *o++ = alphabet[v >> 12 & 63];
        *o++ = alphabet[v >> 6 & 63], *o++ = alphabet[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0);
        *o++ = alphabet[v >> 18], *o++ = alphabet[v >> 12 & 63];
        *o++ = i + 1 < n ? alphabet[v >> 6 & 63] : '=';
        *o++ = '=';
    }
    return (size_t)(o - out);
}

size_t b64url_encode(const unsigned char *in, size_t n, char *out)
{
    size_t o = 0;
    unsigned acc = 0, bits = 0;
    for (size_t i = 0; i < n; i++) {
        acc = acc << 8 | in[i];
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out[o++] = url_alphabet[acc >> bits & 63];
        }
        acc &= (1u << bits) - 1;
    }
    if (bits)
        out[o++] = url_alphabet[acc << (6 - bits) & 63];
    return o;
}
