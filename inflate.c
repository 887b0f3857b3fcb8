#include "inflate.h"

#include <string.h>

/* One state per step that must wait for input: each step needs at most 15 bits (a code)
 * or 16 (a stored length), so the 64-bit buffer always has room for them. */
enum {
    S_HEADER,       /* the 10 fixed header bytes */
    S_XLEN,         /* FEXTRA: its 2-byte length */
    S_XDATA,        /* FEXTRA: its bytes, skipped */
    S_NAME,         /* FNAME: zero-terminated, skipped */
    S_COMMENT,      /* FCOMMENT: zero-terminated, skipped */
    S_HCRC,         /* FHCRC: 2 bytes, skipped (a header check only gzip -v writes) */
    S_BLOCK,        /* BFINAL, BTYPE */
    S_STORED_LEN,   /* LEN, NLEN */
    S_STORED,       /* stored bytes */
    S_DYN_COUNTS,   /* HLIT, HDIST, HCLEN */
    S_DYN_CLENS,    /* code length code lengths, 3 bits each */
    S_DYN_LENS,     /* literal/length and distance code lengths */
    S_DYN_REPEAT,   /* the extra bits of a code length repeat (16, 17, 18) */
    S_LIT,          /* a literal/length symbol */
    S_LEN_EXTRA,
    S_DIST,
    S_DIST_EXTRA,
    S_COPY,         /* a match being copied out */
    S_TRAILER,      /* CRC-32 and ISIZE */
    S_MEMBER_END,   /* a member is complete: the input may end, or another member begins */
    S_ERROR,
};

#define FTEXT 1
#define FHCRC 2
#define FEXTRA 4
#define FNAME 8
#define FCOMMENT 16

static const uint16_t len_base[29] = { 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27,
                                       31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195,
                                       227, 258 };
static const uint8_t len_extra[29] = { 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3,
                                       3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0 };
static const uint16_t dist_base[30] = { 1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129,
                                        193, 257, 385, 513, 769, 1025, 1537, 2049, 3073,
                                        4097, 6145, 8193, 12289, 16385, 24577 };
static const uint8_t dist_extra[30] = { 0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7,
                                        8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13 };
/* RFC 1951 3.2.7: the order code length code lengths come in */
static const uint8_t clen_order[19] = { 16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13,
                                        2, 14, 1, 15 };
/* CRC-32 (reflected 0xEDB88320) four bits at a time: a 16-entry constant table keeps the
 * module free of globals and initialisation. */
static const uint32_t crc_nibble[16] = {
    0x00000000, 0x1db71064, 0x3b6e20c8, 0x26d930ac, 0x76dc4190, 0x6b6b51f4, 0x4db26158,
    0x5005713c, 0xedb88320, 0xf00f9344, 0xd6d6a3e8, 0xcb61b38c, 0x9b64c2b0, 0x86d3d2d4,
    0xa00ae278, 0xbdbdf21c,
};

static uint32_t crc_update(uint32_t crc, const unsigned char *p, size_t n)
{
    crc = ~crc;
    while (n--) {
        crc ^= *p++;
        crc = (crc >> 4) ^ crc_nibble[crc & 15];
        crc = (crc >> 4) ^ crc_nibble[crc & 15];
    }
    return ~crc;
}

/* Canonical Huffman code from lengths (RFC 1951 3.2.2). Returns 0 for a complete code, >0
 * for an incomplete one, -1 for an over-subscribed one. */
static int huff_build(struct inflate_huff *h, const unsigned char *lens, unsigned n)
{
    uint16_t offs[16];
    memset(h->count, 0, sizeof h->count);
    for (unsigned i = 0; i < n; i++)
        h->count[lens[i]]++;
    if (h->count[0] == n)
        return 1;                       /* no codes: incomplete */
    int left = 1;
    for (unsigned len = 1; len < 16; len++) {
        left <<= 1;
        left -= h->count[len];
        if (left < 0)
            return -1;
    }
    offs[1] = 0;
    for (unsigned len = 1; len < 15; len++)
        offs[len + 1] = (uint16_t)(offs[len] + h->count[len]);
    for (unsigned i = 0; i < n; i++)
        if (lens[i])
            h->symbol[offs[lens[i]]++] = (uint16_t)i;
    return left;
}

