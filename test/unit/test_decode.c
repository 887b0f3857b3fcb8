/* decode.c by tables: one request shape holding every field type, then cases of body ->
 * (status, code, field, message words) or decoded values. Run under ASan by make test. */
#include "decode.h"

#include <math.h>
#include <stddef.h>

#include "unit.h"

struct limits {
    int64_t memory_bytes;
    int64_t pids;
    double cpu_percent;
};

struct req {
    const char *command;
    const char *cwd;
    struct decode_bytes code;
    int wait;
    int64_t count;
    double ratio;
    int64_t timeout_ms;
    int stream;
    struct decode_strbool stdin_;
    struct decode_map env;
    struct decode_map headers;
    struct decode_strings args;
    struct limits limits;
    const char *lang;
    const char *sig;
};

static const char *const streams[] = { "stdout", "stderr", "out", "err", NULL };
static const int stream_values[] = { 1, 2, 1, 2 };

#define L(x) offsetof(struct limits, x)
static const struct decode_field limit_fields[] = {
    { "memory_bytes", { "memoryBytes" }, .type = DECODE_INT, .off = L(memory_bytes),
      .min = 1 << 20, .max = (int64_t)1 << 40, .def_int = -1 },
    { "pids", .type = DECODE_INT, .off = L(pids), .min = 1, .max = 4096, .def_int = 64 },
    { "cpu_percent", .type = DECODE_DOUBLE, .off = L(cpu_percent), .dmin = 1, .dmax = 800,
      .def_num = 100 },
};
static const struct decode_table limit_table = DECODE_TABLE(limit_fields);

#define F(x) offsetof(struct req, x)
static const struct decode_field fields[] = {
    { "command", .type = DECODE_STRING, .off = F(command),
      .flags = DECODE_REQUIRED | DECODE_EMPTY_IS_ABSENT, .max = 32 },
    { "working_dir", { "workdir", "cwd", "workingDir" }, .type = DECODE_STRING, .off = F(cwd) },
    { "code", .type = DECODE_BYTES, .off = F(code) },
    { "wait", .type = DECODE_BOOL, .off = F(wait), .def_int = -1 },
    { "count", .type = DECODE_INT, .off = F(count), .min = -5, .max = 5, .def_int = 3 },
    { "ratio", .type = DECODE_DOUBLE, .off = F(ratio), .dmin = 0.5, .dmax = 2, .def_num = 1 },
    { "timeout", .type = DECODE_MILLIS, .off = F(timeout_ms), .dmin = 0, .dmax = 604800,
      .def_int = 30000 },
    { "stream", .type = DECODE_ENUM, .off = F(stream), .names = streams,
      .values = stream_values, .def_int = 1 },
    { "stdin", .type = DECODE_STR_OR_BOOL, .off = F(stdin_) },
    { "env", .type = DECODE_MAP, .off = F(env), .flags = DECODE_ENV, .max = 3, .max_bytes = 20 },
    { "callback_headers", { "callbackHeaders" }, .type = DECODE_MAP, .off = F(headers),
      .flags = DECODE_TOO_LARGE_413, .max = 2 },
    { "args", .type = DECODE_STRINGS, .off = F(args), .max = 3 },
    { "limits", .type = DECODE_OBJECT, .off = F(limits), .sub = &limit_table },
    { "language", .type = DECODE_STRING, .off = F(lang), .def_str = "python",
      .flags = DECODE_EMPTY_IS_ABSENT },
    { "signal", .type = DECODE_SCALAR, .off = F(sig), .def_str = "TERM" },
};
static const struct decode_table table = DECODE_TABLE(fields);

/* A refused body: what the answer must say. */
struct bad {
    const char *body;
    int status;
    const char *code;
    const char *field;   /* NULL: not about a field */
    const char *words;   /* must appear in the message */
};

