/* libFuzzer target: the webhook client's response parsing (http_parse_response, then
 * http_response_framing and the chunked drain as hook.c runs them). Checks: no crash or
 * over-read, a parsed head never longer than the input, and restartability: a prefix one
 * byte shorter than a complete head is incomplete. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

#define REQUIRE(c) do { if (!(c)) abort(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *copy = malloc(size ? size : 1);
    REQUIRE(copy);
    memcpy(copy, data, size);
    struct http_response r;
    int n = http_parse_response(copy, size, &r);
    REQUIRE(n >= HTTP_BAD_VERSION);
    if (n > 0) {
        REQUIRE((size_t)n <= size && r.status >= 100 && r.status <= 999);
        REQUIRE(http_parse_response(copy, (size_t)n - 1, &r) == HTTP_INCOMPLETE);
        n = http_parse_response(copy, size, &r);
        struct http_framing f;
        if (http_response_framing(&r, &f) == 0 && f.body == HTTP_BODY_CHUNKED) {
            struct http_chunked ch = { 0 };
            size_t len = size - (size_t)n;
            ssize_t k = http_chunked_decode(&ch, copy + n, &len);
            REQUIRE(k >= HTTP_INVALID);
            REQUIRE(len <= size - (size_t)n);
        }
    }
    free(copy);
    return 0;
}
