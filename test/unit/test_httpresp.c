/* http.c's response side (the webhook client): status line and header section, fed whole
 * and as every prefix, and the body framing rules of RFC 9112 6.3. */
#include "http.h"

#include "unit.h"

struct rcase {
    const char *in;
    int rc;          /* > 0: expect the whole input parsed (rc = strlen) */
    int status;
    enum http_body body;
    uint64_t length;
};

static const struct rcase cases[] = {
    { "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", 1, 200, HTTP_BODY_LENGTH, 5 },
    { "HTTP/1.1 204 No Content\r\n\r\n", 1, 204, HTTP_BODY_NONE, 0 },
    { "HTTP/1.0 503 Service Unavailable\r\nServer: x\r\n\r\n", 1, 503, HTTP_BODY_CLOSE, 0 },
    { "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", 1, 200, HTTP_BODY_CHUNKED, 0 },
    { "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nContent-Length: 3\r\n\r\n", 1, 200,
      HTTP_BODY_CLOSE, 0 },
    { "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", 1, 200, HTTP_BODY_LENGTH, 0 },
    { "HTTP/1.1 100 Continue\r\n\r\n", 1, 100, HTTP_BODY_NONE, 0 },
    { "HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n", 1, 304, HTTP_BODY_NONE, 0 },
    { "HTTP/1.1 429 \r\nRetry-After: 1\r\n\r\n", 1, 429, HTTP_BODY_CLOSE, 0 },
    { "HTTP/2.0 200 OK\r\n\r\n", HTTP_BAD_VERSION, 0, 0, 0 },
    { "HTTP/1.1 20x OK\r\n\r\n", HTTP_INVALID, 0, 0, 0 },
    { "HTTP/1.1 099 OK\r\n\r\n", HTTP_INVALID, 0, 0, 0 },
    { "HTTP/1.1 200 OK\nContent-Length: 1\n\n", HTTP_INVALID, 0, 0, 0 },
    { "HTTP/1.1 200 OK\r\nBad Header: 1\r\n\r\n", HTTP_INVALID, 0, 0, 0 },
    { "http/1.1 200 OK\r\n\r\n", HTTP_INVALID, 0, 0, 0 },
    { "SSH-2.0-OpenSSH\r\n", HTTP_INVALID, 0, 0, 0 },
};

int main(void)
{
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const struct rcase *c = &cases[k];
        size_t n = strlen(c->in);
        struct http_response r;
        int got = http_parse_response(c->in, n, &r);
        int want = c->rc > 0 ? (int)n : c->rc;
        CHECK(got == want, "case %zu: rc %d, want %d", k, got, want);
        if (got > 0 && c->rc > 0) {
            struct http_framing f;
            CHECK(r.status == c->status, "case %zu: status %d", k, r.status);
            CHECK(http_response_framing(&r, &f) == 0 && f.body == c->body &&
                  f.length == c->length, "case %zu: framing %d %llu", k, f.body,
                  (unsigned long long)f.length);
        }
        /* every prefix: incomplete, or (for bad input) the same error once it shows */
        int bad = 0;
        for (size_t i = 0; i < n; i++) {
            int p = http_parse_response(c->in, i, &r);
            if (p != HTTP_INCOMPLETE && p != want)
                bad++;
            if (c->rc > 0 && p != HTTP_INCOMPLETE)
                bad++;
        }
        CHECK(!bad, "case %zu: %d prefixes wrong", k, bad);
    }
    struct http_response r;
    const char *two = "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n";
    struct http_framing f;
    CHECK(http_parse_response(two, strlen(two), &r) > 0 && http_response_framing(&r, &f) == -1,
          "two Content-Length lines cannot frame");
    const char *big = "HTTP/1.1 200 OK\r\nX: ";
    char *buf = malloc(LIMIT_HEADER_BYTES + 10);
    memset(buf, 'a', LIMIT_HEADER_BYTES + 10);
    memcpy(buf, big, strlen(big));
    CHECK(http_parse_response(buf, LIMIT_HEADER_BYTES + 10, &r) == HTTP_HEADERS_TOO_LARGE,
          "header section too large");
    free(buf);
    printf("httpresp: %d passed, %d failed, %d skipped\n", unit_passed, unit_failed, unit_skipped);
    return unit_failed != 0;
}