static const struct bad bads[] = {
    { "{}", 400, "MISSING_PARAMETER", "command", "'command' is required" },
    { "{\"command\":null}", 400, "MISSING_PARAMETER", "command", "'command' is required" },
    { "{\"command\":\"\"}", 400, "MISSING_PARAMETER", "command", "required" },
    { "{\"command\":1}", 400, "INVALID_REQUEST", "command", "'command' must be a string" },
    { "{\"command\":\"a\\u0000b\"}", 400, "INVALID_REQUEST", "command", "NUL" },
    { "{\"command\":\"0123456789012345678901234567890123\"}", 400, "INVALID_REQUEST", "command",
      "longer than 32" },
    { "{\"command\":\"x\",\"cwd\":[]}", 400, "INVALID_REQUEST", "cwd", "'cwd' must be a string" },
    { "{\"command\":\"x\",\"code\":5}", 400, "INVALID_REQUEST", "code", "must be a string" },
    { "{\"command\":\"x\",\"wait\":\"yes\"}", 400, "INVALID_REQUEST", "wait", "boolean" },
    { "{\"command\":\"x\",\"count\":6}", 400, "INVALID_REQUEST", "count", "between -5 and 5" },
    { "{\"command\":\"x\",\"count\":-6}", 400, "INVALID_REQUEST", "count", "between -5 and 5" },
    { "{\"command\":\"x\",\"count\":1.5}", 400, "INVALID_REQUEST", "count", "whole number" },
    { "{\"command\":\"x\",\"count\":\"1\"}", 400, "INVALID_REQUEST", "count", "whole number" },
    { "{\"command\":\"x\",\"ratio\":0.25}", 400, "INVALID_REQUEST", "ratio", "between 0.5 and 2" },
    { "{\"command\":\"x\",\"ratio\":true}", 400, "INVALID_REQUEST", "ratio", "must be a number" },
    { "{\"command\":\"x\",\"timeout\":-1}", 400, "INVALID_REQUEST", "timeout",
      "between 0 and 604800 seconds" },
    { "{\"command\":\"x\",\"timeout\":604801}", 400, "INVALID_REQUEST", "timeout", "604800" },
    { "{\"command\":\"x\",\"timeout\":0.0001}", 400, "INVALID_REQUEST", "timeout",
      "milliseconds" },
    { "{\"command\":\"x\",\"timeout\":1.2345}", 400, "INVALID_REQUEST", "timeout", "3 decimals" },
    { "{\"command\":\"x\",\"timeout\":\"5\"}", 400, "INVALID_REQUEST", "timeout",
      "must be a number of seconds" },
    { "{\"command\":\"x\",\"stream\":\"both\"}", 400, "INVALID_REQUEST", "stream",
      "unknown stream: both" },
    { "{\"command\":\"x\",\"stream\":2}", 400, "INVALID_REQUEST", "stream", "must be a string" },
    { "{\"command\":\"x\",\"stdin\":1}", 400, "INVALID_REQUEST", "stdin",
      "a boolean or a string" },
    { "{\"command\":\"x\",\"env\":[]}", 400, "INVALID_REQUEST", "env", "object of strings" },
    { "{\"command\":\"x\",\"env\":{\"A=B\":\"1\"}}", 400, "INVALID_REQUEST", "env",
      "without '='" },
    { "{\"command\":\"x\",\"env\":{\"\":\"1\"}}", 400, "INVALID_REQUEST", "env", "non-empty" },
    { "{\"command\":\"x\",\"env\":{\"A\":1}}", 400, "INVALID_REQUEST", "env",
      "env value of 'A' must be a string" },
    { "{\"command\":\"x\",\"env\":{\"A\":\"\\u0000\"}}", 400, "INVALID_REQUEST", "env", "NUL" },
    { "{\"command\":\"x\",\"env\":{\"A\":\"1\",\"B\":\"2\",\"C\":\"3\",\"D\":\"4\"}}", 400,
      "INVALID_REQUEST", "env", "too many variables" },
    { "{\"command\":\"x\",\"env\":{\"A\":\"0123456789\",\"B\":\"0123456789\"}}", 400,
      "INVALID_REQUEST", "env", "more than 20 bytes" },
    { "{\"command\":\"x\",\"callbackHeaders\":{\"a\":\"1\",\"b\":\"2\",\"c\":\"3\"}}", 413,
      "PAYLOAD_TOO_LARGE", "callbackHeaders", "more than 2 entries" },
    { "{\"command\":\"x\",\"args\":\"a b\"}", 400, "INVALID_REQUEST", "args",
      "array of strings" },
    { "{\"command\":\"x\",\"args\":[\"a\",1]}", 400, "INVALID_REQUEST", "args",
      "array of strings" },
    { "{\"command\":\"x\",\"args\":[\"a\",\"b\",\"c\",\"d\"]}", 400, "INVALID_REQUEST", "args",
      "too many entries" },
    { "{\"command\":\"x\",\"args\":[\"\\u0000\"]}", 400, "INVALID_REQUEST", "args", "NUL" },
    { "{\"command\":\"x\",\"limits\":5}", 400, "INVALID_REQUEST", "limits", "must be an object" },
    { "{\"command\":\"x\",\"limits\":{\"pids\":0}}", 400, "INVALID_REQUEST", "pids",
      "'pids' must be between 1 and 4096" },
    { "{\"command\":\"x\",\"limits\":{\"memoryBytes\":1}}", 400, "INVALID_REQUEST",
      "memoryBytes", "'memoryBytes' must be between" },
    { "{\"command\":\"x\",\"limits\":{\"cpu_percent\":900}}", 400, "INVALID_REQUEST",
      "cpu_percent", "between 1 and 800" },
    { "{\"command\":\"x\",\"language\":7}", 400, "INVALID_REQUEST", "language", "string" },
    { "{\"command\":\"x\",\"signal\":[9]}", 400, "INVALID_REQUEST", "signal",
      "a string or a number" },
    /* the body itself */
    { "[]", 400, "INVALID_REQUEST", NULL, "must be a JSON object" },
    { "\"x\"", 400, "INVALID_REQUEST", NULL, "must be a JSON object" },
    { "{\"command\":\"x\",}", 400, "INVALID_JSON", NULL, "at byte 15" },
    { "{\"command\" \"x\"}", 400, "INVALID_JSON", NULL, "at byte 11" },
    { "{\"command\":\"x\"} x", 400, "INVALID_JSON", NULL, "at byte 16" },
    { "{\"command\":\"x\"", 400, "INVALID_JSON", NULL, "at byte 14" },
    { "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[", 400,
      "INVALID_JSON", NULL, "nests too deeply" },
};

