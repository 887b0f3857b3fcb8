/* Unit tests for ws.c: the accept key (RFC 6455's own example), the upgrade checks, and the
 * frame parser as a table of client byte streams and the transcript they must give, each
 * fed whole, split at every offset, and one byte at a time. */
#include "ws.h"
#include "unit.h"

#define MAXIN 4096

static const uint8_t mask_key[4] = { 0x37, 0xfa, 0x21, 0x3d };

/* Appends a client frame: flags byte as given (FIN/RSV/opcode), masked unless nomask. */
static size_t frame(uint8_t *out, uint8_t b0, int nomask, const char *payload, size_t n)
{
    size_t h = 0;
    out[h++] = b0;
    uint8_t m = nomask ? 0 : 0x80;
    if (n < 126) {
        out[h++] = (uint8_t)(m | n);
    } else if (n <= 0xFFFF) {
        out[h++] = m | 126;
        out[h++] = (uint8_t)(n >> 8);
        out[h++] = (uint8_t)n;
    } else {
        out[h++] = m | 127;
        for (int i = 0; i < 8; i++)
            out[h++] = (uint8_t)((uint64_t)n >> (56 - 8 * i));
    }
    if (!nomask) {
        memcpy(out + h, mask_key, 4);
        h += 4;
    }
    for (size_t i = 0; i < n; i++)
        out[h + i] = (uint8_t)payload[i] ^ (nomask ? 0 : mask_key[i & 3]);
    return h + n;
}

/* Transcript of a parse: "T:text|", "B3|", "ping:x|", "pong:|", "close:1000:bye|", "E1002|". */
struct run {
    char out[MAXIN * 2];
    char msg[MAXIN];
    size_t msg_len;
};

static void put(struct run *r, const char *s)
{
    strncat(r->out, s, sizeof r->out - strlen(r->out) - 1);
}

/* One piece of input: every event in it goes to the transcript. Returns -1 after an error. */
static int feed(struct ws_parser *p, uint8_t *in, size_t n, struct run *r)
{
    size_t pos = 0;
    for (;;) {
        struct ws_event ev;
        ssize_t k = ws_parse(p, in + pos, n - pos, &ev);
        char tmp[300];
        if (k < 0) {
            snprintf(tmp, sizeof tmp, "E%d|", (int)-k);
            put(r, tmp);
            return -1;
        }
        pos += (size_t)k;
        if (ev.type == WS_EV_NONE) {
            CHECK(pos == n, "NONE left %zu bytes", n - pos);
            return 0;
        }
        if (ev.type == WS_EV_DATA) {
            if (r->msg_len + ev.len <= sizeof r->msg) {
                memcpy(r->msg + r->msg_len, ev.data, ev.len);
                r->msg_len += ev.len;
            }
            if (!ev.last)
                continue;
            if (ev.opcode == WS_TEXT)
                snprintf(tmp, sizeof tmp, "T:%.*s|", (int)(r->msg_len > 200 ? 200 : r->msg_len), r->msg);
            else
                snprintf(tmp, sizeof tmp, "B%zu|", r->msg_len);
            r->msg_len = 0;
        } else if (ev.type == WS_EV_PING || ev.type == WS_EV_PONG) {
            snprintf(tmp, sizeof tmp, "%s:%.*s|", ev.type == WS_EV_PING ? "ping" : "pong",
                     (int)ev.len, (const char *)ev.data);
        } else {
            snprintf(tmp, sizeof tmp, "close:%d:%.*s|", ev.close_code, (int)ev.len,
                     (const char *)ev.data);
        }
        put(r, tmp);
    }
}

/* Feeds in[0..n) in pieces of `step` bytes, or (step 0) split once at `cut`. Each piece is
 * its own heap copy of exactly its length, so ASan sees any read past it. */
static void parse(const uint8_t *in, size_t n, size_t cut, size_t step, struct run *r)
{
    struct ws_parser p = { .max_message = 1000 };
    memset(r, 0, sizeof *r);
    size_t off = 0;
    while (off < n) {
        size_t end = step ? off + step : off < cut ? cut : n;
        if (end > n)
            end = n;
        uint8_t *piece = malloc(end - off);
        memcpy(piece, in + off, end - off);
        int rc = feed(&p, piece, end - off, r);
        free(piece);
        if (rc < 0)
            return;
        off = end;
    }
}

