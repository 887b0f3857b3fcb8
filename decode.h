/* Request decoding by table: one static table of fields per endpoint, one call that checks a
 * JSON object against it and fills the caller's struct, naming the first bad field.
 *
 * Pure apart from memory: no syscalls, no logging. Strings are copied (unescaped) into a
 * per-request arena the caller opens and closes, so the JSON tokens may be freed as soon as
 * decode_object returns and the struct stays valid until decode_arena_close.
 *
 * Rules every table gets for free:
 *  - unknown members are ignored; a member that is null counts as absent;
 *  - a field's name is tried first, then its aliases in order: the first one present (and
 *    not null) is the field's value; duplicate keys: the last one wins (json_get);
 *  - an absent field gets its default (def_int / def_num / def_str; zero when not given),
 *    a DECODE_REQUIRED one answers 400 MISSING_PARAMETER "'name' is required";
 *  - every other mistake answers 400 INVALID_REQUEST with a message naming the field (as
 *    the client spelled it), except lists over their count or byte bound with
 *    DECODE_TOO_LARGE_413 (413 PAYLOAD_TOO_LARGE); running out of arena answers 500
 *    INTERNAL_ERROR.
 *
 * Example: POST /commands/background
 *
 *     struct bg { const char *command; struct decode_strings args; int64_t timeout_ms;
 *                 const char *cwd; struct decode_map env; int wait; };
 *     #define F(x) offsetof(struct bg, x)
 *     static const struct decode_field bg_fields[] = {
 *         { "command", .type = DECODE_STRING, .off = F(command),
 *           .flags = DECODE_REQUIRED | DECODE_EMPTY_IS_ABSENT },
 *         { "args", .type = DECODE_STRINGS, .off = F(args), .max = LIMIT_ARGS },
 *         { "timeout", .type = DECODE_MILLIS, .off = F(timeout_ms), .dmin = 0,
 *           .dmax = LIMIT_TIMEOUT_MAX_S, .def_int = 300000 },
 *         { "working_dir", { "workdir", "cwd" }, .type = DECODE_STRING, .off = F(cwd) },
 *         { "env", .type = DECODE_MAP, .off = F(env), .flags = DECODE_ENV,
 *           .max = LIMIT_ENV_VARS, .max_bytes = LIMIT_ENV_BYTES },
 *         { "wait", .type = DECODE_BOOL, .off = F(wait), .def_int = -1 },   (-1: not given)
 *     };
 *     static const struct decode_table bg_table = DECODE_TABLE(bg_fields);
 *
 *     struct bg r;   (decode_object fills every field: present, default or zero)
 *     decode_arena_open(&ar, DECODE_ARENA_FOR(req->body_len));
 *     if (api_decode_body(req, rep, &bg_table, &ar, &r, NULL) < 0) ...   (api.h: parse + decode)
 *     ...
 *     decode_arena_close(&ar);
 *
 * A nested object (limits {memory_bytes, pids}) is a DECODE_OBJECT field whose .sub table
 * decodes into a struct embedded in the caller's at .off. E2B's camelCase names are
 * aliases: { "working_dir", { "workdir", "cwd", "workingDir" } ... }.
 */
#ifndef SANDBOX_DECODE_H
#define SANDBOX_DECODE_H
#include <stddef.h>
#include <stdint.h>

#include "json.h"

#define DECODE_ALIASES 4    /* other names per field (snake_case, camelCase, older names) */
#define DECODE_FIELDS 64    /* fields per table: the seen bitmask is 64 bits */
#define DECODE_MSG 200      /* error message bytes */

/* What a field's JSON value must be, and what is written at out + off. */
enum decode_type {
    DECODE_STRING,     /* string without NUL bytes -> const char * (NULL when absent and no
                        * def_str); .max > 0 bounds its length in bytes */
    DECODE_BYTES,      /* any string (NULs allowed) -> struct decode_bytes */
    DECODE_BOOL,       /* true/false -> int 1/0 (absent: def_int, e.g. -1 for "not given") */
    DECODE_INT,        /* whole number in [min, max] -> int64_t (1e3 and 10.0 count) */
    DECODE_DOUBLE,     /* number in [dmin, dmax] -> double */
    DECODE_MILLIS,     /* seconds in [dmin, dmax], at most millisecond precision -> int64_t
                        * milliseconds (1.5 -> 1500; 0.0001 is refused, never rounded) */
    DECODE_ENUM,       /* string among .names (case-insensitive) -> int: .values[i], or i */
    DECODE_STR_OR_BOOL,/* true | false | "text" -> struct decode_strbool */
    DECODE_MAP,        /* object of string -> string -> struct decode_map; .max entries,
                        * .max_bytes of keys + values */
    DECODE_STRINGS,    /* array of NUL-free strings -> struct decode_strings; .max entries */
    DECODE_OBJECT,     /* object decoded by .sub into the struct at out + off */
    DECODE_SCALAR,     /* string or number, as NUL-free text -> const char * (a whole number
                        * in decimal: 1.5e1 gives "15"; others as written): for values like
                        * signals that clients send either way */
};

