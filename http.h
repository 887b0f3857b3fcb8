/* HTTP/1.1 request parsing (RFC 9112), in the picohttpparser manner: stateless and
 * restartable (call again with more bytes), zero-copy (views into the caller's buffer).
 * Also the message rules a server applies on top (framing, Host, keep-alive), chunked
 * decoding and query strings. Pure: no syscalls, no globals, no allocation. */
#ifndef SANDBOX_HTTP_H
#define SANDBOX_HTTP_H
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "limits.h"

struct http_header {
    const char *name;   /* never NUL-terminated */
    size_t name_len;
    const char *value;  /* leading and trailing OWS removed */
    size_t value_len;
};

struct http_request {
    const char *method;
    size_t method_len;
    const char *target;  /* request-target as sent (origin-form, absolute-form, '*', ...) */
    size_t target_len;
    int minor;           /* HTTP/1.<minor>: 0 or 1 */
    size_t num_headers;
    struct http_header headers[LIMIT_HEADERS];
};

/* Negative results, shared by the parsers below. */
enum http_code {
    HTTP_INCOMPLETE = -1,       /* valid so far; call again with more bytes */
    HTTP_INVALID = -2,          /* malformed: answer 400 */
    HTTP_HEADERS_TOO_LARGE = -3, /* > LIMIT_HEADERS lines, or no end within LIMIT_HEADER_BYTES: 431 */
    HTTP_URI_TOO_LONG = -4,     /* target > LIMIT_URI_BYTES (known before the line ends): 414 */
    HTTP_BAD_VERSION = -5,      /* well-formed HTTP-version other than 1.0/1.1: 505 */
};

/* Parses the request line and header section at the start of buf[0..len).
 * Stateless: each call parses from the start, so call again with the grown buffer.
 * Empty lines (CRLF) before the request line are skipped (RFC 9112 2.2).
 * Line ends must be CRLF; bare CR or LF, obs-fold, whitespace before a colon or at the
 * start of a field line, more than one SP between request-line parts, invalid token or
 * field-value characters (NUL and other CTLs) are HTTP_INVALID. The request-target is
 * visible ASCII without '"', '#', '<', '>' (no client leaves these unescaped).
 * Any valid prefix is HTTP_INCOMPLETE; an error is returned as soon as a prefix shows it:
 * HTTP_URI_TOO_LONG before the request line ends, HTTP_BAD_VERSION once "HTTP/d.d" is in
 * (HTTP/1.2 and HTTP/2.0 included), HTTP_HEADERS_TOO_LARGE when len reaches
 * LIMIT_HEADER_BYTES without the blank line or the LIMIT_HEADERS+1st field line starts.
 * Returns the byte length (<= LIMIT_HEADER_BYTES) of everything up to and including the
 * blank line that ends the header section (the body starts there), or an http_code.
 * req views point into buf. After HTTP_INCOMPLETE, *req holds what is complete so far
 * (for http_request_early): method_len is 0 until the request line is complete, then
 * num_headers counts the complete field lines; after another negative result *req is
 * unspecified. */
int http_parse_request(const char *buf, size_t len, struct http_request *req);

/* Case-insensitive lookup; the first header named `name`, or NULL. */
const struct http_header *http_find_header(const struct http_request *req, const char *name);

enum http_body { HTTP_BODY_NONE, HTTP_BODY_LENGTH, HTTP_BODY_CHUNKED };

/* What the message rules decide about a parsed request (RFC 9112 6, 9; RFC 9110 7.2, 10.1.1). */
struct http_framing {
    enum http_body body;
    uint64_t length;         /* HTTP_BODY_LENGTH: Content-Length */
    int keep_alive;          /* 1.1 unless "Connection: close"; 1.0 only with "keep-alive" */
    int expect_continue;     /* "Expect: 100-continue" in HTTP/1.1 (ignored in 1.0) */
};

