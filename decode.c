#include "decode.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Arenas up to this size live in static storage: one request decodes at a time, and only
 * the pages a request touches become resident. */
#define ARENA_STATIC (96 * 1024)
static char arena_static[ARENA_STATIC] __attribute__((aligned(16)));
static int arena_static_busy;

/* ---- arena ---- */

int decode_arena_open(struct decode_arena *ar, size_t cap)
{
    ar->used = 0;
    ar->cap = cap;
    ar->is_static = cap <= ARENA_STATIC && !arena_static_busy;
    ar->base = ar->is_static ? arena_static : malloc(cap ? cap : 1);
    if (!ar->base)
        return -1;
    if (ar->is_static)
        arena_static_busy = 1;
    return 0;
}

void decode_arena_close(struct decode_arena *ar)
{
    if (ar->is_static)
        arena_static_busy = 0;
    else
        free(ar->base);
    ar->base = NULL;
    ar->used = ar->cap = 0;
    ar->is_static = 0;
}

void *decode_take(struct decode_arena *ar, size_t n)
{
    if (n > SIZE_MAX - 7)
        return NULL;
    n = (n + 7) & ~(size_t)7;
    if (!ar->base || n > ar->cap - ar->used)
        return NULL;
    void *p = ar->base + ar->used;
    ar->used += n;
    return p;
}

/* ---- errors ---- */

