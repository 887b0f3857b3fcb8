#include "json.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "No open container" in the parser's parent chain. */
#define JSON_NONE UINT32_MAX

/* Significant digits handed to strtod. A double's exact decimal expansion needs at most 767,
 * so any digits past 800 only matter as "something non-zero follows": one sticky '1'. */
#define JSON_DIGITS_MAX 800

/* Exponents are read up to this bound. It exceeds every digit count an input can hold
 * (< 2^32 bytes), so a clamped exponent still lands far outside int64 and double range. */
#define JSON_EXP_CAP 1000000000000LL

struct parser {
    const char *s;
    uint32_t len, pos;
    struct json_token *toks;
    uint32_t ntok, max_toks;
    uint32_t depth, max_depth;
    uint32_t open;   /* innermost unclosed container, or JSON_NONE */
};

/* A number token as significant digits times a power of ten. The digits are the integer
 * part followed by the fraction, indexed 0..ni+nf-1 without the '.' between them. */
struct num {
    int neg, zero;
    const char *ip, *fp;       /* integer and fraction digits */
    uint32_t ni, nf;
    uint64_t first, last;      /* first and last non-zero digit (unless zero) */
    int64_t scale;             /* value = digits[first..last] x 10^scale */
};

/* The two-character escapes: esc_names[i] after a backslash stands for esc_chars[i]. */
static const char esc_names[] = "\"\\/bfnrt", esc_chars[] = "\"\\/\b\f\n\r\t";

/* UTF-8 and escapes, shared by the parser and the encoder. */

/* Length of the UTF-8 sequence at p[0..n) and *ok = 1 when it is well-formed (Unicode
 * Table 3-7: no overlongs, no surrogates, nothing past U+10FFFF). When it is not, *ok = 0
 * and the length is that of its maximal subpart, the unit one U+FFFD replaces. */
static size_t utf8_seq(const unsigned char *p, size_t n, int *ok)
{
    unsigned char c = p[0], lo = 0x80, hi = 0xBF;
    size_t need;

    *ok = 0;
    if (c < 0x80) {
        need = 0;
    } else if (c >= 0xC2 && c <= 0xDF) {
        need = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 2;
        lo = c == 0xE0 ? 0xA0 : 0x80;   /* E0 80..9F would be overlong */
        hi = c == 0xED ? 0x9F : 0xBF;   /* ED A0..BF would be a surrogate */
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 3;
        lo = c == 0xF0 ? 0x90 : 0x80;   /* overlong */
        hi = c == 0xF4 ? 0x8F : 0xBF;   /* past U+10FFFF */
    } else {
        return 1;
    }
    for (size_t i = 1; i <= need; i++) {
        if (i >= n || p[i] < lo || p[i] > hi)
            return i;
        lo = 0x80;
        hi = 0xBF;
    }
    *ok = 1;
    return need + 1;
}

static size_t utf8_put(uint32_t cp, char *out)
{
    static const unsigned char lead[] = { 0, 0, 0xC0, 0xE0, 0xF0 };
    size_t n = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;

    for (size_t i = n - 1; i > 0; i--, cp >>= 6)
        out[i] = (char)(0x80 | (cp & 0x3F));
    out[0] = (char)(lead[n] | cp);
    return n;
}

static int hex4(const char *p, uint32_t *v)
{
    *v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        int d = c >= '0' && c <= '9' ? c - '0'
              : c >= 'a' && c <= 'f' ? c - 'a' + 10
              : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0)
            return -1;
        *v = *v << 4 | (uint32_t)d;
    }
    return 0;
}

/* Reads the escape at p[0..n) (p[0] is the backslash) into a code point. Returns the bytes
 * it spans (2, 6, or 12 for a surrogate pair) or 0 when invalid. A surrogate must come as
 * a high/low pair: a lone half has no code point and no UTF-8 form (RFC 8259 section 8.2). */
static size_t escape_read(const char *p, size_t n, uint32_t *cp)
{
    const char *e = n >= 2 ? memchr(esc_names, p[1], sizeof esc_names - 1) : NULL;
    uint32_t hi, lo;

    if (e) {
        *cp = (unsigned char)esc_chars[e - esc_names];
        return 2;
    }
    if (n < 6 || p[1] != 'u' || hex4(p + 2, &hi) < 0)
        return 0;
    if (hi < 0xD800 || hi > 0xDFFF) {
        *cp = hi;
        return 6;
    }
    if (hi > 0xDBFF || n < 12 || p[6] != '\\' || p[7] != 'u' || hex4(p + 8, &lo) < 0 ||
        lo < 0xDC00 || lo > 0xDFFF)
        return 0;
    *cp = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
    return 12;
}