/* Takes input bytes into the bit buffer until it holds want bits or the input is gone. */
static void fill(struct inflate *z, const unsigned char **in, const unsigned char *end,
                 unsigned want)
{
    while (z->nbits < want && *in < end) {
        z->bits |= (uint64_t)*(*in)++ << z->nbits;
        z->nbits += 8;
    }
}

/* n bits (n <= 16) if the buffer holds them: returns 1 and consumes, else 0. */
static int take(struct inflate *z, const unsigned char **in, const unsigned char *end,
                unsigned n, unsigned *v)
{
    fill(z, in, end, n);
    if (z->nbits < n)
        return 0;
    *v = (unsigned)(z->bits & ((1u << n) - 1));
    z->bits >>= n;
    z->nbits -= n;
    return 1;
}

/* One symbol of h. Returns the symbol, -2 when more input is needed (nothing consumed),
 * -1 for a bit pattern that is no code. Bit by bit, as puff does: the codes are MSB first
 * within the LSB-first stream. */
static int decode(struct inflate *z, const unsigned char **in, const unsigned char *end,
                  const struct inflate_huff *h)
{
    fill(z, in, end, 15);
    int code = 0, first = 0, index = 0;
    for (unsigned len = 1; len < 16; len++) {
        if (len > z->nbits)
            return -2;
        code |= (int)((z->bits >> (len - 1)) & 1);
        int count = h->count[len];
        if (code - count < first) {
            z->bits >>= len;
            z->nbits -= len;
            return h->symbol[index + (code - first)];
        }
        index += count;
        first += count;
        first <<= 1;
        code <<= 1;
    }
    return -1;
}

static int fail(struct inflate *z, const char *why)
{
    z->state = S_ERROR;
    z->error = why;
    return -1;
}

static void put(struct inflate *z, unsigned char c, unsigned char *out, size_t *o)
{
    out[(*o)++] = c;
    z->window[z->wpos] = c;
    z->wpos = (z->wpos + 1) & (INFLATE_WINDOW - 1);
}

static void fixed_tables(struct inflate *z)
{
    unsigned i = 0;
    for (; i < 144; i++)
        z->lens[i] = 8;
    for (; i < 256; i++)
        z->lens[i] = 9;
    for (; i < 280; i++)
        z->lens[i] = 7;
    for (; i < 288; i++)
        z->lens[i] = 8;
    huff_build(&z->lit, z->lens, 288);
    for (i = 0; i < 30; i++)
        z->lens[i] = 5;
    huff_build(&z->dist, z->lens, 30);
}

/* The dynamic block's code lengths are all in: build its two codes. Incomplete codes are
 * refused unless they have a single code (RFC 1951 allows one distance code of one bit;
 * zlib and puff accept the same). */
static int dynamic_tables(struct inflate *z)
{
    if (z->lens[256] == 0)
        return fail(z, "no end-of-block code");
    int err = huff_build(&z->lit, z->lens, z->hlit);
    if (err < 0 || (err > 0 && z->hlit - z->lit.count[0] != 1))
        return fail(z, "invalid literal/length code lengths");
    err = huff_build(&z->dist, z->lens + z->hlit, z->hdist);
    if (err < 0 || (err > 0 && z->hdist - z->dist.count[0] != 1))
        return fail(z, "invalid distance code lengths");
    z->state = S_LIT;
    return 0;
}

/* Whole bytes of the header or trailer: from the bit buffer (greedy code reads may have
 * taken them) or the input. Returns 1 with *c, or 0 when there are none. */
static int byte(struct inflate *z, const unsigned char **in, const unsigned char *end,
                unsigned *c)
{
    return take(z, in, end, 8, c);
}