static void check_bad(void)
{
    for (size_t i = 0; i < sizeof bads / sizeof bads[0]; i++) {
        const struct bad *b = &bads[i];
        struct decode_arena ar;
        struct decode_error e = { 0 };
        struct req r;
        CHECK(decode_arena_open(&ar, 4096) == 0, "arena");
        int rc = decode_body(&table, b->body, strlen(b->body), 4096, 32, &ar, &r, NULL, &e);
        CHECK(rc == -1, "%s: decoded", b->body);
        CHECK(e.status == b->status, "%s: status %d", b->body, e.status);
        CHECK(e.code && !strcmp(e.code, b->code), "%s: code %s", b->body, e.code);
        CHECK(b->field ? e.field && !strcmp(e.field, b->field) : !e.field, "%s: field %s",
              b->body, e.field ? e.field : "(none)");
        CHECK(strstr(e.msg, b->words) != NULL, "%s: message '%s' lacks '%s'", b->body, e.msg,
              b->words);
        CHECK(!strstr(e.msg, "not found"), "%s: 'not found' is the SDK's FileNotFoundError",
              b->body);
        decode_arena_close(&ar);
    }
}

/* Accepted bodies and what they decode to. */
static void check_good(void)
{
    struct decode_arena ar;
    struct decode_error e = { 0 };
    struct req r;
    uint64_t seen;
    const char *body;

    /* defaults everywhere */
    CHECK(decode_arena_open(&ar, 4096) == 0, "arena");
    body = "{\"command\":\"ls -l\",\"unknown\":[1,{\"x\":2}]}";
    CHECK(decode_body(&table, body, strlen(body), 4096, 32, &ar, &r, &seen, &e) == 0, "%s",
          e.msg);
    CHECK(!strcmp(r.command, "ls -l"), "command");
    CHECK(r.cwd == NULL && r.code.p == NULL && r.wait == -1 && r.count == 3, "defaults");
    CHECK(r.ratio == 1 && r.timeout_ms == 30000 && r.stream == 1, "defaults");
    CHECK(r.stdin_.kind == DECODE_SB_ABSENT && r.env.n == 0 && r.env.env == NULL, "defaults");
    CHECK(r.args.n == 0 && r.args.v == NULL, "defaults");
    CHECK(r.limits.memory_bytes == -1 && r.limits.pids == 64 && r.limits.cpu_percent == 100,
          "nested defaults when absent");
    CHECK(!strcmp(r.lang, "python") && !strcmp(r.sig, "TERM"), "def_str");
    CHECK(seen == 1, "seen: only command (%llx)", (unsigned long long)seen);
    decode_arena_close(&ar);

    /* every field given */
    CHECK(decode_arena_open(&ar, 200000) == 0, "arena (malloc'd: over the static block)");
    body = "{\"command\":\"c\",\"cwd\":\"/c\",\"workdir\":\"/w\",\"code\":\"a\\u0000b\","
           "\"wait\":false,\"count\":-5e0,\"ratio\":2,\"timeout\":1.5,\"stream\":\"ERR\","
           "\"stdin\":\"hi\\n\",\"env\":{\"A\":\"1\",\"B\":\"x=y\"},"
           "\"callback_headers\":{\"X-K\":\"v\"},\"args\":[\"-l\",\"\"],"
           "\"limits\":{\"memoryBytes\":1048576,\"pids\":10,\"cpu_percent\":12.5},"
           "\"language\":\"\"}";
    CHECK(decode_body(&table, body, strlen(body), 4096, 32, &ar, &r, &seen, &e) == 0, "%s",
          e.msg);
    CHECK(!strcmp(r.cwd, "/w"), "alias order: workdir before cwd (got %s)", r.cwd);
    CHECK(r.code.len == 3 && !memcmp(r.code.p, "a\0b", 4), "bytes keep NULs");
    CHECK(r.wait == 0 && r.count == -5 && r.ratio == 2, "bool, int, double");
    CHECK(r.timeout_ms == 1500, "millis %lld", (long long)r.timeout_ms);
    CHECK(r.stream == 2, "enum case-insensitive, mapped value");
    CHECK(r.stdin_.kind == DECODE_SB_TEXT && r.stdin_.len == 3 && !strcmp(r.stdin_.p, "hi\n"),
          "strbool text");
    CHECK(r.env.n == 2 && !strcmp(r.env.env[0], "A=1") && !strcmp(r.env.env[1], "B=x=y") &&
              r.env.env[2] == NULL, "env joined");
    CHECK(!strcmp(r.env.keys[1], "B") && !strcmp(r.env.vals[1], "x=y"), "env pairs");
    CHECK(r.headers.n == 1 && r.headers.env == NULL && !strcmp(r.headers.keys[0], "X-K"),
          "map without DECODE_ENV");
    CHECK(r.args.n == 2 && !strcmp(r.args.v[0], "-l") && !strcmp(r.args.v[1], "") &&
              r.args.v[2] == NULL, "strings");
    CHECK(r.limits.memory_bytes == 1048576 && r.limits.pids == 10 &&
              r.limits.cpu_percent == 12.5, "nested");
    CHECK(!strcmp(r.lang, "python"), "empty string is absent");
    CHECK(seen == ((1ull << 13) - 1), "seen: all but language (%llx)", (unsigned long long)seen);
    decode_arena_close(&ar);

    /* values at the edges, and null as absent */
    const char *scalars[][2] = { { "\"USR1\"", "USR1" }, { "9", "9" }, { "1.5e1", "15" },
                                 { "-2", "-2" }, { "1.5", "1.5" }, { "1e400", "1e400" } };
    for (size_t i = 0; i < sizeof scalars / sizeof scalars[0]; i++) {
        char json[64];
        snprintf(json, sizeof json, "{\"command\":\"c\",\"signal\":%s}", scalars[i][0]);
        CHECK(decode_arena_open(&ar, 4096) == 0, "arena");
        CHECK(decode_body(&table, json, strlen(json), 4096, 32, &ar, &r, NULL, &e) == 0, "%s",
              json);
        CHECK(!strcmp(r.sig, scalars[i][1]), "%s: got %s", json, r.sig);
        decode_arena_close(&ar);
    }

    struct { const char *body; int64_t ms; int wait; int sb; } edges[] = {
        { "{\"command\":\"c\",\"timeout\":0}", 0, -1, DECODE_SB_ABSENT },
        { "{\"command\":\"c\",\"timeout\":0.001,\"stdin\":true}", 1, -1, DECODE_SB_TRUE },
        { "{\"command\":\"c\",\"timeout\":1.234,\"stdin\":false}", 1234, -1, DECODE_SB_FALSE },
        { "{\"command\":\"c\",\"timeout\":604800,\"wait\":true}", 604800000, 1, 0 },
        { "{\"command\":\"c\",\"timeout\":null,\"wait\":null,\"stdin\":null}", 30000, -1, 0 },
        { "{\"command\":\"c\",\"timeout\":2.5e-1}", 250, -1, 0 },
    };
    for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++) {
        CHECK(decode_arena_open(&ar, 4096) == 0, "arena");
        body = edges[i].body;
        CHECK(decode_body(&table, body, strlen(body), 4096, 32, &ar, &r, NULL, &e) == 0,
              "%s: %s", body, e.msg);
        CHECK(r.timeout_ms == edges[i].ms, "%s: %lld ms", body, (long long)r.timeout_ms);
        CHECK(r.wait == edges[i].wait, "%s: wait %d", body, r.wait);
        CHECK((int)r.stdin_.kind == edges[i].sb, "%s: stdin %d", body, r.stdin_.kind);
        decode_arena_close(&ar);
    }

    /* an empty body is {} (here: command missing) */
    CHECK(decode_arena_open(&ar, 4096) == 0, "arena");
    CHECK(decode_body(&table, "", 0, 4096, 32, &ar, &r, NULL, &e) == -1 &&
              e.status == 400 && !strcmp(e.code, "MISSING_PARAMETER"), "empty body");
    decode_arena_close(&ar);
}

