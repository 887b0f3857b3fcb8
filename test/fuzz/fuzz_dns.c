/* libFuzzer target: dns_parse_response on any bytes, for an A and an AAAA question.
 * The first input byte picks the question type; the id is the message's own (so the
 * parser goes past the header). Checks: no crash or over-read (ASan), results within
 * bounds, and a prefix one byte shorter of a parsed answer is never an error. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dns.h"

#define REQUIRE(c) do { if (!(c)) abort(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint16_t type = data[0] & 1 ? DNS_TYPE_AAAA : DNS_TYPE_A;
    const uint8_t *m = data + 1;
    size_t n = size - 1;
    uint16_t id = n >= 2 ? (uint16_t)(m[0] << 8 | m[1]) : 0;
    /* a private copy so ASan sees reads past the end */
    uint8_t *copy = malloc(n ? n : 1);
    REQUIRE(copy);
    memcpy(copy, m, n);
    static const char *const names[] = { "example.com", "a", "www.example.com" };
    for (size_t k = 0; k < 3; k++) {
        struct dns_result r;
        int rc = dns_parse_response(copy, n, id, names[k], type, &r);
        REQUIRE(rc == 0 || rc == DNS_INCOMPLETE || rc == DNS_INVALID || rc == DNS_MISMATCH);
        if (rc == 0) {
            REQUIRE(r.naddr >= 0 && r.naddr <= LIMIT_DNS_ADDRS);
            REQUIRE(r.cnames >= 0 && r.cnames <= LIMIT_DNS_CNAMES);
        }
        if (rc == DNS_INCOMPLETE && n > 0) {
            int p = dns_parse_response(copy, n - 1, id, names[k], type, &r);
            REQUIRE(p == DNS_INCOMPLETE);   /* a prefix of an incomplete message */
        }
    }
    uint8_t q[300];
    char name[256];
    size_t nl = n < sizeof name - 1 ? n : sizeof name - 1;
    memcpy(name, m, nl);
    name[nl] = 0;
    int ql = dns_build_query(id, name, type, q, sizeof q);
    REQUIRE(ql == -1 || (ql >= 17 && (size_t)ql <= sizeof q));
    free(copy);
    return 0;
}
