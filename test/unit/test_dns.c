/* dns.c: query building, and response parsing from tables of messages, each also fed as
 * every prefix (a prefix of a valid answer must read as DNS_INCOMPLETE, never as an error
 * or a different answer). */
#include "dns.h"

#include "unit.h"

/* A tiny message assembler: the tests spell messages as header, question, records. */
struct msg {
    uint8_t b[1024];
    size_t n;
};

static void u8(struct msg *m, unsigned v) { m->b[m->n++] = (uint8_t)v; }
static void u16(struct msg *m, unsigned v) { u8(m, v >> 8); u8(m, v & 0xff); }
static void u32(struct msg *m, unsigned long v) { u16(m, (unsigned)(v >> 16)); u16(m, v & 0xffff); }
static void raw(struct msg *m, const void *p, size_t n) { memcpy(m->b + m->n, p, n); m->n += n; }

/* "www.example.com" as labels; "@12" as a pointer to offset 12; "www.@16" labels then a
 * pointer. */
static void name(struct msg *m, const char *s)
{
    while (*s) {
        if (*s == '@') {
            unsigned off = (unsigned)atoi(s + 1);
            u16(m, 0xc000 | off);
            return;
        }
        size_t l = strcspn(s, ".");
        u8(m, (unsigned)l);
        raw(m, s, l);
        s += l + (s[l] == '.');
    }
    u8(m, 0);
}

static void header(struct msg *m, unsigned id, unsigned flags, unsigned qd, unsigned an)
{
    m->n = 0;
    u16(m, id), u16(m, flags), u16(m, qd), u16(m, an), u16(m, 0), u16(m, 0);
}

static void question(struct msg *m, const char *n, unsigned type)
{
    name(m, n), u16(m, type), u16(m, 1);
}

static void rr(struct msg *m, const char *owner, unsigned type, unsigned long ttl,
               const void *rdata, size_t rdlen)
{
    name(m, owner), u16(m, type), u16(m, 1), u32(m, ttl), u16(m, (unsigned)rdlen);
    raw(m, rdata, rdlen);
}

static void rr_cname(struct msg *m, const char *owner, unsigned long ttl, const char *target)
{
    name(m, owner), u16(m, DNS_TYPE_CNAME), u16(m, 1), u32(m, ttl);
    size_t at = m->n;
    u16(m, 0);
    name(m, target);
    size_t len = m->n - at - 2;
    m->b[at] = (uint8_t)(len >> 8), m->b[at + 1] = (uint8_t)len;
}

static const uint8_t ip1[4] = { 192, 0, 2, 1 }, ip2[4] = { 192, 0, 2, 2 };
static const uint8_t ip6[16] = { 0x20, 0x01, 0x0d, 0xb8, [15] = 1 };

/* Parses m whole (expecting rc, naddr, first address) and every prefix (INCOMPLETE). */
static void expect(const char *what, const struct msg *m, const char *qname, unsigned type,
                   int rc, int naddr, const uint8_t *first)
{
    struct dns_result r;
    int got = dns_parse_response(m->b, m->n, 0x1234, qname, (uint16_t)type, &r);
    CHECK(got == rc, "%s: rc %d, want %d", what, got, rc);
    if (got == 0 && rc == 0) {
        CHECK(r.naddr == naddr, "%s: naddr %d, want %d", what, r.naddr, naddr);
        if (first && r.naddr)
            CHECK(!memcmp(r.addr[0], first, type == DNS_TYPE_A ? 4 : 16), "%s: address", what);
    }
    if (rc != 0)
        return;
    int bad = 0;
    for (size_t k = 0; k < m->n; k++) {
        int p = dns_parse_response(m->b, k, 0x1234, qname, (uint16_t)type, &r);
        if (p != DNS_INCOMPLETE && !bad++)
            CHECK(p == DNS_INCOMPLETE, "%s: prefix %zu of %zu gave %d", what, k, m->n, p);
    }
    CHECK(!bad, "%s: every prefix incomplete", what);
}