/* A full arena answers 500 naming the field, never writes past its end (ASan). */
static void check_arena(void)
{
    const char *body = "{\"command\":\"c\",\"args\":[\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"]}";
    for (size_t cap = 0; cap < 128; cap++) {
        struct decode_arena ar;
        struct decode_error e = { 0 };
        struct req r;
        CHECK(decode_arena_open(&ar, cap) == 0, "arena %zu", cap);
        int rc = decode_body(&table, body, strlen(body), 4096, 32, &ar, &r, NULL, &e);
        CHECK(rc == 0 || (e.status == 500 && !strcmp(e.code, "INTERNAL_ERROR")),
              "cap %zu: %d %s", cap, e.status, e.msg);
        CHECK(ar.used <= ar.cap, "cap %zu: used %zu", cap, ar.used);
        decode_arena_close(&ar);
    }
    /* DECODE_ARENA_FOR suffices for the densest bodies: maps of empty or one-letter pairs,
     * arrays of empty strings, a long number read as text */
    static char big[70000];
    const char *shapes[] = { "{\"command\":\"c\",\"callback_headers\":{",
                             "{\"command\":\"c\",\"env\":{", "{\"command\":\"c\",\"args\":[" };
    struct decode_field dense[] = {
        { "command", .type = DECODE_STRING, .off = F(command) },
        { "callback_headers", .type = DECODE_MAP, .off = F(headers) },
        { "env", .type = DECODE_MAP, .off = F(env), .flags = DECODE_ENV },
        { "args", .type = DECODE_STRINGS, .off = F(args) },
        { "signal", .type = DECODE_SCALAR, .off = F(sig) },
    };
    struct decode_table dense_table = DECODE_TABLE(dense);
    for (size_t k = 0; k < 4; k++) {
        size_t n = 0, entries = 0;
        if (k < 3) {
            n = (size_t)snprintf(big, sizeof big, "%s", shapes[k]);
            for (; n < sizeof big - 16; entries++)
                n += (size_t)snprintf(big + n, sizeof big - n, "%s%s", entries ? "," : "",
                                      k < 2 ? "\"a\":\"\"" : "\"\"");
            n += (size_t)snprintf(big + n, sizeof big - n, "%s}", k == 2 ? "]" : "}");
        } else {
            n = (size_t)snprintf(big, sizeof big, "{\"command\":\"c\",\"signal\":1");
            memset(big + n, '0', 1000);
            n += 1000;
            n += (size_t)snprintf(big + n, sizeof big - n, "e-1000}");
        }
        struct decode_arena ar;
        struct decode_error e = { 0 };
        struct req r;
        CHECK(decode_arena_open(&ar, DECODE_ARENA_FOR(n)) == 0, "arena");
        int rc = decode_body(&dense_table, big, n, 1u << 20, 32, &ar, &r, NULL, &e);
        CHECK(rc == 0, "shape %zu (%zu entries, %zu bytes): %s", k, entries, n, e.msg);
        decode_arena_close(&ar);
    }

    /* two arenas at once: the second is malloc'd, not the busy static block */
    struct decode_arena a1, a2;
    CHECK(decode_arena_open(&a1, 128) == 0 && decode_arena_open(&a2, 128) == 0, "two arenas");
    CHECK(a1.is_static && !a2.is_static, "second one not static");
    char *p1 = decode_take(&a1, 128), *p2 = decode_take(&a2, 128);
    CHECK(p1 && p2 && p1 != p2, "distinct");
    memset(p1, 1, 128);
    memset(p2, 2, 128);
    CHECK(decode_take(&a1, 1) == NULL, "full");
    decode_arena_close(&a2);
    decode_arena_close(&a1);
}

int main(void)
{
    check_bad();
    check_good();
    check_arena();
    return unit_report("decode");
}