/* One unit of a parsed string's raw bytes s[*pos..end): a byte, or an escape decoded to
 * UTF-8. Writes 1..4 bytes to out, advances *pos and returns the count. */
static size_t str_unit(const char *s, uint32_t *pos, uint32_t end, char *out)
{
    uint32_t cp;

    if (s[*pos] != '\\') {
        out[0] = s[(*pos)++];
        return 1;
    }
    *pos += (uint32_t)escape_read(s + *pos, end - *pos, &cp);
    return utf8_put(cp, out);
}

/* The parser. Positions are uint32_t: json_parse refuses longer input up front. */

static int is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static void skip_ws(struct parser *p)
{
    while (p->pos < p->len && is_ws(p->s[p->pos]))
        p->pos++;
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static uint32_t digits_end(const char *s, uint32_t i, uint32_t len)
{
    while (i < len && is_digit(s[i]))
        i++;
    return i;
}

/* End of the number starting at s[i], or 0 when it breaks the RFC 8259 grammar
 * -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?  What follows is the caller's. */
static uint32_t number_end(const char *s, uint32_t i, uint32_t len)
{
    uint32_t j;

    if (i < len && s[i] == '-')
        i++;
    if (i < len && s[i] == '0')
        i++;
    else if (i < len && s[i] >= '1' && s[i] <= '9')
        i = digits_end(s, i, len);
    else
        return 0;
    if (i < len && s[i] == '.') {
        if ((j = digits_end(s, i + 1, len)) == i + 1)
            return 0;
        i = j;
    }
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < len && (s[i] == '+' || s[i] == '-'))
            i++;
        if ((j = digits_end(s, i, len)) == i)
            return 0;
        i = j;
    }
    return i;
}

/* End of the string whose opening quote is at s[i] (just past the closing quote), or 0. */
static uint32_t string_end(const char *s, uint32_t i, uint32_t len)
{
    uint32_t cp;
    int ok;

    for (i++; i < len;) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"')
            return i + 1;
        if (c < 0x20)
            return 0;
        if (c == '\\') {
            size_t n = escape_read(s + i, len - i, &cp);
            if (n == 0)
                return 0;
            i += (uint32_t)n;
        } else if (c < 0x80) {
            i++;
        } else {
            i += (uint32_t)utf8_seq((const unsigned char *)s + i, len - i, &ok);
            if (!ok)
                return 0;
        }
    }
    return 0;
}

static struct json_token *token_new(struct parser *p, enum json_type type)
{
    if (p->ntok == p->max_toks)
        return NULL;
    struct json_token *t = &p->toks[p->ntok++];
    *t = (struct json_token){ .type = type, .start = p->pos, .next = p->ntok };
    return t;
}

/* Until a container closes, its `next` field holds its parent's index: the tokens are the
 * stack, so depth costs no memory of ours and needs no recursion. */
static int container_open(struct parser *p, enum json_type type)
{
    if (p->depth == p->max_depth)
        return JSON_ERR_DEPTH;
    struct json_token *t = token_new(p, type);
    if (!t)
        return JSON_ERR_TOKENS;
    t->next = p->open;
    p->open = (uint32_t)(t - p->toks);
    p->depth++;
    p->pos++;
    return 1;
}

static void container_close(struct parser *p)
{
    struct json_token *t = &p->toks[p->open];
    p->pos++;
    p->open = t->next;
    t->next = p->ntok;
    t->len = p->pos - t->start;
    p->depth--;
}

/* A scalar whose text is s[pos..end); end 0 means it was invalid. */
static int scalar_add(struct parser *p, enum json_type type, uint32_t end)
{
    if (end == 0)
        return JSON_ERR_INVALID;
    struct json_token *t = token_new(p, type);
    if (!t)
        return JSON_ERR_TOKENS;
    if (type == JSON_STRING) {
        t->start++;
        t->len = end - 1 - t->start;
    } else {
        t->len = end - t->start;
    }
    p->pos = end;
    return 0;
}

static uint32_t literal_end(const struct parser *p, const char *word)
{
    size_t n = strlen(word);
    if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n) != 0)
        return 0;
    return p->pos + (uint32_t)n;
}