static int step_header(struct inflate *z, const unsigned char **in, const unsigned char *end)
{
    unsigned c;
    switch (z->state) {
    case S_HEADER:
        while (z->hdr_n < 10) {
            if (!byte(z, in, end, &c))
                return 0;
            z->hdr[z->hdr_n++] = (unsigned char)c;
            if (z->hdr_n == 1 && c != 0x1f)
                return fail(z, "not gzip data (bad magic)");
            if (z->hdr_n == 2 && c != 0x8b)
                return fail(z, "not gzip data (bad magic)");
            if (z->hdr_n == 3 && c != 8)
                return fail(z, "gzip compression method is not deflate");
            if (z->hdr_n == 4 && (c & 0xe0))
                return fail(z, "gzip header has reserved flags set");
        }
        z->flags = z->hdr[3];
        z->xlen = 0;
        z->hdr_n = 0;
        z->state = z->flags & FEXTRA ? S_XLEN
                 : z->flags & FNAME ? S_NAME
                 : z->flags & FCOMMENT ? S_COMMENT
                 : z->flags & FHCRC ? S_HCRC : S_BLOCK;
        return 1;
    case S_XLEN:
        while (z->hdr_n < 2) {
            if (!byte(z, in, end, &c))
                return 0;
            z->xlen |= c << (8 * z->hdr_n++);
        }
        z->hdr_n = 0;
        z->state = S_XDATA;
        return 1;
    case S_XDATA:
        while (z->xlen > 0) {
            if (!byte(z, in, end, &c))
                return 0;
            z->xlen--;
        }
        z->state = z->flags & FNAME ? S_NAME
                 : z->flags & FCOMMENT ? S_COMMENT
                 : z->flags & FHCRC ? S_HCRC : S_BLOCK;
        return 1;
    case S_NAME:
    case S_COMMENT:
        do {
            if (!byte(z, in, end, &c))
                return 0;
        } while (c != 0);
        z->state = z->state == S_NAME && z->flags & FCOMMENT ? S_COMMENT
                 : z->flags & FHCRC ? S_HCRC : S_BLOCK;
        return 1;
    default:   /* S_HCRC */
        while (z->hdr_n < 2) {
            if (!byte(z, in, end, &c))
                return 0;
            z->hdr_n++;
        }
        z->hdr_n = 0;
        z->state = S_BLOCK;
        return 1;
    }
}

