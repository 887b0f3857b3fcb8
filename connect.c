#include "connect.h"

#include <string.h>

/* The protocol's table: codes and the HTTP statuses unary errors carry. Where two codes share
 * a status, the first listed is what connect_status_code gives back. */
static const struct {
    const char *code;
    int status;
} codes[] = {
    { "invalid_argument", 400 }, { "unauthenticated", 401 }, { "permission_denied", 403 },
    { "not_found", 404 },        { "already_exists", 409 },  { "resource_exhausted", 429 },
    { "canceled", 499 },         { "internal", 500 },        { "unimplemented", 501 },
    { "unavailable", 503 },      { "deadline_exceeded", 504 }, { "failed_precondition", 400 },
    { "out_of_range", 400 },     { "aborted", 409 },         { "unknown", 500 },
    { "data_loss", 500 },
};
#define NCODES (sizeof codes / sizeof codes[0])

long connect_parse(const char *s, size_t n, size_t max, struct connect_envelope *env)
{
    if (n < 1)
        return CONNECT_INCOMPLETE;
    unsigned flags = (unsigned char)s[0];
    /* a client never sends END; COMPRESSED needs an encoding we never accept */
    if (flags != 0)
        return CONNECT_INVALID;
    if (n < CONNECT_PREFIX)
        return CONNECT_INCOMPLETE;
    const unsigned char *u = (const unsigned char *)s;
    uint32_t len = (uint32_t)u[1] << 24 | (uint32_t)u[2] << 16 | (uint32_t)u[3] << 8 | u[4];
    if (len > max)
        return CONNECT_TOO_LARGE;
    if (n - CONNECT_PREFIX < len)
        return CONNECT_INCOMPLETE;
    env->flags = flags;
    env->data = s + CONNECT_PREFIX;
    env->len = len;
    return (long)(CONNECT_PREFIX + (size_t)len);
}

void connect_prefix(unsigned char out[CONNECT_PREFIX], unsigned flags, uint32_t len)
{
    out[0] = (unsigned char)flags;
    out[1] = (unsigned char)(len >> 24);
    out[2] = (unsigned char)(len >> 16);
    out[3] = (unsigned char)(len >> 8);
    out[4] = (unsigned char)len;
}

int connect_code_status(const char *code)
{
    for (size_t i = 0; i < NCODES; i++)
        if (strcmp(codes[i].code, code) == 0)
            return codes[i].status;
    return 500;
}

const char *connect_status_code(int status)
{
    for (size_t i = 0; i < NCODES; i++)
        if (codes[i].status == status)
            return codes[i].code;
    return status >= 400 && status < 500 ? "invalid_argument" : "internal";
}
