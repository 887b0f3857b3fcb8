#include "dns.h"

#include <string.h>

#define HEADER_BYTES 12
#define NAME_MAX_BYTES 255   /* RFC 1035 2.3.4, in wire form */

/* One answer record, as offsets into the message. */
struct record {
    size_t owner;        /* where its owner name starts */
    uint16_t type, class_;
    uint32_t ttl;
    size_t rdata, rdlen;
};

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static int lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

/* Skips or decodes the name at off: *end gets the offset after it in place (after the first
 * pointer, if any); out (when not NULL) gets the name lowercased as labels joined by '.',
 * NUL-terminated (out holds NAME_MAX_BYTES + 1). A pointer must point strictly before the
 * label it sits in, so following pointers always moves backwards and cannot loop. */
static int read_name(const uint8_t *m, size_t len, size_t off, size_t *end, char *out)
{
    size_t pos = off, wire = 0, o = 0, floor_ = off;
    int jumps = 0, jumped = 0;   /* past its end is INCOMPLETE even after a jump: a
                                  * prefix must never read as malformed */
    for (;;) {
        if (pos >= len)
            return DNS_INCOMPLETE;
        uint8_t b = m[pos];
        if ((b & 0xc0) == 0xc0) {
            if (pos + 1 >= len)
                return DNS_INCOMPLETE;
            size_t target = (size_t)(b & 0x3f) << 8 | m[pos + 1];
            if (target >= floor_ || ++jumps > LIMIT_DNS_POINTERS)
                return DNS_INVALID;
            if (!jumped)
                *end = pos + 2;
            jumped = 1;
            pos = floor_ = target;
            continue;
        }
        if (b & 0xc0)
            return DNS_INVALID;   /* 0x40 / 0x80 label types are obsolete or unknown */
        wire += 1u + b;
        if (wire > NAME_MAX_BYTES)
            return DNS_INVALID;
        if (b == 0) {
            if (!jumped)
                *end = pos + 1;
            if (out)
                out[o] = 0;
            return 0;
        }
        if (pos + 1 + b > len)
            return DNS_INCOMPLETE;
        if (out) {
            if (o)
                out[o++] = '.';
            for (size_t i = 0; i < b; i++)
                out[o++] = (char)lower(m[pos + 1 + i]);
        }
        pos += 1u + b;
    }
}

/* The query name normalized as read_name writes names: lowercase, no trailing dot. */
static int normalize(const char *name, char *out)
{
    size_t n = strlen(name);
    if (n && name[n - 1] == '.')
        n--;
    if (n == 0 || n > 253)
        return -1;
    for (size_t i = 0; i < n; i++)
        out[i] = (char)lower((unsigned char)name[i]);
    out[n] = 0;
    return 0;
}

int dns_build_query(uint16_t id, const char *name, uint16_t type, uint8_t *out, size_t cap)
{
    char norm[NAME_MAX_BYTES + 1];
    if (normalize(name, norm) < 0 || cap < HEADER_BYTES + strlen(norm) + 2 + 4)
        return -1;
    static const uint8_t flags_counts[10] = { 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0 };  /* RD; QD 1 */
    out[0] = (uint8_t)(id >> 8);
    out[1] = (uint8_t)id;
    memcpy(out + 2, flags_counts, sizeof flags_counts);
    size_t o = HEADER_BYTES;
    for (const char *p = norm; *p;) {
        size_t l = strcspn(p, ".");
        if (l == 0 || l > 63)
            return -1;
        out[o++] = (uint8_t)l;
        memcpy(out + o, p, l);
        o += l;
        p += l + (p[l] == '.');
        if (p[-1] == '.' && !*p)
            return -1;
    }
    out[o++] = 0;
    out[o++] = (uint8_t)(type >> 8);
    out[o++] = (uint8_t)type;
    out[o++] = 0;
    out[o++] = 1;   /* class IN */
    return (int)o;
}