/* One value at p->pos. Returns 1 when it opened a container, 0 for a complete scalar. */
static int value_parse(struct parser *p)
{
    char c = p->pos < p->len ? p->s[p->pos] : 0;

    switch (c) {
    case '[': return container_open(p, JSON_ARRAY);
    case '{': return container_open(p, JSON_OBJECT);
    case '"': return scalar_add(p, JSON_STRING, string_end(p->s, p->pos, p->len));
    case 't': return scalar_add(p, JSON_TRUE, literal_end(p, "true"));
    case 'f': return scalar_add(p, JSON_FALSE, literal_end(p, "false"));
    case 'n': return scalar_add(p, JSON_NULL, literal_end(p, "null"));
    }
    if (c == '-' || is_digit(c))
        return scalar_add(p, JSON_NUMBER, number_end(p->s, p->pos, p->len));
    return JSON_ERR_INVALID;
}

/* One array element, or one object member (key, ':', value). */
static int item_parse(struct parser *p)
{
    skip_ws(p);
    if (p->open != JSON_NONE) {
        struct json_token *c = &p->toks[p->open];
        c->size++;
        if (c->type == JSON_OBJECT) {
            if (p->pos >= p->len || p->s[p->pos] != '"')
                return JSON_ERR_INVALID;
            int r = scalar_add(p, JSON_STRING, string_end(p->s, p->pos, p->len));
            if (r < 0)
                return r;
            skip_ws(p);
            if (p->pos >= p->len || p->s[p->pos] != ':')
                return JSON_ERR_INVALID;
            p->pos++;
            skip_ws(p);
        }
    }
    return value_parse(p);
}

/* After an item (or right after an opening bracket, when `opened`): closes containers and
 * takes one ','. Returns 1 when the root value is complete, 0 when an item follows. */
static int item_after(struct parser *p, int opened)
{
    for (;;) {
        skip_ws(p);
        if (p->open == JSON_NONE)
            return 1;
        if (p->pos >= p->len)
            return JSON_ERR_INVALID;
        char c = p->s[p->pos];
        if (c == (p->toks[p->open].type == JSON_ARRAY ? ']' : '}')) {
            container_close(p);
            opened = 0;
        } else if (opened) {
            return 0;
        } else if (c == ',') {
            p->pos++;
            return 0;
        } else {
            return JSON_ERR_INVALID;
        }
    }
}

/* Numbers, read after a parse: the text is known to follow the grammar. */

static char num_digit(const struct num *n, uint64_t k)
{
    return k < n->ni ? n->ip[k] : n->fp[k - n->ni];
}

static void num_split(const char *s, const struct json_token *t, struct num *n)
{
    const char *p = s + t->start, *end = p + t->len;
    int64_t exp = 0;
    int eneg = 0;

    n->neg = *p == '-';
    p += n->neg;
    for (n->ip = p; p < end && is_digit(*p); p++) {}
    n->ni = (uint32_t)(p - n->ip);
    n->fp = p;
    n->nf = 0;
    if (p < end && *p == '.') {
        for (n->fp = ++p; p < end && is_digit(*p); p++) {}
        n->nf = (uint32_t)(p - n->fp);
    }
    if (p < end) {
        p++;
        eneg = *p == '-';
        p += *p == '-' || *p == '+';
        for (; p < end; p++)
            exp = exp < JSON_EXP_CAP ? exp * 10 + (*p - '0') : JSON_EXP_CAP;
    }
    uint64_t nd = (uint64_t)n->ni + n->nf;
    for (n->first = 0; n->first < nd && num_digit(n, n->first) == '0'; n->first++) {}
    n->zero = n->first == nd;
    for (n->last = nd; n->last > n->first && num_digit(n, n->last - 1) == '0'; n->last--) {}
    n->last--;
    n->scale = (eneg ? -exp : exp) - (int64_t)n->nf + (int64_t)(nd - 1 - n->last);
}

/* The encoder. put_str_body is the one place where bytes become string content. */

/* The escape for an ASCII byte that may not appear raw in a JSON string, into tmp: the
 * short form when there is one ('/' never gets here), else \u00xx. Returns its length. */
static size_t escape_for(unsigned char c, char tmp[7])
{
    static const char hex[] = "0123456789abcdef";
    char name = c == '\n' ? 'n' : c == '"' ? '"' : c == '\\' ? '\\' : c == '\t' ? 't'
              : c == '\r' ? 'r' : c == '\b' ? 'b' : c == '\f' ? 'f' : 0;   /* esc_chars, no '/' */

    tmp[0] = '\\';
    if (name) {
        tmp[1] = name;
        return 2;
    }
    memcpy(tmp + 1, "u00", 3);
    tmp[4] = hex[c >> 4];
    tmp[5] = hex[c & 15];
    return 6;
}