/* Steps through block headers and code lengths. Returns 1 to go on, 0 for more input, -1. */
static int step_tables(struct inflate *z, const unsigned char **in, const unsigned char *end)
{
    unsigned v;
    int sym;
    switch (z->state) {
    case S_BLOCK:
        if (!take(z, in, end, 3, &v))
            return 0;
        z->last = (int)(v & 1);
        v >>= 1;
        if (v == 0) {
            z->bits >>= z->nbits & 7;   /* stored: to a byte boundary */
            z->nbits -= z->nbits & 7;
            z->state = S_STORED_LEN;
        } else if (v == 1) {
            fixed_tables(z);
            z->state = S_LIT;
        } else if (v == 2) {
            z->state = S_DYN_COUNTS;
        } else {
            return fail(z, "invalid deflate block type");
        }
        return 1;
    case S_STORED_LEN:
        fill(z, in, end, 32);
        if (z->nbits < 32)
            return 0;
        v = (unsigned)(z->bits & 0xffff);
        if ((v ^ 0xffff) != (unsigned)((z->bits >> 16) & 0xffff))
            return fail(z, "stored block length does not match its complement");
        z->bits >>= 32;
        z->nbits -= 32;
        z->stored_left = v;
        z->state = S_STORED;
        return 1;
    case S_DYN_COUNTS:
        fill(z, in, end, 14);
        if (z->nbits < 14)
            return 0;
        take(z, in, end, 5, &v);
        z->hlit = v + 257;
        take(z, in, end, 5, &v);
        z->hdist = v + 1;
        take(z, in, end, 4, &v);
        z->hclen = v + 4;
        if (z->hlit > 286 || z->hdist > 30)
            return fail(z, "too many length or distance codes");
        memset(z->lens, 0, sizeof z->lens);
        z->ncodes = 0;
        z->state = S_DYN_CLENS;
        return 1;
    case S_DYN_CLENS:
        while (z->ncodes < z->hclen) {
            if (!take(z, in, end, 3, &v))
                return 0;
            z->lens[clen_order[z->ncodes++]] = (unsigned char)v;
        }
        /* the code length code must be complete (as zlib requires) */
        if (huff_build(&z->lit, z->lens, 19) != 0)
            return fail(z, "invalid code length code lengths");
        memset(z->lens, 0, sizeof z->lens);
        z->nlens = 0;
        z->state = S_DYN_LENS;
        return 1;
    case S_DYN_LENS:
        while (z->nlens < z->hlit + z->hdist) {
            sym = decode(z, in, end, &z->lit);
            if (sym == -2)
                return 0;
            if (sym < 0)
                return fail(z, "invalid code length code");
            if (sym < 16) {
                z->lens[z->nlens++] = (unsigned char)sym;
                continue;
            }
            if (sym == 16 && z->nlens == 0)
                return fail(z, "code length repeat with no previous length");
            z->sym = sym;
            z->state = S_DYN_REPEAT;
            return 1;
        }
        return dynamic_tables(z) < 0 ? -1 : 1;
    default: {  /* S_DYN_REPEAT */
        unsigned n, len = 0;
        if (z->sym == 16) {
            if (!take(z, in, end, 2, &v))
                return 0;
            n = 3 + v;
            len = z->lens[z->nlens - 1];
        } else if (z->sym == 17) {
            if (!take(z, in, end, 3, &v))
                return 0;
            n = 3 + v;
        } else {
            if (!take(z, in, end, 7, &v))
                return 0;
            n = 11 + v;
        }
        if (z->nlens + n > z->hlit + z->hdist)
            return fail(z, "code length repeat past the last code");
        while (n--)
            z->lens[z->nlens++] = (unsigned char)len;
        z->state = S_DYN_LENS;
        return 1;
    }
    }
}

/* Output out[*from..o) joins the member's CRC, size and distance reach. */
static void account(struct inflate *z, const unsigned char *out, size_t *from, size_t o)
{
    z->crc = crc_update(z->crc, out + *from, o - *from);
    z->member_out += (uint32_t)(o - *from);
    z->total += o - *from;
    *from = o;
}

/* The trailer is in, every output byte accounted: check it, end the member. */
static int trailer_check(struct inflate *z)
{
    const unsigned char *t = z->trailer;
    uint32_t crc = (uint32_t)t[0] | (uint32_t)t[1] << 8 | (uint32_t)t[2] << 16 |
                   (uint32_t)t[3] << 24;
    uint32_t isize = (uint32_t)t[4] | (uint32_t)t[5] << 8 | (uint32_t)t[6] << 16 |
                     (uint32_t)t[7] << 24;
    if (crc != z->crc)
        return fail(z, "gzip CRC-32 does not match the data");
    if (isize != z->member_out)
        return fail(z, "gzip ISIZE does not match the data length");
    z->members++;
    z->state = S_MEMBER_END;
    z->crc = 0;
    z->member_out = 0;
    z->total = 0;
    z->trailer_n = 0;
    z->hdr_n = 0;
    return 0;
}

void inflate_init(struct inflate *z)
{
    memset(z, 0, offsetof(struct inflate, window));
    z->state = S_HEADER;
}