struct fcase {
    const char *name;
    const char *want;
    size_t (*build)(uint8_t *out);
};

#define F(...) frame(o + n, __VA_ARGS__)
#define S(lit) lit, sizeof(lit) - 1

static size_t b_text(uint8_t *o) { size_t n = 0; n += F(0x81, 0, S("hello")); return n; }
static size_t b_empty(uint8_t *o) { size_t n = 0; n += F(0x81, 0, S("")); n += F(0x82, 0, S("")); return n; }
static size_t b_frag(uint8_t *o)
{
    size_t n = 0;
    n += F(0x01, 0, S("he"));
    n += F(0x89, 0, S("in"));        /* a ping between fragments */
    n += F(0x00, 0, S(""));
    n += F(0x80, 0, S("llo"));
    return n;
}
static size_t b_binary(uint8_t *o)
{
    static char big[300];
    memset(big, 'x', sizeof big);
    size_t n = 0;
    n += F(0x82, 0, big, sizeof big);   /* 16-bit length */
    return n;
}
static size_t b_utf8_split(uint8_t *o)
{
    size_t n = 0;
    n += F(0x01, 0, S("\xe2\x82"));     /* euro sign split across fragments */
    n += F(0x80, 0, S("\xac!"));
    return n;
}
static size_t b_close(uint8_t *o) { size_t n = 0; n += F(0x88, 0, S("\x03\xe8" "bye")); n += F(0x81, 0, S("after")); return n; }
static size_t b_close_empty(uint8_t *o) { size_t n = 0; n += F(0x88, 0, S("")); return n; }
static size_t b_pong(uint8_t *o) { size_t n = 0; n += F(0x8A, 0, S("p")); n += F(0x81, 0, S("x")); return n; }
static size_t b_unmasked(uint8_t *o) { size_t n = 0; n += F(0x81, 1, S("hi")); return n; }
static size_t b_rsv(uint8_t *o) { size_t n = 0; n += F(0xC1, 0, S("hi")); return n; }
static size_t b_opcode(uint8_t *o) { size_t n = 0; n += F(0x83, 0, S("hi")); return n; }
static size_t b_opcode_ctl(uint8_t *o) { size_t n = 0; n += F(0x8B, 0, S("")); return n; }
static size_t b_frag_ping(uint8_t *o) { size_t n = 0; n += F(0x09, 0, S("hi")); return n; }
static size_t b_cont(uint8_t *o) { size_t n = 0; n += F(0x80, 0, S("hi")); return n; }
static size_t b_nested(uint8_t *o) { size_t n = 0; n += F(0x01, 0, S("a")); n += F(0x81, 0, S("b")); return n; }
static size_t b_bad_utf8(uint8_t *o) { size_t n = 0; n += F(0x81, 0, S("ok\xc0\xaf")); return n; }
static size_t b_surrogate(uint8_t *o) { size_t n = 0; n += F(0x81, 0, S("\xed\xa0\x80")); return n; }
static size_t b_trunc_utf8(uint8_t *o) { size_t n = 0; n += F(0x81, 0, S("ab\xe2\x82")); return n; }
static size_t b_bin_not_utf8(uint8_t *o) { size_t n = 0; n += F(0x82, 0, S("\xff\xfe")); return n; }
static size_t b_close_code(uint8_t *o) { size_t n = 0; n += F(0x88, 0, S("\x03\xed")); return n; }   /* 1005 */
static size_t b_close_1(uint8_t *o) { size_t n = 0; n += F(0x88, 0, S("\x03")); return n; }
static size_t b_close_utf8(uint8_t *o) { size_t n = 0; n += F(0x88, 0, S("\x03\xe8\xff")); return n; }
static size_t b_close_4000(uint8_t *o) { size_t n = 0; n += F(0x88, 0, S("\x0f\xa0")); return n; }
static size_t b_ping_big(uint8_t *o)
{
    static char big[126];
    memset(big, 'p', sizeof big);
    size_t n = 0;
    n += F(0x89, 0, big, sizeof big);
    return n;
}
static size_t b_too_big(uint8_t *o)
{
    static char big[1001];
    memset(big, 'x', sizeof big);
    size_t n = 0;
    n += F(0x82, 0, big, sizeof big);
    return n;
}
static size_t b_too_big_frag(uint8_t *o)
{
    static char big[600];
    memset(big, 'x', sizeof big);
    size_t n = 0;
    n += F(0x02, 0, big, sizeof big);
    n += F(0x80, 0, big, sizeof big);
    return n;
}
static size_t b_huge_len(uint8_t *o)
{
    /* 2^40 bytes announced: refused from the header, nothing waits for them */
    uint8_t h[] = { 0x82, 0xFF, 0, 0, 0x01, 0, 0, 0, 0, 0, 1, 2, 3, 4 };
    memcpy(o, h, sizeof h);
    return sizeof h;
}
static size_t b_top_bit(uint8_t *o)
{
    uint8_t h[] = { 0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4 };
    memcpy(o, h, sizeof h);
    return sizeof h;
}
static size_t b_two(uint8_t *o) { size_t n = 0; n += F(0x81, 0, S("one")); n += F(0x81, 0, S("two")); return n; }