/* Eight bytes that are all plain ASCII (0x20..0x7f but '"' and '\\'): copied as they are.
 * The SWAR tests are exact about "some byte is": x - n*ONES borrows into a byte's top bit
 * only for a byte below n (with no top bit set in x, which the first test excludes). */
#define ONES 0x0101010101010101ull
#define HIGHS 0x8080808080808080ull
static int plain8(const char *p)
{
    uint64_t x, q, s;
    memcpy(&x, p, 8);
    q = x ^ (ONES * '"');
    s = x ^ (ONES * '\\');
    return !((x | ((x - ONES * 0x20) & ~x) | ((q - ONES) & ~q) | ((s - ONES) & ~s)) & HIGHS);
}

/* Input bytes encoded per step straight into the buffer: room for the worst case (6 bytes
 * out per byte in, +8 for the last word or sequence) is reserved first, a few KiB, so the
 * buffer grows by what is written, not by six times the input. */
#define STR_PIECE 2048
#define STR_PIECE_ROOM (6 * (STR_PIECE + 8))

/* The inside of a quoted string, by appends: for the last bytes before a buffer's cap,
 * where the worst case may not fit but the actual bytes may. */
static void put_str_appends(struct buf *b, const char *p, size_t n)
{
    size_t i = 0, run = 0, elen, step;
    char tmp[7];
    const char *esc;
    int ok;

    while (i < n) {
        unsigned char c = (unsigned char)p[i];
        step = 1;
        esc = tmp;
        if (c >= 0x80) {
            step = utf8_seq((const unsigned char *)p + i, n - i, &ok);
            if (ok) {
                i += step;
                continue;
            }
            esc = "\xEF\xBF\xBD";
            elen = 3;
        } else if (c >= 0x20 && c != '"' && c != '\\') {
            i++;
            continue;
        } else {
            elen = escape_for(c, tmp);
        }
        buf_append(b, p + run, i - run);
        buf_append(b, esc, elen);
        i += step;
        run = i;
    }
    buf_append(b, p + run, i - run);
}

/* The inside of a quoted string. Stateless across calls, so callers may split p anywhere
 * that is not inside a UTF-8 sequence. Written in place, plain text eight bytes at a time
 * (a followed 1 GB output spent a fifth of the agent's CPU here byte by byte, with two
 * appends per newline). */
static void put_str_body(struct buf *b, const char *p, size_t n)
{
    size_t i = 0, step;
    int ok;

    while (i < n) {
        if (b->failed || STR_PIECE_ROOM > b->max - b->len || buf_reserve(b, STR_PIECE_ROOM) < 0) {
            put_str_appends(b, p + i, n - i);
            return;
        }
        char *o = b->data + b->len, *o0 = o;
        size_t stop = n - i < STR_PIECE ? n : i + STR_PIECE;
        while (i < stop) {
            if (n - i >= 8 && plain8(p + i)) {
                memcpy(o, p + i, 8);
                o += 8;
                i += 8;
                continue;
            }
            unsigned char c = (unsigned char)p[i];
            if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
                *o++ = (char)c;
                i++;
            } else if (c < 0x80) {
                o += escape_for(c, o);
                i++;
            } else {
                step = utf8_seq((const unsigned char *)p + i, n - i, &ok);
                if (ok)
                    memcpy(o, p + i, step);
                else
                    memcpy(o, "\xEF\xBF\xBD", 3);
                o += ok ? step : 3;
                i += step;
            }
        }
        b->len += (size_t)(o - o0);
    }
}

/* A parsed string re-encoded from its decoded bytes: raw runs (valid UTF-8, checked by the
 * parser) and decoded escapes go through put_str_body, as json_put_str would take them. */
static void put_token_str(struct buf *b, const char *s, const struct json_token *t)
{
    uint32_t pos = t->start, end = t->start + t->len;
    char u[4];

    buf_putc(b, '"');
    while (pos < end) {
        const char *bs = memchr(s + pos, '\\', end - pos);
        uint32_t run = bs ? (uint32_t)(bs - (s + pos)) : end - pos;
        put_str_body(b, s + pos, run);
        pos += run;
        if (pos < end)
            put_str_body(b, u, str_unit(s, &pos, end, u));
    }
    buf_putc(b, '"');
}