static int name_is(const uint8_t *m, size_t len, size_t off, const char *want)
{
    char name[NAME_MAX_BYTES + 1];
    size_t end;
    return read_name(m, len, off, &end, name) == 0 && strcmp(name, want) == 0;
}

int dns_parse_response(const uint8_t *m, size_t len, uint16_t id, const char *qname,
                       uint16_t type, struct dns_result *r)
{
    char want[NAME_MAX_BYTES + 1], got[NAME_MAX_BYTES + 1];
    memset(r, 0, sizeof *r);
    if (normalize(qname, want) < 0)
        return DNS_MISMATCH;
    if (len < HEADER_BYTES)
        return DNS_INCOMPLETE;
    uint16_t flags = get16(m + 2), qd = get16(m + 4), an = get16(m + 6);
    if (get16(m) != id || !(flags & 0x8000) || (flags & 0x7800))
        return DNS_MISMATCH;   /* not a response to a standard query of ours */
    r->rcode = flags & 0x0f;
    r->truncated = !!(flags & 0x0200);
    if (qd == 0 && r->rcode)
        return 0;              /* FORMERR and friends may leave the question out */
    if (qd != 1)
        return DNS_MISMATCH;
    size_t off;
    int rc = read_name(m, len, HEADER_BYTES, &off, got);
    if (rc < 0)
        return rc;
    if (len < off + 4)
        return DNS_INCOMPLETE;
    if (strcmp(got, want) || get16(m + off) != type || get16(m + off + 2) != 1)
        return DNS_MISMATCH;
    off += 4;

    struct record rec[LIMIT_DNS_RECORDS];
    size_t nrec = an < LIMIT_DNS_RECORDS ? an : LIMIT_DNS_RECORDS;
    for (size_t i = 0; i < nrec; i++) {
        struct record *x = &rec[i];
        x->owner = off;
        rc = read_name(m, len, off, &off, NULL);
        if (rc < 0)
            return rc;
        if (len < off + 10)
            return DNS_INCOMPLETE;
        x->type = get16(m + off);
        x->class_ = get16(m + off + 2);
        x->ttl = (uint32_t)get16(m + off + 4) << 16 | get16(m + off + 6);
        x->rdlen = get16(m + off + 8);
        x->rdata = off + 10;
        if (len < x->rdata + x->rdlen)
            return DNS_INCOMPLETE;
        off = x->rdata + x->rdlen;
    }

    /* follow the chain from the question name; records may come in any order */
    r->ttl = UINT32_MAX;
    size_t alen = type == DNS_TYPE_A ? 4 : 16;
    for (;;) {
        int next = -1;
        for (size_t i = 0; i < nrec; i++) {
            const struct record *x = &rec[i];
            if (x->class_ != 1 || (x->type != type && x->type != DNS_TYPE_CNAME) ||
                !name_is(m, len, x->owner, want))
                continue;
            if (x->type == DNS_TYPE_CNAME) {
                if (next < 0)
                    next = (int)i;
                continue;
            }
            if (x->rdlen != alen)
                return DNS_INVALID;
            if (r->naddr < LIMIT_DNS_ADDRS)
                memcpy(r->addr[r->naddr++], m + x->rdata, alen);
            if (x->ttl < r->ttl)
                r->ttl = x->ttl;
        }
        if (r->naddr || next < 0)
            break;
        if (r->cnames++ == LIMIT_DNS_CNAMES)
            return DNS_INVALID;
        const struct record *c = &rec[next];
        size_t end;
        rc = read_name(m, len, c->rdata, &end, want);
        if (rc < 0)
            return DNS_INVALID;   /* the whole record is in: a short name is malformed */
        if (end > c->rdata + c->rdlen)
            return DNS_INVALID;
        if (c->ttl < r->ttl)
            r->ttl = c->ttl;
    }
    if (r->ttl == UINT32_MAX)
        r->ttl = 0;
    return 0;
}