static int fail(struct decode_error *e, int status, const char *code, const char *field,
                const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int fail(struct decode_error *e, int status, const char *code, const char *field,
                const char *fmt, ...)
{
    va_list ap;
    e->status = status;
    e->code = code;
    e->field = field;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    return -1;
}

static int oom(struct decode_error *e, const char *key)
{
    return fail(e, 500, "INTERNAL_ERROR", key, "out of memory decoding '%s'", key);
}

/* A shortened copy of client bytes for a message: at most 64 bytes (a key named in an
 * error must not fill the message). */
#define SHOW(len) (int)((len) < 64 ? (len) : 64)

/* ---- values ---- */

/* A decoded string token, NUL-terminated; *len gets its length (it may hold NULs). */
static char *take_str(struct decode_arena *ar, const char *s, const struct json_token *t,
                      size_t *len)
{
    char *out = decode_take(ar, (size_t)t->len + 1);
    if (!out)
        return NULL;
    size_t n = json_str_decode(s, t, out);
    out[n] = 0;
    if (len)
        *len = n;
    return out;
}

static int put_string(const struct decode_field *f, const char *key, const char *s,
                      const struct json_token *t, struct decode_arena *ar, char *out,
                      struct decode_error *e)
{
    if (t->type != JSON_STRING)
        return fail(e, 400, "INVALID_REQUEST", key, "'%s' must be a string", key);
    size_t len;
    char *v = take_str(ar, s, t, &len);
    if (!v)
        return oom(e, key);
    if (strlen(v) != len)
        return fail(e, 400, "INVALID_REQUEST", key, "'%s' must not contain NUL bytes", key);
    if (f->max > 0 && len > (uint64_t)f->max)
        return fail(e, 400, "INVALID_REQUEST", key, "'%s' is longer than %lld bytes", key,
                    (long long)f->max);
    *(const char **)out = v;
    return 0;
}

static int put_bytes(const char *key, const char *s, const struct json_token *t,
                     struct decode_arena *ar, char *out, struct decode_error *e)
{
    if (t->type != JSON_STRING)
        return fail(e, 400, "INVALID_REQUEST", key, "'%s' must be a string", key);
    struct decode_bytes *b = (struct decode_bytes *)out;
    b->p = take_str(ar, s, t, &b->len);
    return b->p ? 0 : oom(e, key);
}

static int put_int(const struct decode_field *f, const char *key, const char *s,
                   const struct json_token *t, char *out, struct decode_error *e)
{
    int64_t v;
    int bounded = f->min || f->max;
    if (t->type != JSON_NUMBER || json_get_int64(s, t, &v) < 0) {
        if (bounded)
            return fail(e, 400, "INVALID_REQUEST", key,
                        "'%s' must be a whole number between %lld and %lld", key,
                        (long long)f->min, (long long)f->max);
        return fail(e, 400, "INVALID_REQUEST", key, "'%s' must be a whole number", key);
    }
    if (bounded && (v < f->min || v > f->max))
        return fail(e, 400, "INVALID_REQUEST", key, "'%s' must be between %lld and %lld", key,
                    (long long)f->min, (long long)f->max);
    *(int64_t *)out = v;
    return 0;
}

/* A number within the field's bounds (both 0: >= 0, no upper bound). */
static int get_num(const struct decode_field *f, const char *key, const char *s,
                   const struct json_token *t, const char *unit, double *v,
                   struct decode_error *e)
{
    double lo = f->dmin, hi = f->dmax;
    int unbounded = lo == 0 && hi == 0;
    if (t->type != JSON_NUMBER || json_get_double(s, t, v) < 0)
        return fail(e, 400, "INVALID_REQUEST", key, "'%s' must be a number%s%s", key,
                    *unit ? " of " : "", unit);
    if (unbounded ? !(*v >= 0) : !(*v >= lo && *v <= hi)) {
        if (unbounded)
            return fail(e, 400, "INVALID_REQUEST", key, "'%s' must not be negative", key);
        return fail(e, 400, "INVALID_REQUEST", key, "'%s' must be between %g and %g%s%s", key,
                    lo, hi, *unit ? " " : "", unit);
    }
    return 0;
}

static int put_double(const struct decode_field *f, const char *key, const char *s,
                      const struct json_token *t, char *out, struct decode_error *e)
{
    double v;
    if (get_num(f, key, s, t, "", &v, e) < 0)
        return -1;
    *(double *)out = v;
    return 0;
}

/* Seconds to whole milliseconds. The double nearest 1.234 times 1000 is not exactly 1234,
 * so "a whole number of milliseconds" means within a millionth of one. */
static int put_millis(const struct decode_field *f, const char *key, const char *s,
                      const struct json_token *t, char *out, struct decode_error *e)
{
    double v;
    if (get_num(f, key, s, t, "seconds", &v, e) < 0)
        return -1;
    double ms = v * 1000.0;
    if (ms > 9.2e18)
        return fail(e, 400, "INVALID_REQUEST", key, "'%s' is too large", key);
    double r = nearbyint(ms);
    if (fabs(ms - r) > 1e-6)
        return fail(e, 400, "INVALID_REQUEST", key,
                    "'%s' must be seconds with at most 3 decimals (milliseconds)", key);
    *(int64_t *)out = (int64_t)r;
    return 0;
}

static int put_enum(const struct decode_field *f, const char *key, const char *s,
                    const struct json_token *t, char *out, struct decode_error *e)
{
    char name[64];
    if (t->type == JSON_STRING && t->len < sizeof name) {
        size_t n = json_str_decode(s, t, name);
        name[n] = 0;
        for (size_t i = 0; f->names[i]; i++)
            if (strlen(f->names[i]) == n && !strcasecmp(f->names[i], name)) {
                *(int *)out = f->values ? f->values[i] : (int)i;
                return 0;
            }
        return fail(e, 400, "INVALID_REQUEST", key, "unknown %s: %s", key, name);
    }
    if (t->type != JSON_STRING)
        return fail(e, 400, "INVALID_REQUEST", key, "'%s' must be a string", key);
    return fail(e, 400, "INVALID_REQUEST", key, "unknown %s: %.*s...", key, 32, s + t->start);
}

static int put_strbool(const char *key, const char *s, const struct json_token *t,
                       struct decode_arena *ar, char *out, struct decode_error *e)
{
    struct decode_strbool *sb = (struct decode_strbool *)out;
    if (t->type == JSON_TRUE || t->type == JSON_FALSE) {
        sb->kind = t->type == JSON_TRUE ? DECODE_SB_TRUE : DECODE_SB_FALSE;
        return 0;
    }
    if (t->type != JSON_STRING)
        return fail(e, 400, "INVALID_REQUEST", key, "'%s' must be a boolean or a string", key);
    sb->kind = DECODE_SB_TEXT;
    sb->p = take_str(ar, s, t, &sb->len);
    return sb->p ? 0 : oom(e, key);
}

static int too_large(const struct decode_field *f, const char *key, struct decode_error *e,
                     const char *what)
{
    if (f->flags & DECODE_TOO_LARGE_413)
        return fail(e, 413, "PAYLOAD_TOO_LARGE", key, "'%s' has more than %lld %s", key,
                    (long long)f->max, what);
    return fail(e, 400, "INVALID_REQUEST", key, "'%s' has too many %s", key, what);
}

static int put_map(const struct decode_field *f, const char *key, const char *s,
                   const struct json_token *toks, int at, struct decode_arena *ar, char *out,
                   struct decode_error *e)
{
    const struct json_token *t = &toks[at];
    struct decode_map *m = (struct decode_map *)out;
    int env = f->flags & DECODE_ENV;
    if (t->type != JSON_OBJECT)
        return fail(e, 400, "INVALID_REQUEST", key, "'%s' must be an object of strings", key);
    if (f->max > 0 && t->size > (uint64_t)f->max)
        return too_large(f, key, e, env ? "variables" : "entries");
    size_t n = t->size, bytes = 0;
    m->keys = decode_take(ar, (n + 1) * sizeof *m->keys);
    m->vals = decode_take(ar, (n + 1) * sizeof *m->vals);
    m->env = env ? decode_take(ar, (n + 1) * sizeof *m->env) : NULL;
    if (!m->keys || !m->vals || (env && !m->env))
        return oom(e, key);
    const struct json_token *k = &toks[at + 1];
    for (size_t i = 0; i < n; i++, k = &toks[k[1].next]) {   /* key, value, next key */
        size_t klen, vlen;
        char *kk = take_str(ar, s, k, &klen);
        if (!kk)
            return oom(e, key);
        if (strlen(kk) != klen || klen == 0 || (env && strchr(kk, '=')))
            return fail(e, 400, "INVALID_REQUEST", key,
                        env ? "%s keys must be non-empty, without '=' or NUL (got '%.*s')"
                            : "%s keys must be non-empty, without NUL (got '%.*s')",
                        key, SHOW(klen), kk);
        if (k[1].type != JSON_STRING)
            return fail(e, 400, "INVALID_REQUEST", key, "%s value of '%.*s' must be a string",
                        key, SHOW(klen), kk);
        char *vv = take_str(ar, s, &k[1], &vlen);
        if (!vv)
            return oom(e, key);
        if (strlen(vv) != vlen)
            return fail(e, 400, "INVALID_REQUEST", key,
                        "%s value of '%.*s' must not contain NUL", key, SHOW(klen), kk);
        bytes += klen + vlen;
        if (f->max_bytes && bytes > f->max_bytes) {
            if (f->flags & DECODE_TOO_LARGE_413)
                return fail(e, 413, "PAYLOAD_TOO_LARGE", key, "'%s' has more than %zu bytes",
                            key, f->max_bytes);
            return fail(e, 400, "INVALID_REQUEST", key, "'%s' has more than %zu bytes", key,
                        f->max_bytes);
        }
        m->keys[i] = kk;
        m->vals[i] = vv;
        if (env) {
            char *kv = decode_take(ar, klen + vlen + 2);
            if (!kv)
                return oom(e, key);
            memcpy(kv, kk, klen);
            kv[klen] = '=';
            memcpy(kv + klen + 1, vv, vlen + 1);
            m->env[i] = kv;
        }
    }
    m->keys[n] = m->vals[n] = NULL;
    if (env)
        m->env[n] = NULL;
    m->n = n;
    return 0;
}

static int put_strings(const struct decode_field *f, const char *key, const char *s,
                       const struct json_token *toks, int at, struct decode_arena *ar,
                       char *out, struct decode_error *e)
{
    const struct json_token *t = &toks[at];
    struct decode_strings *a = (struct decode_strings *)out;
    if (t->type != JSON_ARRAY)
        return fail(e, 400, "INVALID_REQUEST", key, "'%s' must be an array of strings", key);
    if (f->max > 0 && t->size > (uint64_t)f->max)
        return too_large(f, key, e, "entries");
    a->v = decode_take(ar, ((size_t)t->size + 1) * sizeof *a->v);
    if (!a->v)
        return oom(e, key);
    const struct json_token *el = &toks[at + 1];
    for (uint32_t i = 0; i < t->size; i++) {
        size_t len;
        if (el->type != JSON_STRING)
            return fail(e, 400, "INVALID_REQUEST", key, "'%s' must be an array of strings",
                        key);
        char *v = take_str(ar, s, el, &len);
        if (!v)
            return oom(e, key);
        if (strlen(v) != len)
            return fail(e, 400, "INVALID_REQUEST", key, "'%s' must not contain NUL bytes", key);
        a->v[i] = v;
        el = &toks[el->next];
    }
    a->v[t->size] = NULL;
    a->n = t->size;
    return 0;
}

static int put_scalar(const struct decode_field *f, const char *key, const char *s,
                      const struct json_token *t, struct decode_arena *ar, char *out,
                      struct decode_error *e)
{
    if (t->type == JSON_STRING)
        return put_string(f, key, s, t, ar, out, e);
    if (t->type != JSON_NUMBER)
        return fail(e, 400, "INVALID_REQUEST", key, "'%s' must be a string or a number", key);
    char *v = decode_take(ar, (size_t)t->len + 24);
    if (!v)
        return oom(e, key);
    int64_t n;
    if (json_get_int64(s, t, &n) == 0)
        snprintf(v, (size_t)t->len + 24, "%lld", (long long)n);
    else
        snprintf(v, (size_t)t->len + 24, "%.*s", (int)t->len, s + t->start);
    *(const char **)out = v;
    return 0;
}

/* ---- tables ---- */

static void put_default(const struct decode_field *f, char *out)
{
    switch (f->type) {
    case DECODE_STRING:
    case DECODE_SCALAR: *(const char **)out = f->def_str; break;
    case DECODE_BOOL:
    case DECODE_ENUM: *(int *)out = (int)f->def_int; break;
    case DECODE_INT:
    case DECODE_MILLIS: *(int64_t *)out = f->def_int; break;
    case DECODE_DOUBLE: *(double *)out = f->def_num; break;
    case DECODE_BYTES: memset(out, 0, sizeof(struct decode_bytes)); break;
    case DECODE_STR_OR_BOOL: memset(out, 0, sizeof(struct decode_strbool)); break;
    case DECODE_MAP: memset(out, 0, sizeof(struct decode_map)); break;
    case DECODE_STRINGS: memset(out, 0, sizeof(struct decode_strings)); break;
    case DECODE_OBJECT: break;   /* the sub-table's defaults: see decode_fields */
    }
}

static int decode_fields(const struct decode_table *t, const char *s,
                         const struct json_token *toks, int obj, struct decode_arena *ar,
                         char *out, uint64_t *seen, struct decode_error *e);

/* The value of f in the object, by name then aliases; *key gets the name found. */
static int find_member(const struct decode_field *f, const char *s,
                       const struct json_token *toks, int obj, const char **key)
{
    *key = f->name;
    int i = obj >= 0 ? json_get(s, toks, obj, f->name) : -1;
    for (int k = 0; k < DECODE_ALIASES && f->aliases[k] && (i < 0 || toks[i].type == JSON_NULL);
         k++) {
        i = json_get(s, toks, obj, f->aliases[k]);
        *key = f->aliases[k];
    }
    if (i < 0 || toks[i].type == JSON_NULL) {
        *key = f->name;
        return -1;
    }
    return i;
}

static int decode_one(const struct decode_field *f, const char *s,
                      const struct json_token *toks, int obj, struct decode_arena *ar,
                      char *out, int *present, struct decode_error *e)
{
    const char *key;
    int i = find_member(f, s, toks, obj, &key);
    const struct json_token *t = i >= 0 ? &toks[i] : NULL;
    char *dst = out + f->off;
    *present = 0;
    if (f->type == DECODE_OBJECT) {
        if (t && t->type != JSON_OBJECT)
            return fail(e, 400, "INVALID_REQUEST", key, "'%s' must be an object", key);
        if (!t && (f->flags & DECODE_REQUIRED))
            return fail(e, 400, "MISSING_PARAMETER", key, "'%s' is required", key);
        *present = t != NULL;
        /* absent: the sub-table's defaults all the same (obj -1 finds nothing) */
        return decode_fields(f->sub, s, toks, t ? i : -1, ar, dst, NULL, e);
    }
    if (t && f->type == DECODE_STRING && (f->flags & DECODE_EMPTY_IS_ABSENT) &&
        t->type == JSON_STRING && t->len == 0)
        t = NULL;
    if (!t) {
        if (f->flags & DECODE_REQUIRED)
            return fail(e, 400, "MISSING_PARAMETER", key, "'%s' is required", key);
        put_default(f, dst);
        return 0;
    }
    *present = 1;
    switch (f->type) {
    case DECODE_STRING: return put_string(f, key, s, t, ar, dst, e);
    case DECODE_BYTES: return put_bytes(key, s, t, ar, dst, e);
    case DECODE_BOOL:
        if (t->type != JSON_TRUE && t->type != JSON_FALSE)
            return fail(e, 400, "INVALID_REQUEST", key, "'%s' must be a boolean", key);
        *(int *)dst = t->type == JSON_TRUE;
        return 0;
    case DECODE_INT: return put_int(f, key, s, t, dst, e);
    case DECODE_DOUBLE: return put_double(f, key, s, t, dst, e);
    case DECODE_MILLIS: return put_millis(f, key, s, t, dst, e);
    case DECODE_ENUM: return put_enum(f, key, s, t, dst, e);
    case DECODE_STR_OR_BOOL: return put_strbool(key, s, t, ar, dst, e);
    case DECODE_MAP: return put_map(f, key, s, toks, i, ar, dst, e);
    case DECODE_STRINGS: return put_strings(f, key, s, toks, i, ar, dst, e);
    case DECODE_SCALAR: return put_scalar(f, key, s, t, ar, dst, e);
    case DECODE_OBJECT: break;
    }
    return fail(e, 500, "INTERNAL_ERROR", key, "field '%s' has no decoder", key);
}

static int decode_fields(const struct decode_table *t, const char *s,
                         const struct json_token *toks, int obj, struct decode_arena *ar,
                         char *out, uint64_t *seen, struct decode_error *e)
{
    if (seen)
        *seen = 0;
    for (size_t k = 0; k < t->n && k < DECODE_FIELDS; k++) {
        int present;
        if (decode_one(&t->fields[k], s, toks, obj, ar, out, &present, e) < 0)
            return -1;
        if (present && seen)
            *seen |= (uint64_t)1 << k;
    }
    return 0;
}

int decode_object(const struct decode_table *t, const char *s, const struct json_token *toks,
                  int obj, struct decode_arena *ar, void *out, uint64_t *seen,
                  struct decode_error *err)
{
    if (obj < 0 || toks[obj].type != JSON_OBJECT)
        return fail(err, 400, "INVALID_REQUEST", NULL, "request body must be a JSON object");
    return decode_fields(t, s, toks, obj, ar, out, seen, err);
}

int decode_body(const struct decode_table *t, const char *body, size_t len, uint32_t max_toks,
                uint32_t max_depth, struct decode_arena *ar, void *out, uint64_t *seen,
                struct decode_error *err)
{
    static const char empty[] = "{}";
    const char *s = len ? body : empty;
    size_t n = len ? len : 2;
    /* every value takes at least one byte of input, so n + 1 tokens never run out before
     * the text does */
    size_t max = n + 1 < max_toks ? n + 1 : max_toks;
    struct json_token *toks = malloc(max * sizeof *toks);
    if (!toks)
        return fail(err, 500, "INTERNAL_ERROR", NULL, "out of memory");
    uint32_t at = 0;
    int r = json_parse_at(s, n, toks, (uint32_t)max, max_depth, &at);
    if (r == JSON_ERR_DEPTH)
        r = fail(err, 400, "INVALID_JSON", NULL, "request body nests too deeply (at byte %u)",
                 at);
    else if (r == JSON_ERR_TOKENS)
        r = fail(err, 413, "PAYLOAD_TOO_LARGE", NULL, "request body has too many values");
    else if (r < 0)
        r = fail(err, 400, "INVALID_JSON", NULL, "request body is not valid JSON (at byte %u)",
                 at);
    else
        r = decode_object(t, s, toks, 0, ar, out, seen, err);
    free(toks);
    return r;
}