static void test_query(void)
{
    uint8_t q[512];
    int n = dns_build_query(0xbeef, "WWW.Example.com.", DNS_TYPE_AAAA, q, sizeof q);
    static const uint8_t want[] = { 0xbe, 0xef, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0,
                                    3, 'w', 'w', 'w', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e',
                                    3, 'c', 'o', 'm', 0, 0, 28, 0, 1 };
    CHECK(n == (int)sizeof want && !memcmp(q, want, sizeof want), "query bytes (n=%d)", n);
    char l64[80];
    memset(l64, 'a', 64);
    l64[64] = 0;
    const char *bad[] = { "", ".", "a..b", "..", l64, "a.b..", NULL };
    for (int i = 0; bad[i]; i++)
        CHECK(dns_build_query(1, bad[i], DNS_TYPE_A, q, sizeof q) == -1, "bad name '%s'", bad[i]);
    l64[63] = 0;
    CHECK(dns_build_query(1, l64, DNS_TYPE_A, q, sizeof q) > 0, "63-byte label");
    CHECK(dns_build_query(1, "example.com", DNS_TYPE_A, q, 20) == -1, "cap too small");
    /* the query parses as its own question: a response with QR set and no answers */
    struct msg m;
    n = dns_build_query(0x1234, "example.com", DNS_TYPE_A, m.b, sizeof m.b);
    m.n = (size_t)n;
    m.b[2] |= 0x80;
    expect("own query as empty answer", &m, "example.com", DNS_TYPE_A, 0, 0, NULL);
}

