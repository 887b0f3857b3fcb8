/* libFuzzer target: the WebSocket frame parser (ws.c) and the upgrade check. The first
 * input byte picks a split point and max_message; the rest is client bytes, parsed whole and
 * in two pieces: both runs must give the same events and the same error (the parser is
 * restartable). Also checked: counts within the input, event views inside the buffer or the
 * parser, pieces of a message never past max_message in sum. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ws.h"

#define REQUIRE(c) do { if (!(c)) abort(); } while (0)

/* A digest of everything the parser reported, to compare runs. */
struct trace {
    uint64_t hash;
    uint64_t events;
    uint64_t msg;      /* bytes of the current data message */
    int err;
};

static void mix(struct trace *t, uint64_t v)
{
    t->hash = (t->hash ^ v) * 0x100000001b3ull;
}

static int feed(struct ws_parser *p, uint8_t *buf, size_t n, struct trace *t)
{
    size_t pos = 0;
    for (;;) {
        struct ws_event ev;
        ssize_t k = ws_parse(p, buf + pos, n - pos, &ev);
        if (k < 0) {
            REQUIRE(k == -1002 || k == -1007 || k == -1009);
            t->err = (int)k;
            return -1;
        }
        REQUIRE((size_t)k <= n - pos);
        pos += (size_t)k;
        if (ev.type == WS_EV_NONE) {
            REQUIRE(pos == n);
            return 0;
        }
        const uint8_t *d = ev.data;
        REQUIRE(ev.len == 0 || (d >= buf && d + ev.len <= buf + n) ||
                (d >= (const uint8_t *)p && d + ev.len <= (const uint8_t *)(p + 1)));
        for (size_t i = 0; i < ev.len; i++)
            mix(t, d[i]);
        if (ev.type == WS_EV_DATA) {
            t->msg += ev.len;
            REQUIRE(t->msg <= p->max_message);
            if (ev.last) {
                mix(t, 0xfffff0u | (uint64_t)ev.opcode);   /* message boundary, whatever the piece sizes */
                t->msg = 0;
            }
        } else {
            t->events++;
            mix(t, (uint64_t)ev.type << 32);
            REQUIRE(ev.type != WS_EV_CLOSE || ev.close_code >= 1000);
            mix(t, (uint64_t)ev.close_code);
        }
    }
}

static void run(const uint8_t *in, size_t n, size_t cut, uint64_t max, struct trace *t)
{
    struct ws_parser p = { .max_message = max };
    memset(t, 0, sizeof *t);
    t->hash = 0xcbf29ce484222325ull;
    uint8_t *a = malloc(cut ? cut : 1), *b = malloc(n - cut ? n - cut : 1);
    memcpy(a, in, cut);
    memcpy(b, in + cut, n - cut);
    if (feed(&p, a, cut, t) == 0)
        feed(&p, b, n - cut, t);
    free(a);
    free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint64_t max = (uint64_t)1 << (data[0] & 15);
    const uint8_t *in = data + 1;
    size_t n = size - 1;
    size_t cut = n ? (size_t)data[0] * 7919 % (n + 1) : 0;
    struct trace whole, split;
    run(in, n, n, max, &whole);
    run(in, n, cut, max, &split);
    /* data pieces are cut where the input was, so the digest takes their bytes and the
     * message boundaries only: those, the control events and the error must agree */
    REQUIRE(whole.err == split.err);
    REQUIRE(whole.events == split.events);
    REQUIRE(whole.err || whole.hash == split.hash);   /* an error may cut a piece short */
    return 0;
}
