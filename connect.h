/* The Connect protocol's wire pieces (connectrpc.com/docs/protocol), for E2B's envd front-end:
 * the 5-byte envelopes of streaming calls and the error codes. Pure: no syscalls, no globals,
 * no allocation. */
#ifndef SANDBOX_CONNECT_H
#define SANDBOX_CONNECT_H
#include <stddef.h>
#include <stdint.h>

#define CONNECT_PREFIX          5      /* flags byte + 4-byte big-endian length */
#define CONNECT_FLAG_COMPRESSED 0x01   /* never negotiated: we answer identity only */
#define CONNECT_FLAG_END        0x02   /* end-stream message (server to client) */

enum connect_result {
    CONNECT_INCOMPLETE = -1,   /* fewer bytes than the envelope needs: read more */
    CONNECT_INVALID = -2,      /* unknown or compressed flags */
    CONNECT_TOO_LARGE = -3,    /* announced length over the caller's max */
};

/* One envelope: a view into the caller's buffer, valid while it is. */
struct connect_envelope {
    unsigned flags;
    const char *data;
    size_t len;
};

/* Parses the envelope at the start of s[0..n). Returns the bytes it spans (CONNECT_PREFIX +
 * len) with *env set, or a connect_result. A too-large length is known from the prefix alone,
 * so it is reported before the payload arrives. Any split of the input gives the same result
 * once all of it is there. */
long connect_parse(const char *s, size_t n, size_t max, struct connect_envelope *env);

/* Writes the prefix of an envelope holding len payload bytes. */
void connect_prefix(unsigned char out[CONNECT_PREFIX], unsigned flags, uint32_t len);

/* The HTTP status a unary error with this Connect code is sent with (500 for unknown codes),
 * and the code a front-end uses for an HTTP-style status (404 -> "not_found"...). */
int connect_code_status(const char *code);
const char *connect_status_code(int status);

#endif