int inflate_run(struct inflate *z, const void *in_, size_t in_len, size_t *used,
                void *out_, size_t out_cap, size_t *made)
{
    const unsigned char *in = in_, *end = in + in_len;
    unsigned char *out = out_;
    size_t o = 0, from = 0;
    int r = 1;
    unsigned v;
    *used = 0;
    *made = 0;
    if (z->state == S_ERROR)
        return -1;
    while (r > 0) {
        switch (z->state) {
        case S_HEADER: case S_XLEN: case S_XDATA: case S_NAME: case S_COMMENT: case S_HCRC:
            r = step_header(z, &in, end);
            break;
        case S_BLOCK: case S_STORED_LEN: case S_DYN_COUNTS: case S_DYN_CLENS:
        case S_DYN_LENS: case S_DYN_REPEAT:
            r = step_tables(z, &in, end);
            break;
        case S_STORED:
            while (z->stored_left > 0 && o < out_cap) {
                if (z->nbits >= 8) {     /* bytes a greedy read left in the buffer */
                    take(z, &in, end, 8, &v);
                    put(z, (unsigned char)v, out, &o);
                    z->stored_left--;
                    continue;
                }
                if (in == end)
                    break;
                size_t n = (size_t)(end - in);
                if (n > z->stored_left)
                    n = z->stored_left;
                if (n > out_cap - o)
                    n = out_cap - o;
                for (size_t i = 0; i < n; i++)
                    put(z, in[i], out, &o);
                in += n;
                z->stored_left -= (unsigned)n;
            }
            if (z->stored_left > 0) {
                r = 0;
                break;
            }
            z->state = z->last ? S_TRAILER : S_BLOCK;
            break;
        case S_LIT: {
            if (o == out_cap) {
                r = 0;
                break;
            }
            int sym = decode(z, &in, end, &z->lit);
            if (sym == -2) {
                r = 0;
            } else if (sym < 0) {
                r = fail(z, "invalid literal/length code");
            } else if (sym < 256) {
                put(z, (unsigned char)sym, out, &o);
            } else if (sym == 256) {
                z->state = z->last ? S_TRAILER : S_BLOCK;
            } else if (sym > 285) {
                r = fail(z, "invalid literal/length symbol");
            } else {
                z->sym = sym - 257;
                z->state = S_LEN_EXTRA;
            }
            break;
        }
        case S_LEN_EXTRA:
            if (!take(z, &in, end, len_extra[z->sym], &v)) {
                r = 0;
                break;
            }
            z->copy_len = len_base[z->sym] + v;
            z->state = S_DIST;
            break;
        case S_DIST: {
            int sym = decode(z, &in, end, &z->dist);
            if (sym == -2) {
                r = 0;
            } else if (sym < 0 || sym > 29) {
                r = fail(z, "invalid distance code");
            } else {
                z->sym = sym;
                z->state = S_DIST_EXTRA;
            }
            break;
        }
        case S_DIST_EXTRA:
            if (!take(z, &in, end, dist_extra[z->sym], &v)) {
                r = 0;
                break;
            }
            z->copy_dist = dist_base[z->sym] + v;
            if (z->copy_dist > z->total + (o - from))
                r = fail(z, "distance too far back");
            else
                z->state = S_COPY;
            break;
        case S_COPY:
            while (z->copy_len > 0 && o < out_cap) {
                put(z, z->window[(z->wpos - z->copy_dist) & (INFLATE_WINDOW - 1)], out, &o);
                z->copy_len--;
            }
            if (z->copy_len > 0)
                r = 0;
            else
                z->state = S_LIT;
            break;
        case S_TRAILER:
            if (z->trailer_n == 0) {
                z->bits >>= z->nbits & 7;
                z->nbits -= z->nbits & 7;
            }
            while (z->trailer_n < 8 && byte(z, &in, end, &v))
                z->trailer[z->trailer_n++] = (unsigned char)v;
            if (z->trailer_n < 8) {
                r = 0;
                break;
            }
            account(z, out, &from, o);
            if (trailer_check(z) < 0)
                r = -1;
            break;
        case S_MEMBER_END:
            /* anything more is another member; a gzip file may be several */
            if (z->nbits == 0 && in == end) {
                r = 0;
                break;
            }
            z->state = S_HEADER;
            break;
        default:
            r = -1;
        }
    }
    *used = (size_t)(in - (const unsigned char *)in_);
    *made = o;
    if (r < 0)
        return -1;
    account(z, out, &from, o);
    return 0;
}

int inflate_done(const struct inflate *z)
{
    return z->state == S_MEMBER_END && z->nbits == 0;
}