/* Returns 0 with *f filled, or the HTTP status to answer before closing:
 * 400 for HTTP/1.1 without a Host, two Host lines (any version), an invalid Host (not
 * uri-host[:port]: userinfo, spaces, a path, empty), a request-target in the wrong form
 * (RFC 9112 3.2: "*" only for OPTIONS, authority-form only and always for CONNECT,
 * absolute-form only for http/https with a valid authority), Content-Length together with
 * Transfer-Encoding, Transfer-Encoding in HTTP/1.0, a Content-Length that is not 1*DIGIT,
 * overflows, is a list ("5, 5") or appears twice (even with equal values), a
 * Transfer-Encoding with chunked not last, twice, with parameters, or no coding at all;
 * 501 for any other transfer coding (gzip, deflate, identity, unknown), also before a
 * final chunked; 417 for an Expect other than 100-continue.
 * Content-Length: 0 gives HTTP_BODY_LENGTH with length 0. */
int http_request_framing(const struct http_request *req, struct http_framing *f);

/* The same rules over a header section still arriving (req as http_parse_request left it
 * after HTTP_INCOMPLETE), so a bad field line is refused as soon as it is in, as nginx and
 * llhttp do, not when the blank line comes (which it may never do). Returns 0 while
 * nothing is wrong yet (or the request line is not complete), else 400: exactly when
 * http_request_framing on the whole section will answer 400 too, whatever lines follow.
 * A missing Host, 501 and 417 are only judged on the whole section. */
int http_request_early(const struct http_request *req);

/* Chunked body decoder (RFC 9112 7.1), restartable over a growing buffer. Zero-init it. */
struct http_chunked {
    int state;
    uint64_t remaining;   /* bytes left in the current chunk */
    size_t skipped;       /* bytes of extensions/trailers seen, bounded */
    int digits;           /* chunk-size digits seen on this line */
};

/* Decodes buf[0..*len) in place: decoded data is moved to the front and *len becomes its
 * length (the caller keeps it and passes only new bytes next time). Every byte given is
 * consumed, so the input may be split anywhere.
 * Returns HTTP_INCOMPLETE when more input is needed, HTTP_INVALID on a malformed chunk
 * (bad size, a sign, "0x", whitespace before the line end, more than 15 hex digits,
 * missing or bare-LF CRLF, a malformed extension, malformed trailer field, or more than
 * LIMIT_CHUNK_TRAILER bytes of extensions and trailers over the whole body), or, once the
 * last chunk and trailer section are complete, the count (>= 0) of bytes after the body,
 * which are moved to buf[*len .. *len + ret). Trailer fields are checked and dropped,
 * never merged into the header fields (RFC 9110 6.5.1). After HTTP_INVALID *len is
 * what was decoded before the error, and every later call is HTTP_INVALID too. */
ssize_t http_chunked_decode(struct http_chunked *c, char *buf, size_t *len);

/* Splits a target into path and query (without '?'); a fragment is not expected.
 * For absolute-form ("http://host/p?q") the scheme and authority are skipped; an empty
 * path there is "/" (a static string, not a view into target). Without a '?' the query
 * is empty (query_len 0). */
void http_split_target(const char *target, size_t len, const char **path, size_t *path_len,
                       const char **query, size_t *query_len);

/* Percent-decodes s[0..len) into out (cap bytes, not NUL-terminated). plus_is_space for
 * query components.
 * Returns the decoded length, or -1 for a bad escape, a NUL (raw or decoded), or not fitting cap. */
int http_percent_decode(const char *s, size_t len, char *out, size_t cap, int plus_is_space);

/* Finds `key` in an application/x-www-form-urlencoded query and decodes its first value
 * into out (NUL-terminated). Pairs are split at '&', keys are decoded before comparing
 * (a key with a bad escape matches nothing), "key" without '=' has the empty value.
 * Returns the length, -1 if absent, -2 if the value is malformed or too long for cap. */
int http_query_get(const char *q, size_t qlen, const char *key, char *out, size_t cap);

/* "OK", "Not Found", ...; "Unknown" for codes it does not know. */
const char *http_status_reason(int status);

#endif