static int str_equals(const char *s, const struct json_token *t, const char *key, size_t klen)
{
    uint32_t pos = t->start, end = t->start + t->len;
    size_t k = 0, n;
    char u[4];

    while (pos < end) {
        n = str_unit(s, &pos, end, u);
        if (n > klen - k || memcmp(u, key + k, n) != 0)
            return 0;
        k += n;
    }
    return k == klen;
}

int json_parse_at(const char *s, size_t len, struct json_token *toks, uint32_t max_toks,
                  uint32_t max_depth, uint32_t *err_pos)
{
    if (len > UINT32_MAX)
        return JSON_ERR_INVALID;
    struct parser p = {
        .s = s, .len = (uint32_t)len, .toks = toks,
        .max_toks = max_toks > INT32_MAX ? INT32_MAX : max_toks,   /* the count returns as int */
        .max_depth = max_depth, .open = JSON_NONE,
    };
    int r;

    do {
        if ((r = item_parse(&p)) < 0 || (r = item_after(&p, r)) < 0)
            break;
    } while (r == 0);
    if (r >= 0 && p.pos != p.len)
        r = JSON_ERR_INVALID;
    if (r < 0 && err_pos)
        *err_pos = p.pos;
    return r < 0 ? r : (int)p.ntok;
}

int json_parse(const char *s, size_t len, struct json_token *toks, uint32_t max_toks,
               uint32_t max_depth)
{
    return json_parse_at(s, len, toks, max_toks, max_depth, NULL);
}

int json_get(const char *s, const struct json_token *toks, int obj, const char *key)
{
    if (obj < 0 || toks[obj].type != JSON_OBJECT)
        return -1;
    size_t klen = strlen(key);
    uint32_t k = (uint32_t)obj + 1;
    int found = -1;

    for (uint32_t m = 0; m < toks[obj].size; m++) {
        if (str_equals(s, &toks[k], key, klen))
            found = (int)k + 1;
        k = toks[k + 1].next;
    }
    return found;
}

size_t json_str_decode(const char *s, const struct json_token *t, char *out)
{
    uint32_t pos = t->start, end = t->start + t->len;
    size_t o = 0;

    while (pos < end) {
        const char *bs = memchr(s + pos, '\\', end - pos);
        uint32_t run = bs ? (uint32_t)(bs - (s + pos)) : end - pos;
        memcpy(out + o, s + pos, run);
        o += run;
        pos += run;
        if (pos < end)
            o += str_unit(s, &pos, end, out + o);
    }
    return o;
}

int json_get_int64(const char *s, const struct json_token *t, int64_t *out)
{
    struct num n;
    uint64_t v = 0;

    if (t->type != JSON_NUMBER)
        return -1;
    num_split(s, t, &n);
    if (n.zero) {
        *out = 0;
        return 0;
    }
    /* 19 digits stay below 10^19 < 2^64, so v cannot wrap before the range check. */
    if (n.scale < 0 || n.last - n.first + 1 + (uint64_t)n.scale > 19)
        return -1;
    for (uint64_t k = n.first; k <= n.last; k++)
        v = v * 10 + (uint64_t)(num_digit(&n, k) - '0');
    for (int64_t e = 0; e < n.scale; e++)
        v *= 10;
    if (v > (n.neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX))
        return -1;
    *out = n.neg ? -(int64_t)(v - 1) - 1 : (int64_t)v;   /* -2^63 has no positive twin */
    return 0;
}

int json_get_double(const char *s, const struct json_token *t, double *out)
{
    char text[JSON_DIGITS_MAX + 32];   /* '-', digits, sticky digit, "e-..." */
    struct num n;
    size_t o = 0;

    if (t->type != JSON_NUMBER)
        return -1;
    /* The token is not NUL-terminated, so strtod reads a normalized copy. */
    num_split(s, t, &n);
    if (n.neg)
        text[o++] = '-';
    if (n.zero) {
        text[o++] = '0';
        text[o] = 0;
    } else {
        uint64_t k, nd = n.last - n.first + 1;
        for (k = n.first; k <= n.last && k - n.first < JSON_DIGITS_MAX; k++)
            text[o++] = num_digit(&n, k);
        int64_t scale = n.scale + (int64_t)(nd - (k - n.first));
        if (k <= n.last) {
            text[o++] = '1';
            scale--;
        }
        /* Past 10^+-100000 a few hundred digits give inf or 0 anyway; keep strtod's
         * exponent arithmetic small. */
        scale = scale > 100000 ? 100000 : scale < -100000 ? -100000 : scale;
        snprintf(text + o, sizeof text - o, "e%" PRId64, scale);
    }
    int saved = errno;   /* pure module: strtod's ERANGE is ours to hide */
    *out = strtod(text, NULL);
    errno = saved;
    return isfinite(*out) ? 0 : -1;
}

