/* Base64 (RFC 4648 4, and the URL-safe alphabet of 5 on request) for request bodies that
 * carry bytes as text (file contents, stdin data), the WebSocket accept key and, as strict
 * base64url, JWTs. Pure. */
#ifndef SANDBOX_B64_H
#define SANDBOX_B64_H
#include <stddef.h>

/* b64_decode flag: also accept the URL-safe alphabet ('-' '_') and skip ASCII whitespace
 * anywhere, and allow at most two '='. Without it: only "+/" and no whitespace; any run of
 * '=' at the end is ignored (the stdin endpoints have always accepted that). */
#define B64_LAX 1u
/* b64_decode flag: strict unpadded base64url (RFC 7515 2, RFC 4648 5), for JWTs: only the
 * URL-safe alphabet, no '=', no whitespace, and zero unused bits in the last character
 * (RFC 4648 3.5), so each byte string has exactly one accepted encoding. */
#define B64_URL 2u

/* Characters needed to encode n bytes (padded). */
#define B64_ENCODED_LEN(n) (((n) + 2) / 3 * 4)

/* Decodes s[0..n) into out, which needs n * 3 / 4 + 3 bytes; out may be s (decoding in place:
 * output never overtakes input). Padding is optional; once '=' is seen only '=' (and, with
 * B64_LAX, whitespace) may follow. Returns the decoded length, or -1 when malformed (a bad
 * character, data after '=', a single leftover character). */
long b64_decode(const char *s, size_t n, unsigned char *out, unsigned flags);

/* Encodes in[0..n) with the standard alphabet and padding into out, which holds
 * B64_ENCODED_LEN(n) bytes (no NUL is written). Returns that length. */
size_t b64_encode(const unsigned char *in, size_t n, char *out);

/* Characters b64url_encode writes for n bytes (no padding). */
#define B64URL_ENCODED_LEN(n) ((n) / 3 * 4 + ((n) % 3 ? (n) % 3 + 1 : 0))

/* Encodes in[0..n) with the URL-safe alphabet and no padding (as JWTs carry it) into out,
 * which holds B64URL_ENCODED_LEN(n) bytes (no NUL is written). Returns that length. */
size_t b64url_encode(const unsigned char *in, size_t n, char *out);

#endif