static void test_answers(void)
{
    struct msg m;
    /* plain A, owner compressed onto the question */
    header(&m, 0x1234, 0x8180, 1, 2);
    question(&m, "example.com", DNS_TYPE_A);
    rr(&m, "@12", DNS_TYPE_A, 300, ip1, 4);
    rr(&m, "@12", DNS_TYPE_A, 60, ip2, 4);
    expect("two A", &m, "example.com", DNS_TYPE_A, 0, 2, ip1);
    expect("case-insensitive", &m, "EXAMPLE.com.", DNS_TYPE_A, 0, 2, ip1);
    expect("other name", &m, "example.org", DNS_TYPE_A, DNS_MISMATCH, 0, NULL);
    expect("other type", &m, "example.com", DNS_TYPE_AAAA, DNS_MISMATCH, 0, NULL);
    struct dns_result r;
    CHECK(dns_parse_response(m.b, m.n, 0x1235, "example.com", DNS_TYPE_A, &r) == DNS_MISMATCH,
          "other id");
    CHECK(dns_parse_response(m.b, m.n, 0x1234, "example.com", DNS_TYPE_A, &r) == 0 &&
          r.ttl == 60, "smallest ttl %u", r.ttl);

    /* CNAME chain, the address record before the CNAME, the target compressed */
    header(&m, 0x1234, 0x8180, 1, 3);
    question(&m, "www.example.com", DNS_TYPE_A);           /* 12..32, "example.com" at 16 */
    rr(&m, "b.@16", DNS_TYPE_A, 30, ip2, 4);
    rr_cname(&m, "a.@16", 30, "b.@16");
    rr_cname(&m, "@12", 30, "a.@16");
    expect("CNAME chain out of order", &m, "www.example.com", DNS_TYPE_A, 0, 1, ip2);
    CHECK(dns_parse_response(m.b, m.n, 0x1234, "www.example.com", DNS_TYPE_A, &r) == 0 &&
          r.cnames == 2, "two links, got %d", r.cnames);

    /* a CNAME loop */
    header(&m, 0x1234, 0x8180, 1, 2);
    question(&m, "www.example.com", DNS_TYPE_A);
    rr_cname(&m, "@12", 30, "a.@16");
    rr_cname(&m, "a.@16", 30, "@12");
    expect("CNAME loop", &m, "www.example.com", DNS_TYPE_A, DNS_INVALID, 0, NULL);

    /* a CNAME to nowhere: no data */
    header(&m, 0x1234, 0x8180, 1, 1);
    question(&m, "www.example.com", DNS_TYPE_A);
    rr_cname(&m, "@12", 30, "gone.example.net");
    expect("dangling CNAME", &m, "www.example.com", DNS_TYPE_A, 0, 0, NULL);

    /* AAAA, and an A record mixed in is ignored */
    header(&m, 0x1234, 0x8180, 1, 2);
    question(&m, "v6.example", DNS_TYPE_AAAA);
    rr(&m, "@12", DNS_TYPE_A, 30, ip1, 4);
    rr(&m, "@12", DNS_TYPE_AAAA, 30, ip6, 16);
    expect("AAAA", &m, "v6.example", DNS_TYPE_AAAA, 0, 1, ip6);

    /* NXDOMAIN, and a FORMERR without a question */
    header(&m, 0x1234, 0x8183, 1, 0);
    question(&m, "nope.example", DNS_TYPE_A);
    expect("NXDOMAIN", &m, "nope.example", DNS_TYPE_A, 0, 0, NULL);
    CHECK(dns_parse_response(m.b, m.n, 0x1234, "nope.example", DNS_TYPE_A, &r) == 0 &&
          r.rcode == DNS_RCODE_NXDOMAIN, "rcode %d", r.rcode);
    header(&m, 0x1234, 0x8181, 0, 0);
    CHECK(dns_parse_response(m.b, m.n, 0x1234, "x.example", DNS_TYPE_A, &r) == 0 &&
          r.rcode == 1, "FORMERR without question");

    /* truncated: TC bit, partial answer */
    header(&m, 0x1234, 0x8380, 1, 1);
    question(&m, "big.example", DNS_TYPE_A);
    rr(&m, "@12", DNS_TYPE_A, 30, ip1, 4);
    CHECK(dns_parse_response(m.b, m.n, 0x1234, "big.example", DNS_TYPE_A, &r) == 0 &&
          r.truncated && r.naddr == 1, "TC bit");

    /* not a response (QR clear), not a standard query (opcode) */
    header(&m, 0x1234, 0x0100, 1, 0);
    question(&m, "a.example", DNS_TYPE_A);
    expect("QR clear", &m, "a.example", DNS_TYPE_A, DNS_MISMATCH, 0, NULL);
    header(&m, 0x1234, 0x8900, 1, 0);
    question(&m, "a.example", DNS_TYPE_A);
    expect("opcode 1", &m, "a.example", DNS_TYPE_A, DNS_MISMATCH, 0, NULL);

    /* malformed: wrong address size, pointer to itself, forward pointer, label type 0x40 */
    header(&m, 0x1234, 0x8180, 1, 1);
    question(&m, "a.example", DNS_TYPE_A);
    rr(&m, "@12", DNS_TYPE_A, 30, ip6, 16);
    expect("A of 16 bytes", &m, "a.example", DNS_TYPE_A, DNS_INVALID, 0, NULL);
    header(&m, 0x1234, 0x8180, 1, 1);
    question(&m, "a.example", DNS_TYPE_A);
    size_t at = m.n;
    u16(&m, 0xc000 | (unsigned)at);
    u16(&m, 1), u16(&m, 1), u32(&m, 1), u16(&m, 4), raw(&m, ip1, 4);
    expect("pointer loop", &m, "a.example", DNS_TYPE_A, DNS_INVALID, 0, NULL);
    header(&m, 0x1234, 0x8180, 1, 1);
    question(&m, "a.example", DNS_TYPE_A);
    u16(&m, 0xc000 | (unsigned)(m.n + 2));
    u8(&m, 0), u16(&m, 1), u16(&m, 1), u32(&m, 1), u16(&m, 4), raw(&m, ip1, 4);
    expect("forward pointer", &m, "a.example", DNS_TYPE_A, DNS_INVALID, 0, NULL);
    header(&m, 0x1234, 0x8180, 1, 0);
    u8(&m, 0x41), u8(&m, 'a'), u8(&m, 0), u16(&m, 1), u16(&m, 1);
    expect("label type 0x40", &m, "a", DNS_TYPE_A, DNS_INVALID, 0, NULL);
}

int main(void)
{
    test_query();
    test_answers();
    printf("dns: %d passed, %d failed, %d skipped\n", unit_passed, unit_failed, unit_skipped);
    return unit_failed != 0;
}
