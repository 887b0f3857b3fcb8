/* gzip (RFC 1952) around deflate (RFC 1951), decoded as a stream: a pure, restartable
 * decoder for Content-Encoding: gzip uploads. Input arrives in any pieces (down to one
 * byte), output leaves in pieces of the caller's size; all state is one bounded struct
 * (its 32 KiB window included), nothing is allocated. Stored, fixed and dynamic Huffman
 * blocks; the header's reserved flags, the trailer's CRC-32 and ISIZE are checked.
 * Concatenated members (what `cat a.gz b.gz` makes, and gzip accepts) decode as one
 * stream. The caller bounds the total output (a gzip bomb is its limit to enforce). */
#ifndef SANDBOX_INFLATE_H
#define SANDBOX_INFLATE_H
#include <stddef.h>
#include <stdint.h>

#define INFLATE_WINDOW 32768u   /* deflate's largest distance */

struct inflate_huff {
    uint16_t count[16];    /* codes of each length */
    uint16_t symbol[288];  /* symbols ordered by code */
};

struct inflate {
    int state;
    const char *error;     /* why the stream was rejected (static string), NULL while fine */
    uint64_t bits;         /* bit buffer, LSB first */
    unsigned nbits;
    /* gzip header */
    unsigned hdr_n, flags, xlen;
    unsigned char hdr[10];
    /* the current block */
    int last;              /* BFINAL seen */
    unsigned stored_left;
    unsigned hlit, hdist, hclen, ncodes, nlens;
    int sym;               /* a symbol waiting for its extra bits */
    unsigned copy_len, copy_dist;
    unsigned char lens[320];
    struct inflate_huff lit, dist;
    /* output */
    uint32_t crc, member_out; /* of the current member: CRC-32 and size mod 2^32 */
    uint64_t total;        /* bytes made by the current member (for distance checks) */
    unsigned trailer_n;
    unsigned char trailer[8];
    int members;           /* complete, checked members */
    unsigned wpos;
    unsigned char window[INFLATE_WINDOW];
};

void inflate_init(struct inflate *z);
/* Decodes in[0..in_len) into out[0..out_cap): *used input bytes taken, *made output bytes
 * written. Takes all the input unless out fills first; call again with the rest, or with
 * in_len 0 to drain what is pending, while *made == out_cap. Returns 0, or -1 when the
 * stream is invalid (z->error says why; it stays invalid). */
int inflate_run(struct inflate *z, const void *in, size_t in_len, size_t *used,
                void *out, size_t out_cap, size_t *made);
/* 1 when at least one member ended with its trailer checked and no other one is begun:
 * the stream may end here. */
int inflate_done(const struct inflate *z);

#endif
