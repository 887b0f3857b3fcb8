/* DNS messages (RFC 1035): a query builder and a response parser for A and AAAA lookups.
 * Pure: no syscalls, no globals, no allocation. The parser is stateless and restartable in
 * the picohttpparser manner: any prefix of a valid response is DNS_INCOMPLETE, so it may be
 * called again with more bytes (a UDP datagram is whole: there INCOMPLETE means invalid). */
#ifndef SANDBOX_DNS_H
#define SANDBOX_DNS_H
#include <stddef.h>
#include <stdint.h>

#include "limits.h"

#define DNS_TYPE_A     1
#define DNS_TYPE_CNAME 5
#define DNS_TYPE_AAAA  28

#define DNS_RCODE_NXDOMAIN 3

enum dns_code {
    DNS_INCOMPLETE = -1,   /* a valid prefix: more bytes needed */
    DNS_INVALID = -2,      /* malformed: a label type, a forward or looping pointer, a name
                            * over 255 bytes, an address of the wrong size ... */
    DNS_MISMATCH = -3,     /* well-formed so far but not the answer to our question (id,
                            * QR bit, opcode, question name, type or class): ignore it */
};

/* What a response says about the question. Addresses are in network order, 4 bytes for A,
 * 16 for AAAA (the question's type). */
struct dns_result {
    int rcode;            /* 0 NOERROR, 3 NXDOMAIN, ... */
    int truncated;        /* TC bit: the answer section may be incomplete */
    int naddr;            /* addresses found at the end of the CNAME chain (<= LIMIT_DNS_ADDRS) */
    int cnames;           /* CNAME links followed */
    uint32_t ttl;         /* smallest TTL of the records used */
    uint8_t addr[LIMIT_DNS_ADDRS][16];
};

/* Writes a recursive query (RD set) for name, of type A or AAAA, with id, into out.
 * name is a NUL-terminated host name, one trailing dot allowed; labels 1..63 bytes, the
 * whole name at most 253. Returns the message length, or -1 (bad name, cap too small). */
int dns_build_query(uint16_t id, const char *name, uint16_t type, uint8_t *out, size_t cap);

/* Parses the header, question and answer section of msg[0..len) as the response to the
 * query (id, name, type) built above; bytes after the answer section are not read.
 * The answer follows CNAME records from the question name (in any order, at most
 * LIMIT_DNS_CNAMES links) and collects the addresses of the final name; names compare
 * case-insensitively; compression pointers must point backwards (so they cannot loop) and
 * are followed at most LIMIT_DNS_POINTERS times per name; at most LIMIT_DNS_RECORDS answer
 * records are read. Returns 0 with *r filled (naddr may be 0: no such data), or a
 * dns_code. */
int dns_parse_response(const uint8_t *msg, size_t len, uint16_t id, const char *name,
                       uint16_t type, struct dns_result *r);

#endif