void json_sep(struct buf *b)
{
    if (b->len > 0 && b->data[b->len - 1] != '{' && b->data[b->len - 1] != '[')
        buf_putc(b, ',');
}

void json_put_str(struct buf *b, const char *p, size_t n)
{
    buf_putc(b, '"');
    put_str_body(b, p, n);
    buf_putc(b, '"');
}

void json_put_cstr(struct buf *b, const char *s)
{
    if (s)
        json_put_str(b, s, strlen(s));
    else
        json_put_null(b);
}

void json_put_int(struct buf *b, int64_t v)
{
    /* by hand: printf's machinery is most of the cost of a record list */
    char tmp[24], *p = tmp + sizeof tmp;
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    do
        *--p = (char)('0' + u % 10);
    while (u /= 10);
    if (v < 0)
        *--p = '-';
    buf_append(b, p, (size_t)(tmp + sizeof tmp - p));
}

void json_put_num(struct buf *b, double v, int decimals)
{
    if (!isfinite(v)) {
        json_put_null(b);
        return;
    }
    decimals = decimals < 0 ? 0 : decimals > 17 ? 17 : decimals;
    if (decimals <= 6 && fabs(v) < 1e12) {
        /* fixed point by hand for the common case (durations in seconds, 3 decimals) */
        static const int64_t pow10[] = { 1, 10, 100, 1000, 10000, 100000, 1000000 };
        int64_t scaled = (int64_t)nearbyint(fabs(v) * (double)pow10[decimals]); /* half-even, as printf */
        if (v < 0 && scaled)
            buf_putc(b, '-');
        json_put_int(b, scaled / pow10[decimals]);
        if (decimals) {
            char frac[8];
            int64_t f = scaled % pow10[decimals];
            for (int i = decimals - 1; i >= 0; i--, f /= 10)
                frac[i] = (char)('0' + f % 10);
            buf_putc(b, '.');
            buf_append(b, frac, (size_t)decimals);
        }
        return;
    }
    buf_printf(b, "%.*f", decimals, v);
}

void json_put_bool(struct buf *b, int v)
{
    buf_puts(b, v ? "true" : "false");
}

void json_put_null(struct buf *b)
{
    buf_puts(b, "null");
}

void json_put_key(struct buf *b, const char *key)
{
    /* keys are mostly literals that need no escaping: separator, quotes, key and colon go
     * in one append (appends per token were the top of a record list's profile) */
    size_t n = strlen(key);
    char tmp[64];
    if (n > sizeof tmp - 4)
        goto slow;
    size_t o = 0;
    if (b->len > 0 && b->data[b->len - 1] != '{' && b->data[b->len - 1] != '[')
        tmp[o++] = ',';
    tmp[o++] = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)key[i];
        if (c < 0x20 || c >= 0x80 || c == '"' || c == '\\')
            goto slow;
        tmp[o++] = (char)c;
    }
    tmp[o++] = '"';
    tmp[o++] = ':';
    buf_append(b, tmp, o);
    return;
slow:
    json_sep(b);
    json_put_str(b, key, n);
    buf_putc(b, ':');
}

void json_put_token(struct buf *b, const char *s, const struct json_token *toks, int i)
{
    const struct json_token *t = &toks[i];
    uint32_t k = (uint32_t)i + 1;

    switch (t->type) {
    case JSON_NULL: json_put_null(b); return;
    case JSON_FALSE: json_put_bool(b, 0); return;
    case JSON_TRUE: json_put_bool(b, 1); return;
    case JSON_NUMBER: buf_append(b, s + t->start, t->len); return;  /* already validated */
    case JSON_STRING: put_token_str(b, s, t); return;
    case JSON_ARRAY:
    case JSON_OBJECT:
        break;
    }
    /* Recursion is one level per nesting level, bounded by the max_depth of the parse. */
    buf_putc(b, t->type == JSON_ARRAY ? '[' : '{');
    for (uint32_t m = 0; m < t->size; m++) {
        json_sep(b);
        if (t->type == JSON_OBJECT) {
            put_token_str(b, s, &toks[k++]);
            buf_putc(b, ':');
        }
        json_put_token(b, s, toks, (int)k);
        k = toks[k].next;
    }
    buf_putc(b, t->type == JSON_ARRAY ? ']' : '}');
}