static const struct fcase fcases[] = {
    { "text", "T:hello|", b_text },
    { "empty messages", "T:|B0|", b_empty },
    { "fragmented with ping", "ping:in|T:hello|", b_frag },
    { "binary 16-bit length", "B300|", b_binary },
    { "utf8 across fragments", "T:\xe2\x82\xac!|", b_utf8_split },
    { "close then nothing", "close:1000:bye|", b_close },
    { "close without code", "close:1005:|", b_close_empty },
    { "pong", "pong:p|T:x|", b_pong },
    { "two messages", "T:one|T:two|", b_two },
    { "unmasked", "E1002|", b_unmasked },
    { "reserved bits", "E1002|", b_rsv },
    { "unknown data opcode", "E1002|", b_opcode },
    { "unknown control opcode", "E1002|", b_opcode_ctl },
    { "fragmented ping", "E1002|", b_frag_ping },
    { "continuation without start", "E1002|", b_cont },
    { "new message inside fragmented", "E1002|", b_nested },
    { "overlong utf8", "E1007|", b_bad_utf8 },
    { "surrogate", "E1007|", b_surrogate },
    { "truncated utf8 at end", "E1007|", b_trunc_utf8 },
    { "binary needs no utf8", "B2|", b_bin_not_utf8 },
    { "close code 1005", "E1002|", b_close_code },
    { "close 1 byte", "E1002|", b_close_1 },
    { "close reason not utf8", "E1007|", b_close_utf8 },
    { "close 4000", "close:4000:|", b_close_4000 },
    { "ping over 125", "E1002|", b_ping_big },
    { "message too big", "E1009|", b_too_big },
    { "fragments too big", "E1009|", b_too_big_frag },
    { "2^40 length", "E1009|", b_huge_len },
    { "length top bit", "E1002|", b_top_bit },
};

static void test_frames(void)
{
    static uint8_t in[MAXIN];
    for (size_t i = 0; i < sizeof fcases / sizeof fcases[0]; i++) {
        const struct fcase *c = &fcases[i];
        size_t n = c->build(in);
        struct run r;
        parse(in, n, n, 0, &r);
        CHECK(strcmp(r.out, c->want) == 0, "%s: whole gave '%s', want '%s'", c->name, r.out, c->want);
        parse(in, n, 0, 1, &r);
        CHECK(strcmp(r.out, c->want) == 0, "%s: bytewise gave '%s'", c->name, r.out);
        int bad = 0;
        for (size_t cut = 0; cut <= n; cut++) {
            parse(in, n, cut, 0, &r);
            if (strcmp(r.out, c->want) != 0 && !bad++)
                CHECK(0, "%s: split at %zu gave '%s'", c->name, cut, r.out);
        }
        CHECK(!bad, "%s: %d splits differ", c->name, bad);
    }
}