/* Field flags. */
#define DECODE_REQUIRED        0x1u  /* absent or null: 400 MISSING_PARAMETER */
#define DECODE_EMPTY_IS_ABSENT 0x2u  /* DECODE_STRING: "" counts as absent (default/required) */
#define DECODE_ENV             0x4u  /* DECODE_MAP: keys are environment names (non-empty,
                                      * no '='), and map.env gets "K=V" strings */
#define DECODE_TOO_LARGE_413   0x8u  /* MAP/STRINGS over .max/.max_bytes: 413, not 400 */

struct decode_table;

struct decode_field {
    const char *name;                          /* the member's name */
    const char *aliases[DECODE_ALIASES];       /* other accepted names, NULL-padded */
    enum decode_type type;                     /* (type and flags side by side: no padding) */
    unsigned flags;
    size_t off;                                /* offsetof(the caller's struct, member) */
    int64_t min, max;                          /* INT: bounds (both 0: any int64); STRING:
                                                * max length; MAP/STRINGS: max entries */
    double dmin, dmax;                         /* DOUBLE/MILLIS bounds (both 0: >= 0 and
                                                * any size) */
    size_t max_bytes;                          /* MAP: keys + values bytes (0: no bound) */
    int64_t def_int;                           /* BOOL/INT/MILLIS/ENUM default */
    double def_num;                            /* DOUBLE default */
    const char *def_str;                       /* STRING default */
    const char *const *names;                  /* ENUM: accepted names, NULL-terminated */
    const int *values;                         /* ENUM: value per name (NULL: the index) */
    const struct decode_table *sub;            /* OBJECT: the nested table */
};

struct decode_table {
    const struct decode_field *fields;
    size_t n;                                  /* at most DECODE_FIELDS */
};
#define DECODE_TABLE(arr) { (arr), sizeof(arr) / sizeof((arr)[0]) }

/* Output shapes. All pointers point into the arena. */
struct decode_bytes {
    const char *p;     /* NUL-terminated, may hold NULs; NULL when absent */
    size_t len;
};
enum decode_sb { DECODE_SB_ABSENT, DECODE_SB_FALSE, DECODE_SB_TRUE, DECODE_SB_TEXT };
struct decode_strbool {
    enum decode_sb kind;
    const char *p;     /* DECODE_SB_TEXT: the text (NULs allowed), NUL-terminated */
    size_t len;
};
struct decode_map {
    size_t n;          /* entries (0 when absent) */
    const char **keys; /* n keys, NUL-free */
    const char **vals; /* n values, NUL-free */
    char **env;        /* DECODE_ENV: n "K=V" strings and a NULL; else NULL */
};
struct decode_strings {
    size_t n;          /* entries (0 when absent) */
    char **v;          /* n strings and a NULL; NULL when absent */
};

/* Per-request memory: strings and arrays of one decode (and whatever else the handler takes
 * with decode_take). Closed in one place by the handler. */
struct decode_arena {
    char *base;
    size_t used, cap;
    int is_static;
};

/* Arena bytes that always suffice to decode a body of len bytes by any table: a map entry
 * "k":"v", (5+ bytes) takes its key, value and "k=v" copies (each rounded up to 8) and three
 * pointers, under 10 bytes per body byte plus twice its text; a number read as DECODE_SCALAR
 * up to 24 more per field. */
#define DECODE_ARENA_FOR(len) (12 * (size_t)(len) + 4096)

/* Opens an arena of cap bytes: a static block when it fits and is free (one request decodes
 * at a time; a malloc of 64 KiB+ per request was an mmap and page faults), else malloc.
 * Returns 0, or -1 when out of memory. */
int decode_arena_open(struct decode_arena *ar, size_t cap);
void decode_arena_close(struct decode_arena *ar);
/* n bytes, 8-aligned, from the arena, or NULL when it is full. */
void *decode_take(struct decode_arena *ar, size_t n);

/* The first problem met, for the caller to answer as {error/message, code} with status. */
struct decode_error {
    int status;        /* 400, 413 or 500 */
    const char *code;  /* "INVALID_REQUEST", "MISSING_PARAMETER", ... */
    const char *field; /* the table's name of the field (NULL: not about one field) */
    char msg[DECODE_MSG];
};

/* Decodes the object at toks[obj] of a successful json_parse of s into out by table t: every
 * field of t is written (its value, default or zero). *seen (may be NULL) gets bit i set
 * when t->fields[i] was present. Returns 0, or -1 with *err filled (out is then partly
 * written and must not be used). */
int decode_object(const struct decode_table *t, const char *s, const struct json_token *toks,
                  int obj, struct decode_arena *ar, void *out, uint64_t *seen,
                  struct decode_error *err);

/* Parses body[0..len) as one JSON object (len 0: {}) and decodes it as decode_object does.
 * Malformed JSON answers 400 INVALID_JSON saying at which byte; nesting deeper than
 * max_depth 400 INVALID_JSON; more than max_toks values 413 PAYLOAD_TOO_LARGE; a non-object
 * 400 INVALID_REQUEST. The tokens are allocated and freed inside. */
int decode_body(const struct decode_table *t, const char *body, size_t len, uint32_t max_toks,
                uint32_t max_depth, struct decode_arena *ar, void *out, uint64_t *seen,
                struct decode_error *err);

#endif
