/* Strict RFC 8259 JSON: a parser into caller-owned tokens, and an encoder into a struct buf.
 * Pure: no syscalls, no globals, no allocation in the parser. */
#ifndef SANDBOX_JSON_H
#define SANDBOX_JSON_H
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

enum json_type { JSON_NULL, JSON_FALSE, JSON_TRUE, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT };

/* One value. Tokens are in document order: an object is followed by its key, value, key,
 * value...; an array by its elements. Spans index the caller's input. */
struct json_token {
    enum json_type type;
    uint32_t start;   /* strings: first byte after the opening quote; others: first byte */
    uint32_t len;     /* strings: raw (still escaped) bytes between the quotes; others: bytes
                       * of the value's text (containers: through the closing bracket) */
    uint32_t size;    /* arrays: elements; objects: members (key/value pairs) */
    uint32_t next;    /* index of the first token after this value and all it contains */
};

enum json_error {
    JSON_ERR_INVALID = -1,  /* not JSON: syntax, bad escape, bad number, bad UTF-8, garbage */
    JSON_ERR_DEPTH = -2,    /* nesting deeper than max_depth */
    JSON_ERR_TOKENS = -3,   /* more values than max_tokens */
};

/* Parses exactly one JSON text in s[0..len) (surrounding whitespace allowed, nothing else).
 * Returns the number of tokens used (>= 1; token 0 is the root) or a json_error: the first
 * error met reading left to right. Keys are tokens too. The root container is at depth 1,
 * so max_depth 0 admits only a scalar. s is not NUL-terminated and not kept; toks holds
 * max_toks entries (more than INT32_MAX are not used). Nothing is allocated and the stack
 * use is constant whatever the nesting. Input must not exceed UINT32_MAX bytes (returns
 * JSON_ERR_INVALID). On error the contents of toks are unspecified. */
int json_parse(const char *s, size_t len, struct json_token *toks, uint32_t max_toks,
               uint32_t max_depth);

/* json_parse, and on error *err_pos (may be NULL) gets the byte offset where parsing
 * stopped: the start of the value, string or token that could not be read (len when the
 * text ended too soon). */
int json_parse_at(const char *s, size_t len, struct json_token *toks, uint32_t max_toks,
                  uint32_t max_depth, uint32_t *err_pos);

/* Index of the value for `key` in the object at index `obj`, or -1 when absent or when
 * toks[obj] is not an object (obj < 0 also gives -1; otherwise it must be an index of the
 * parse). Keys are compared after unescaping, byte for byte with the NUL-terminated key,
 * so a key holding \u0000 never matches; the last duplicate wins. */
int json_get(const char *s, const struct json_token *toks, int obj, const char *key);

/* Unescapes string token t into out (needs t->len bytes at most: decoding never grows).
 * Returns the decoded length. The result may contain NUL bytes (from \u0000); it is not
 * NUL-terminated. t must be a JSON_STRING token of a successful parse. */
size_t json_str_decode(const char *s, const struct json_token *t, char *out);

/* Number token as an integer: 0 and *out set when its exact value is a whole number within
 * int64, -1 otherwise (also when t is not a number). Fractions and exponents are allowed
 * when they cancel out exactly: 10.0, 1e3, 1.5e1, 100e-2 and -0 are integers; 1.5, 1e-1
 * and 9223372036854775808 are not. No rounding through double happens. */
int json_get_int64(const char *s, const struct json_token *t, int64_t *out);
/* Number token as a double, correctly rounded (strtod, whatever the digit count): 0, or -1
 * when t is not a number or its magnitude overflows a double (1e400). Underflow gives 0
 * or a subnormal. errno is left as it was. */
int json_get_double(const char *s, const struct json_token *t, double *out);

/* Encoder. Each appends to b; failures are recorded in b->failed (see buf.h).
 * Value writers never write a separator: call json_sep before each array element
 * (json_put_key does it for members).
 * json_sep writes the comma that separates members/elements, unless b is empty or ends in
 * '{' or '['. */
void json_sep(struct buf *b);
/* A quoted string from arbitrary bytes: escapes as RFC 8259 requires (", \, and controls
 * below 0x20 as \b \f \n \r \t or \u00xx), keeps valid UTF-8 as is (DEL and U+2028 too),
 * and replaces each maximal subpart of an invalid UTF-8 sequence with U+FFFD (Unicode 3.9,
 * "U+FFFD substitution of maximal subparts"): F0 9F 98 then 'x' gives one U+FFFD, C0 AF
 * gives two. */
void json_put_str(struct buf *b, const char *p, size_t n);
void json_put_cstr(struct buf *b, const char *s);     /* NULL writes null */
void json_put_int(struct buf *b, int64_t v);
/* Fixed point with `decimals` (clamped to 0..17) digits after the point, as printf's %.*f:
 * 1.532 with 3 gives 1.532. Non-finite writes null. */
void json_put_num(struct buf *b, double v, int decimals);
void json_put_bool(struct buf *b, int v);
void json_put_null(struct buf *b);
/* `"key":` preceded by json_sep: the start of one object member. key is NUL-terminated. */
void json_put_key(struct buf *b, const char *key);

/* Re-encodes the value at toks[i] of a successful parse of s compactly: no whitespace,
 * numbers as written, strings decoded and re-encoded by json_put_str's rules (so "\/"
 * becomes "/" and "\u00e9" the raw UTF-8). The output parses, and re-encodes to itself.
 * Recurses once per nesting level, so the parse's max_depth bounds the stack use. */
void json_put_token(struct buf *b, const char *s, const struct json_token *toks, int i);

#endif