/* A short prefix of a frame is never an error nor an event. */
static void test_incomplete(void)
{
    uint8_t in[64];
    size_t n = frame(in, 0x81, 0, S("hello"));
    for (size_t k = 0; k < n; k++) {
        struct ws_parser p = { .max_message = 100 };
        struct ws_event ev;
        uint8_t copy[64];
        memcpy(copy, in, k);
        ssize_t r = ws_parse(&p, copy, k, &ev);
        int ok = r == (ssize_t)k && (ev.type == WS_EV_NONE || (ev.type == WS_EV_DATA && !ev.last));
        CHECK(ok, "prefix %zu: r=%zd type=%d", k, r, ev.type);
    }
}

static void test_accept(void)
{
    char out[29];
    /* RFC 6455 1.3 */
    CHECK(ws_accept_key(S("dGhlIHNhbXBsZSBub25jZQ=="), out) == 0 &&
          strcmp(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") == 0, "accept %s", out);
    CHECK(ws_accept_key(S("dGhlIHNhbXBsZSBub25jZQ="), out) < 0, "short key");
    CHECK(ws_accept_key(S("dGhlIHNhbXBsZSBub25jZQ!="), out) < 0, "bad padding");
    CHECK(ws_accept_key(S("dGhlIHNhbXBsZSBub25j*Q=="), out) < 0, "bad char");
}

static int upgrade(const char *head)
{
    struct http_request req;
    char accept[29];
    if (http_parse_request(head, strlen(head), &req) < 0)
        return 99;
    return ws_upgrade_check(&req, accept);
}

static void test_upgrade(void)
{
    const char *ok = "GET /x HTTP/1.1\r\nHost: a\r\nUpgrade: WebSocket\r\nConnection: keep-alive, Upgrade\r\n"
                     "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    CHECK(upgrade(ok) == WS_UPGRADE_OK, "ok %d", upgrade(ok));
    CHECK(upgrade("GET /x HTTP/1.1\r\nHost: a\r\n\r\n") == WS_UPGRADE_NONE, "plain");
    CHECK(upgrade("GET /x HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\nConnection: upgrade\r\n\r\n") ==
          WS_UPGRADE_NONE, "h2c");
    CHECK(upgrade("POST /x HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n") ==
          WS_UPGRADE_BAD, "post");
    CHECK(upgrade("GET /x HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n"
                  "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n") ==
          WS_UPGRADE_BAD, "no connection");
    CHECK(upgrade("GET /x HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  "Sec-WebSocket-Version: 8\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n") ==
          WS_UPGRADE_VERSION, "version");
    CHECK(upgrade("GET /x HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: short\r\n\r\n") ==
          WS_UPGRADE_BAD, "key");
}

static void test_writer(void)
{
    static const struct { uint64_t len; size_t hlen; uint8_t b1; } t[] = {
        { 0, 2, 0 }, { 125, 2, 125 }, { 126, 4, 126 }, { 65535, 4, 126 }, { 65536, 10, 127 },
        { 1ull << 40, 10, 127 },
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        uint8_t h[WS_HEADER_MAX];
        size_t n = ws_frame_header(h, WS_TEXT, 1, t[i].len);
        uint64_t got = h[1] < 126 ? h[1] : 0;
        if (h[1] == 126)
            got = (uint64_t)h[2] << 8 | h[3];
        if (h[1] == 127)
            for (int k = 0; k < 8; k++)
                got = got << 8 | h[2 + k];
        CHECK(n == t[i].hlen && h[0] == 0x81 && h[1] == t[i].b1 && got == t[i].len,
              "header for %llu", (unsigned long long)t[i].len);
    }
    uint8_t c[WS_CONTROL_MAX];
    size_t n = ws_close_payload(c, 1009, "too big");
    CHECK(n == 9 && c[0] == 0x03 && c[1] == 0xf1 && memcmp(c + 2, "too big", 7) == 0, "close");
    char longr[300];
    memset(longr, 'r', sizeof longr - 1);
    longr[sizeof longr - 1] = 0;
    CHECK(ws_close_payload(c, 1000, longr) == WS_CONTROL_MAX, "close reason cut");
}

int main(void)
{
    test_accept();
    test_upgrade();
    test_writer();
    test_incomplete();
    test_frames();
    printf("ws: %d passed, %d failed, %d skipped\n", unit_passed, unit_failed, unit_skipped);
    return unit_failed ? 1 : 0;
}
