/* libFuzzer target: the HTTP request parser, the framing rules and the chunked decoder, as
 * server.c drives them. The input is one request as a client sends it; when the framing
 * says chunked, the bytes after the head go through the decoder whole and split at a point
 * chosen by the input, and both runs must agree (the decoder is restartable).
 * Checked beyond "no crash": results within their documented ranges, views inside the
 * input, prefix behaviour (a valid request is INCOMPLETE one byte short), and early
 * refusal of a prefix agreeing with the whole head's framing. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

#define REQUIRE(c) do { if (!(c)) abort(); } while (0)

static int inside(const char *p, size_t n, const uint8_t *data, size_t size)
{
    return n == 0 || ((const uint8_t *)p >= data && (const uint8_t *)p + n <= data + size);
}

/* Decodes body[0..n) in two calls split at `cut`; returns the decoder result and leaves
 * the decoded bytes in out[0..*out_len). */
static ssize_t decode_split(const uint8_t *body, size_t n, size_t cut, char *out,
                            size_t *out_len)
{
    struct http_chunked c;
    memset(&c, 0, sizeof c);
    memcpy(out, body, n);
    size_t first = cut, have = 0;
    ssize_t r = http_chunked_decode(&c, out, &first);
    REQUIRE(first <= cut);
    have = first;
    if (r == HTTP_INCOMPLETE && cut < n) {
        /* the caller keeps decoded bytes and passes only new ones next time */
        memmove(out + have, body + cut, n - cut);
        size_t more = n - cut;
        r = http_chunked_decode(&c, out + have, &more);
        REQUIRE(more <= n - cut);
        have += more;
    } else if (r >= 0) {
        /* done early: what follows the body is the caller's business */
        r += (ssize_t)(n - cut);
    }
    *out_len = have;
    if (r == HTTP_INVALID) {   /* sticky */
        size_t zero = 0;
        REQUIRE(http_chunked_decode(&c, out, &zero) == HTTP_INVALID);
    }
    return r;
}

static void fuzz_chunked(const uint8_t *body, size_t n, size_t cut)
{
    char *a = malloc(n + 1), *b = malloc(n + 1);
    REQUIRE(a && b);
    size_t alen, blen;
    ssize_t ra = decode_split(body, n, n, a, &alen);
    ssize_t rb = decode_split(body, n, cut % (n + 1), b, &blen);
    REQUIRE(ra == HTTP_INCOMPLETE || ra == HTTP_INVALID || ra >= 0);
    REQUIRE(alen <= n);
    REQUIRE(ra == rb);
    if (ra != HTTP_INVALID) {
        REQUIRE(alen == blen);
        REQUIRE(memcmp(a, b, alen) == 0);
    }
    if (ra >= 0) {
        REQUIRE(alen + (size_t)ra <= n);
        /* the bytes after the body are the input's tail, moved right after the data */
        REQUIRE(memcmp(a + alen, body + n - (size_t)ra, (size_t)ra) == 0);
    }
    free(a);
    free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct http_request req;
    const char *buf = (const char *)data;
    int r = http_parse_request(buf, size, &req);
    REQUIRE(r >= HTTP_BAD_VERSION);
    if (r < 0) {
        /* not a request: give the bytes to the chunked decoder directly, so it is fuzzed
         * also by inputs that never grew a valid head */
        fuzz_chunked(data, size, size ? data[0] * 131u + data[size - 1] : 0);
        return 0;
    }
    REQUIRE((size_t)r <= size && r <= LIMIT_HEADER_BYTES);
    /* a complete head one byte short is incomplete (the parser is restartable) */
    struct http_request shorter;
    REQUIRE(http_parse_request(buf, (size_t)r - 1, &shorter) == HTTP_INCOMPLETE);
    REQUIRE(req.minor == 0 || req.minor == 1);
    REQUIRE(req.num_headers <= LIMIT_HEADERS);
    REQUIRE(inside(req.method, req.method_len, data, size) && req.method_len > 0);
    REQUIRE(inside(req.target, req.target_len, data, size) && req.target_len > 0);
    REQUIRE(req.target_len <= LIMIT_URI_BYTES);
    for (size_t i = 0; i < req.num_headers; i++) {
        const struct http_header *h = &req.headers[i];
        REQUIRE(inside(h->name, h->name_len, data, size) && h->name_len > 0);
        REQUIRE(inside(h->value, h->value_len, data, size));
        REQUIRE(memchr(h->value, 0, h->value_len) == NULL);
    }
    static const char *const names[] = { "host", "content-length", "transfer-encoding",
                                         "connection", "expect", "x-request-id" };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const struct http_header *h = http_find_header(&req, names[i]);
        REQUIRE(!h || (h >= req.headers && h < req.headers + req.num_headers));
    }

    const char *path, *query;
    size_t path_len, query_len;
    http_split_target(req.target, req.target_len, &path, &path_len, &query, &query_len);
    REQUIRE(path_len <= req.target_len && query_len <= req.target_len);
    REQUIRE(query_len == 0 || inside(query, query_len, data, size));
    char out[256];
    http_query_get(query, query_len, "status", out, sizeof out);

    struct http_framing f;
    int st = http_request_framing(&req, &f);
    REQUIRE(st == 0 || st == 400 || st == 501 || st == 417);
    /* early refusal (server.c, while the head arrives): a prefix is refused only with the
     * 400 the whole head gets; tried just before the blank line and at an input-chosen cut */
    size_t cuts[2] = { (size_t)r - 2, size ? (data[size - 1] * 257u + data[0]) % (size_t)r : 0 };
    for (int k = 0; k < 2; k++) {
        REQUIRE(http_parse_request(buf, cuts[k], &shorter) == HTTP_INCOMPLETE);
        int early = http_request_early(&shorter);
        REQUIRE(early == 0 || (early == 400 && st == 400));
    }
    if (st == 0 && f.body == HTTP_BODY_CHUNKED) {
        size_t n = size - (size_t)r;
        fuzz_chunked(data + r, n, n ? data[size - 1] * 131u + data[r] : 0);
    }
    return 0;
}
