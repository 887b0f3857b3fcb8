/* libFuzzer target: decode.c over a table with every field type (aliases, bounds, a nested
 * object). Whatever the body, the answer is 0 or a 400/413 naming a field or the body, the
 * arena DECODE_ARENA_FOR promises is never outgrown (no 500), and what was decoded keeps
 * the table's promises: NUL-free strings, environment keys without '=', counts and bounds
 * within limits, milliseconds in range. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "decode.h"
#include "limits.h"

#define REQUIRE(c) do { if (!(c)) abort(); } while (0)

struct sub {
    int64_t pids;
    double cpu;
};

struct req {
    const char *command;
    struct decode_bytes code;
    int flag;
    int64_t count;
    double ratio;
    int64_t ms;
    int mode;
    struct decode_strbool in;
    struct decode_map env;
    struct decode_map headers;
    struct decode_strings args;
    struct sub sub;
    const char *sig;
};

static const char *const modes[] = { "a", "b", "Long-Name", NULL };

#define S(x) offsetof(struct sub, x)
static const struct decode_field sub_fields[] = {
    { "pids", .type = DECODE_INT, .off = S(pids), .min = 1, .max = 100, .def_int = 5 },
    { "cpu", { "cpuPercent" }, .type = DECODE_DOUBLE, .off = S(cpu), .dmin = 1, .dmax = 800 },
};
static const struct decode_table sub_table = DECODE_TABLE(sub_fields);

#define F(x) offsetof(struct req, x)
static const struct decode_field fields[] = {
    { "command", { "cmd", "c" }, .type = DECODE_STRING, .off = F(command), .max = 64,
      .flags = DECODE_EMPTY_IS_ABSENT },
    { "code", .type = DECODE_BYTES, .off = F(code) },
    { "flag", .type = DECODE_BOOL, .off = F(flag), .def_int = -1 },
    { "count", .type = DECODE_INT, .off = F(count), .min = -3, .max = 3 },
    { "ratio", .type = DECODE_DOUBLE, .off = F(ratio) },
    { "timeout", .type = DECODE_MILLIS, .off = F(ms), .dmin = 0, .dmax = 604800 },
    { "mode", .type = DECODE_ENUM, .off = F(mode), .names = modes },
    { "stdin", .type = DECODE_STR_OR_BOOL, .off = F(in) },
    { "env", .type = DECODE_MAP, .off = F(env), .flags = DECODE_ENV, .max = 8,
      .max_bytes = 256 },
    { "headers", .type = DECODE_MAP, .off = F(headers), .flags = DECODE_TOO_LARGE_413,
      .max = 4 },
    { "args", .type = DECODE_STRINGS, .off = F(args), .max = 16 },
    { "limits", .type = DECODE_OBJECT, .off = F(sub), .sub = &sub_table },
    { "signal", .type = DECODE_SCALAR, .off = F(sig) },
};
static const struct decode_table table = DECODE_TABLE(fields);

static void check_map(const struct decode_map *m, size_t max, int env)
{
    REQUIRE(m->n <= max);
    for (size_t i = 0; i < m->n; i++) {
        REQUIRE(*m->keys[i] && m->vals[i]);
        if (env) {
            REQUIRE(!strchr(m->keys[i], '='));
            size_t k = strlen(m->keys[i]);
            REQUIRE(!strncmp(m->env[i], m->keys[i], k) && m->env[i][k] == '=' &&
                    !strcmp(m->env[i] + k + 1, m->vals[i]));
        }
    }
    REQUIRE(!env || !m->env || m->env[m->n] == NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    struct decode_arena ar;
    struct decode_error e;
    struct req r;
    uint64_t seen;
    REQUIRE(decode_arena_open(&ar, DECODE_ARENA_FOR(len)) == 0);
    int rc = decode_body(&table, (const char *)data, len, LIMIT_JSON_TOKENS, LIMIT_JSON_DEPTH,
                         &ar, &r, &seen, &e);
    if (rc < 0) {
        REQUIRE(e.status == 400 || e.status == 413);
        REQUIRE(e.code && e.msg[0] && strlen(e.msg) < sizeof e.msg);
    } else {
        REQUIRE(!r.command || (*r.command && strlen(r.command) <= 64));
        REQUIRE(r.flag >= -1 && r.flag <= 1 && r.count >= -3 && r.count <= 3);
        REQUIRE(r.ratio >= 0 && r.ms >= 0 && r.ms <= 604800000LL);
        REQUIRE(r.mode >= 0 && r.mode <= 2);
        REQUIRE(r.sub.pids >= 1 && r.sub.pids <= 100);
        REQUIRE(r.sub.cpu == 0 || (r.sub.cpu >= 1 && r.sub.cpu <= 800));
        REQUIRE(r.in.kind != DECODE_SB_TEXT || r.in.p);
        check_map(&r.env, 8, 1);
        check_map(&r.headers, 4, 0);
        REQUIRE(r.args.n <= 16 && (!r.args.v || r.args.v[r.args.n] == NULL));
        for (size_t i = 0; i < r.args.n; i++)
            REQUIRE(strlen(r.args.v[i]) < len + 1);
        REQUIRE(!r.sig || strlen(r.sig) <= len + 24);
    }
    REQUIRE(ar.used <= ar.cap);
    decode_arena_close(&ar);
    return 0;
}
