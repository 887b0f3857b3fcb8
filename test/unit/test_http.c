/* Unit tests for http.c. Tables of input and expected result; every parser input is also
 * fed one byte at a time (each proper prefix must be INCOMPLETE or the same error), the
 * chunked decoder also split at every offset. Then the shared corpus
 * ($SHARED_TESTDATA/http/cases.tsv) is replayed at parser level. */
#include "http.h"
#include "unit.h"

#define S(lit) lit, sizeof(lit) - 1
#define OK 0

/* Every input is parsed from a private heap copy of exactly its length, so ASan flags a
 * read past the end (what picohttpparser's tests get from a guard page). */
static char *copy_of(const char *s, size_t n)
{
    char *p = malloc(n ? n : 1);
    if (!p)
        abort();
    memcpy(p, s, n);
    return p;
}

static const char *code_name(long r)
{
    switch (r) {
    case HTTP_INCOMPLETE: return "INCOMPLETE";
    case HTTP_INVALID: return "INVALID";
    case HTTP_HEADERS_TOO_LARGE: return "HEADERS_TOO_LARGE";
    case HTTP_URI_TOO_LONG: return "URI_TOO_LONG";
    case HTTP_BAD_VERSION: return "BAD_VERSION";
    default: return r >= 0 ? "length" : "?";
    }
}

/* Feeds every proper prefix: a success of n bytes must be INCOMPLETE below n and n from
 * there on; an error must be INCOMPLETE or that same error. Returns the full result. */
static int check_bytewise(const char *in, size_t len, const char *label)
{
    struct http_request req;
    char *p = copy_of(in, len);
    int want = http_parse_request(p, len, &req);
    free(p);
    for (size_t k = 0; k < len; k++) {
        p = copy_of(in, k);
        int r = http_parse_request(p, k, &req);
        free(p);
        int ok = want >= 0 ? r == ((int)k < want ? HTTP_INCOMPLETE : want)
                           : (r == HTTP_INCOMPLETE || r == want);
        if (!ok) {
            CHECK(ok, "%s: prefix %zu gives %s (%d), full input %s (%d)", label, k,
                  code_name(r), r, code_name(want), want);
            return want;
        }
    }
    unit_passed++;
    return want;
}

/* --- http_parse_request ----------------------------------------------------------- */

struct parse_case {
    const char *in;
    size_t len;
    int want;            /* OK or an http_code */
    size_t tail;         /* OK: bytes after the head */
    const char *method, *target;
    int minor;
    const char *fields;  /* OK: "name=value|name=value" */
};

static const struct parse_case parse_cases[] = {
    {S("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), OK, 0, "GET", "/", 1, "Host=a"},
    {S("GET /x?y=1 HTTP/1.0\r\n\r\n"), OK, 0, "GET", "/x?y=1", 0, ""},
    {S("\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"), OK, 0, "GET", "/", 1, "Host=a"},
    {S("POST /p HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"), OK, 3, "POST", "/p", 1, "Content-Length=3"},
    {S("GET / HTTP/1.1\r\nX:  \t v a l \t \r\nY:\r\nZ: \t\r\n\r\n"), OK, 0, "GET", "/", 1, "X=v a l|Y=|Z="},
    {S("GET / HTTP/1.1\r\nX: caf\xc3\xa9 \xff\r\n\r\n"), OK, 0, "GET", "/", 1, "X=caf\xc3\xa9 \xff"},
    {S("GET / HTTP/1.1\r\nx-A_b.c~!#$%&'*+^`|: \"q\"\r\n\r\n"), OK, 0, "GET", "/", 1, "x-A_b.c~!#$%&'*+^`|=\"q\""},
    {S("OPTIONS * HTTP/1.1\r\n\r\n"), OK, 0, "OPTIONS", "*", 1, ""},
    {S("M-SEARCH http://h:1/a?b|c{}^` HTTP/1.1\r\n\r\n"), OK, 0, "M-SEARCH", "http://h:1/a?b|c{}^`", 1, ""},
    {S("get /%20\\ HTTP/1.1\r\n\r\n"), OK, 0, "get", "/%20\\", 1, ""},
    /* incomplete */
    {S(""), HTTP_INCOMPLETE, 0, 0, 0, 0, 0},
    {S("\r\n"), HTTP_INCOMPLETE, 0, 0, 0, 0, 0},
    {S("GET / HTTP/1.1\r\nHost: a\r\n"), HTTP_INCOMPLETE, 0, 0, 0, 0, 0},
    {S("GET / HTTP/1.1\r\nHost: a\r\n\r"), HTTP_INCOMPLETE, 0, 0, 0, 0, 0},
    /* request line (RFC 9112 3, 2.3) */
    {S("GET  / HTTP/1.1\r\n\r\n"), HTTP_INVALID, 0, 0, 0, 0, 0},
    {S("GET\t/ HTTP/1.1\r\n\r\n"), HTTP_INVALID, 0, 0, 0, 0, 0},
    {S(" GET / HTTP/1.1\r\n\r\n"), HTTP_INVALID, 0, 0, 0, 0, 0},
    {S("GE(T / HTTP/1.1\r\n\r\n"), HTTP_INVALID, 0, 0, 0, 0, 0},
    {S("GET / HTTP/1.1 \r\n\r\n"), HTTP_INVALID, 0, 0, 0, 0, 0},
    {S("GET HTTP/1.1\r\n\r\n"), HTTP_INVALID, 0, 0, 0, 0, 0},
    {S("GET /\r\n\r\n"), HTTP_INVALID, 0, 0, 0, 0, 0},
    {S("GET /a b"), HTTP_INVALID, 0, 0, 0, 0, 0},
    {S("GET / http/1.1\r\n\r\n"), HTTP_INVALID, 0, 0, 0, 0, 0},
    {S("GET / HTTP/1\r\n\r\n"), HTTP_INVALID, 0, 0, 0, 0, 0},
    {S("GET / HTTP/01.1\r\n\r\n"), HTTP_INVALID, 0, 0, 0, 0, 0},
    {S("GET / HTTP/ 1.1\r\n\r\n"), HTTP_INVALID, 0, 0, 0, 0, 0},
    {S("GET / HTTP/1.10\r\n\r\n"), HTTP_INVALID, 0, 0, 0, 0, 0},
    {S("GET / ICE/1.0\r\n\r\n"), HTTP_INVALID, 0, 0, 0, 0, 0},
    {S("GET / HTTP/1.1\n\n"), HTTP_INVALID, 0, 0, 0, 0, 0},
    {S("GET / HTTP/1.1\r\r"), HTTP_INVALID, 0, 0, 0, 0, 0},
    {S("\nGET / HTTP/1.1\r\n\r\n"), HTTP_INVALID, 0, 0, 0, 0, 0},
    {S("\r\rGET / HTTP/1.1\r\n\r\n"), HTTP_INVALID, 0, 0, 0, 0, 0},
    {S("GET /\x80 HTTP/1.1\r\n\r\n"), HTTP_INVALID, 0, 0, 0, 0, 0},
    {S("GET /\0 HTTP/1.1\r\n\r\n"), HTTP_INVALID, 0, 0, 0, 0, 0},
    {S("GET /\" HTTP/1.1\r\n\r\n"), HTTP_INVALID, 0, 0, 0, 0, 0},
    {S("GET /#f HTTP/1.1\r\n\r\n"), HTTP_INVALID, 0, 0, 0, 0, 0},
    {S("GET /<> HTTP/1.1\r\n\r\n"), HTTP_INVALID, 0, 0, 0, 0, 0},
    {S("GET / HTTP/1.2\r\n\r\n"), HTTP_BAD_VERSION, 0, 0, 0, 0, 0},
    {S("GET / HTTP/2.0\r\n\r\n"), HTTP_BAD_VERSION, 0, 0, 0, 0, 0},
    {S("GET / HTTP/0.9\r\n\r\n"), HTTP_BAD_VERSION, 0, 0, 0, 0, 0},
    {S("GET / HTTP/5.6"), HTTP_BAD_VERSION, 0, 0, 0, 0, 0},
    {S("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), HTTP_BAD_VERSION, 0, 0, 0, 0, 0},
    /* field lines (RFC 9112 5, RFC 9110 5.5) */
    {S("GET / HTTP/1.1\r\nX : y\r\n\r\n"), HTTP_INVALID, 0, 0, 0, 0, 0},
    {S("GET / HTTP/1.1\r\nX\t: y\r\n\r\n"), HTTP_INVALID, 0, 0, 0, 0, 0},
    {S("GET / HTTP/1.1\r\n: y\r\n\r\n"), HTTP_INVALID, 0, 0, 0, 0, 0},
    {S("GET / HTTP/1.1\r\nX y\r\n\r\n"), HTTP_INVALID, 0, 0, 0, 0, 0},
    {S("GET / HTTP/1.1\r\nX\r\n\r\n"), HTTP_INVALID, 0, 0, 0, 0, 0},
    {S("GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n"), HTTP_INVALID, 0, 0, 0, 0, 0},
    {S("GET / HTTP/1.1\r\n X: a\r\n\r\n"), HTTP_INVALID, 0, 0, 0, 0, 0},
    {S("GET / HTTP/1.1\r\nX: a\0b\r\n\r\n"), HTTP_INVALID, 0, 0, 0, 0, 0},
    {S("GET / HTTP/1.1\r\nX: a\rb\r\n\r\n"), HTTP_INVALID, 0, 0, 0, 0, 0},
    {S("GET / HTTP/1.1\r\nX: a\nY: b\r\n\r\n"), HTTP_INVALID, 0, 0, 0, 0, 0},
    {S("GET / HTTP/1.1\r\nX: a\x7f\r\n\r\n"), HTTP_INVALID, 0, 0, 0, 0, 0},
    {S("GET / HTTP/1.1\r\nX: \x0c\r\n\r\n"), HTTP_INVALID, 0, 0, 0, 0, 0},
    {S("GET / HTTP/1.1\r\nX\xc3\xab: a\r\n\r\n"), HTTP_INVALID, 0, 0, 0, 0, 0},
    {S("GET / HTTP/1.1\r\nX: a\r\n\rX"), HTTP_INVALID, 0, 0, 0, 0, 0},
    {S("GET / HTTP/1.1\r\nX: a\r\n\n"), HTTP_INVALID, 0, 0, 0, 0, 0},
};

/* "name=value|..." of the parsed fields. */
static void join_fields(const struct http_request *req, char *out, size_t cap)
{
    size_t o = 0;
    out[0] = 0;
    for (size_t k = 0; k < req->num_headers && o < cap; k++)
        o += (size_t)snprintf(out + o, cap - o, "%s%.*s=%.*s", k ? "|" : "",
                              (int)req->headers[k].name_len, req->headers[k].name,
                              (int)req->headers[k].value_len, req->headers[k].value);
}

static void test_parse_table(void)
{
    for (size_t i = 0; i < sizeof parse_cases / sizeof *parse_cases; i++) {
        const struct parse_case *t = &parse_cases[i];
        struct http_request req;
        char label[32], fields[512];
        snprintf(label, sizeof label, "parse case %zu", i);
        int want = t->want == OK ? (int)(t->len - t->tail) : t->want;
        int got = check_bytewise(t->in, t->len, label);
        CHECK(got == want, "%s: got %s (%d), want %s (%d)", label, code_name(got), got,
              code_name(want), want);
        if (t->want != OK || got != want)
            continue;
        char *p = copy_of(t->in, t->len);
        http_parse_request(p, t->len, &req);
        join_fields(&req, fields, sizeof fields);
        CHECK(req.method_len == strlen(t->method) && !memcmp(req.method, t->method, req.method_len)
              && req.target_len == strlen(t->target) && !memcmp(req.target, t->target, req.target_len)
              && req.minor == t->minor,
              "%s: request line %.*s %.*s 1.%d", label, (int)req.method_len, req.method,
              (int)req.target_len, req.target, req.minor);
        CHECK(!strcmp(fields, t->fields), "%s: fields \"%s\", want \"%s\"", label, fields, t->fields);
        free(p);
    }
}

/* Generated inputs at the edges of LIMIT_URI_BYTES, LIMIT_HEADERS, LIMIT_HEADER_BYTES. */
static void test_parse_limits(void)
{
    size_t cap = 2 * LIMIT_HEADER_BYTES, n;
    char *b = malloc(cap);
    struct http_request req;

    /* a target of exactly the limit; one byte more is 414 even before the line ends */
    n = (size_t)snprintf(b, cap, "GET /");
    memset(b + n, 'a', LIMIT_URI_BYTES - 1);
    n += LIMIT_URI_BYTES - 1;
    n += (size_t)snprintf(b + n, cap - n, " HTTP/1.1\r\n\r\n");
    CHECK(check_bytewise(b, n, "target at limit") == (int)n, "target of LIMIT_URI_BYTES");
    b[LIMIT_URI_BYTES + 4] = 'a';
    CHECK(check_bytewise(b, LIMIT_URI_BYTES + 5, "target over limit") == HTTP_URI_TOO_LONG,
          "target of LIMIT_URI_BYTES + 1 without a line end");

    /* LIMIT_HEADERS fields pass; one more is 431 as soon as its line starts */
    n = (size_t)snprintf(b, cap, "GET / HTTP/1.1\r\n");
    for (int k = 0; k < LIMIT_HEADERS; k++)
        n += (size_t)snprintf(b + n, cap - n, "X-%d: %d\r\n", k, k);
    memcpy(b + n, "\r\n", 2);
    CHECK(check_bytewise(b, n + 2, "LIMIT_HEADERS fields") == (int)n + 2, "LIMIT_HEADERS fields");
    CHECK(http_parse_request(b, n + 2, &req) > 0 && req.num_headers == LIMIT_HEADERS,
          "num_headers %zu", req.num_headers);
    memcpy(b + n, "Y", 1);
    CHECK(check_bytewise(b, n + 1, "one field too many") == HTTP_HEADERS_TOO_LARGE,
          "LIMIT_HEADERS + 1 fields");

    /* a head of exactly LIMIT_HEADER_BYTES passes; one byte more is 431 */
    for (size_t total = LIMIT_HEADER_BYTES; total <= LIMIT_HEADER_BYTES + 1; total++) {
        n = (size_t)snprintf(b, cap, "GET / HTTP/1.1\r\nX: ");
        memset(b + n, 'v', total - n - 4);
        memcpy(b + total - 4, "\r\n\r\n", 4);
        int r = http_parse_request(b, total, &req);
        int want = total == LIMIT_HEADER_BYTES ? (int)total : HTTP_HEADERS_TOO_LARGE;
        CHECK(r == want, "head of %zu bytes: %s", total, code_name(r));
        CHECK(http_parse_request(b, LIMIT_HEADER_BYTES - 1, &req) == HTTP_INCOMPLETE,
              "below the limit an unfinished head is incomplete");
        CHECK(http_parse_request(b, LIMIT_HEADER_BYTES, &req) == want,
              "at the limit an unfinished head is 431");
    }
    free(b);
}

static void test_find_header(void)
{
    static const char in[] = "GET / HTTP/1.1\r\nHost: a\r\ncontent-TYPE: x\r\nhost: b\r\n\r\n";
    struct http_request req;
    const struct http_header *h;

    CHECK(http_parse_request(in, sizeof in - 1, &req) > 0, "parse");
    h = http_find_header(&req, "Content-Type");
    CHECK(h && h->value_len == 1 && h->value[0] == 'x', "case-insensitive lookup");
    h = http_find_header(&req, "HOST");
    CHECK(h && h->value[0] == 'a', "first match");
    CHECK(!http_find_header(&req, "Content-Length") && !http_find_header(&req, "Hos"), "absent");
}

/* --- http_request_framing --------------------------------------------------------- */

struct framing_case {
    const char *head;  /* request line and fields, without the final CRLF */
    int status;
    enum http_body body;
    uint64_t length;
    int keep_alive, cont;
};

#define H11 "GET / HTTP/1.1\r\nHost: a\r\n"
#define P11 "POST / HTTP/1.1\r\nHost: a\r\n"
static const struct framing_case framing_cases[] = {
    {H11, 0, HTTP_BODY_NONE, 0, 1, 0},
    {"GET / HTTP/1.1\r\n", 400, 0, 0, 0, 0},
    {"GET / HTTP/1.0\r\n", 0, HTTP_BODY_NONE, 0, 0, 0},
    {"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n", 0, HTTP_BODY_NONE, 0, 1, 0},
    {"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n", 0, HTTP_BODY_NONE, 0, 0, 0},
    {H11 "Connection: upgrade, CLOSE\t\r\n", 0, HTTP_BODY_NONE, 0, 0, 0},
    {H11 "Connection: keep-alive\r\nConnection: close\r\n", 0, HTTP_BODY_NONE, 0, 0, 0},
    {H11 "Connection: upgrade,,\r\n", 0, HTTP_BODY_NONE, 0, 1, 0},
    {H11 "Connection: closed\r\n", 0, HTTP_BODY_NONE, 0, 1, 0},
    /* Host (RFC 9112 3.2, RFC 9110 7.2) */
    {H11 "Host: a\r\n", 400, 0, 0, 0, 0},
    {"GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n", 400, 0, 0, 0, 0},
    {"GET / HTTP/1.0\r\nHost: a@b\r\n", 400, 0, 0, 0, 0},
    {"GET / HTTP/1.1\r\nHost: user@a\r\n", 400, 0, 0, 0, 0},
    {"GET / HTTP/1.1\r\nHost: a, b\r\n", 400, 0, 0, 0, 0},
    {"GET / HTTP/1.1\r\nHost:\r\n", 400, 0, 0, 0, 0},
    {"GET / HTTP/1.1\r\nHost: a/b\r\n", 400, 0, 0, 0, 0},
    {"GET / HTTP/1.1\r\nHost: :80\r\n", 400, 0, 0, 0, 0},
    {"GET / HTTP/1.1\r\nHost: a:8x\r\n", 400, 0, 0, 0, 0},
    {"GET / HTTP/1.1\r\nHost: a:1:2\r\n", 400, 0, 0, 0, 0},
    {"GET / HTTP/1.1\r\nHost: [::1\r\n", 400, 0, 0, 0, 0},
    {"GET / HTTP/1.1\r\nHost: []\r\n", 400, 0, 0, 0, 0},
    {"GET / HTTP/1.1\r\nHost: a%4\r\n", 400, 0, 0, 0, 0},
    {"GET / HTTP/1.1\r\nHost: a:80\r\n", 0, HTTP_BODY_NONE, 0, 1, 0},
    {"GET / HTTP/1.1\r\nHost: a:\r\n", 0, HTTP_BODY_NONE, 0, 1, 0},
    {"GET / HTTP/1.1\r\nHost: [::1]:8080\r\n", 0, HTTP_BODY_NONE, 0, 1, 0},
    {"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n", 0, HTTP_BODY_NONE, 0, 1, 0},
    {"GET / HTTP/1.1\r\nHost: 0.0.0.0=5000\r\n", 0, HTTP_BODY_NONE, 0, 1, 0},
    {"GET / HTTP/1.1\r\nHost: a%41_b~\r\n", 0, HTTP_BODY_NONE, 0, 1, 0},
    /* request-target forms (RFC 9112 3.2) */
    {"GET * HTTP/1.1\r\nHost: a\r\n", 400, 0, 0, 0, 0},
    {"OPTIONS * HTTP/1.1\r\nHost: a\r\n", 0, HTTP_BODY_NONE, 0, 1, 0},
    {"GET foo HTTP/1.1\r\nHost: a\r\n", 400, 0, 0, 0, 0},
    {"GET http://b/x?y HTTP/1.1\r\nHost: a\r\n", 0, HTTP_BODY_NONE, 0, 1, 0},
    {"GET HTTPS://b:1 HTTP/1.1\r\nHost: a\r\n", 0, HTTP_BODY_NONE, 0, 1, 0},
    {"GET http://u:p@b/ HTTP/1.1\r\nHost: a\r\n", 400, 0, 0, 0, 0},
    {"GET http:///x HTTP/1.1\r\nHost: a\r\n", 400, 0, 0, 0, 0},
    {"GET ftp://b/ HTTP/1.1\r\nHost: a\r\n", 400, 0, 0, 0, 0},
    {"CONNECT b:443 HTTP/1.1\r\nHost: b:443\r\n", 0, HTTP_BODY_NONE, 0, 1, 0},
    {"CONNECT b HTTP/1.1\r\nHost: b\r\n", 400, 0, 0, 0, 0},
    {"CONNECT / HTTP/1.1\r\nHost: b\r\n", 400, 0, 0, 0, 0},
    /* Content-Length (RFC 9112 6.2, RFC 9110 8.6) */
    {P11 "Content-Length: 5\r\n", 0, HTTP_BODY_LENGTH, 5, 1, 0},
    {P11 "Content-Length: 0\r\n", 0, HTTP_BODY_LENGTH, 0, 1, 0},
    {P11 "Content-Length: 0200\r\n", 0, HTTP_BODY_LENGTH, 200, 1, 0},
    {P11 "content-length:\t 7 \t\r\n", 0, HTTP_BODY_LENGTH, 7, 1, 0},
    {P11 "Content-Length: 18446744073709551615\r\n", 0, HTTP_BODY_LENGTH, UINT64_MAX, 1, 0},
    {P11 "Content-Length: 18446744073709551616\r\n", 400, 0, 0, 0, 0},
    {P11 "Content-Length: 99999999999999999999\r\n", 400, 0, 0, 0, 0},
    {P11 "Content-Length:\r\n", 400, 0, 0, 0, 0},
    {P11 "Content-Length: +5\r\n", 400, 0, 0, 0, 0},
    {P11 "Content-Length: -0\r\n", 400, 0, 0, 0, 0},
    {P11 "Content-Length: 0x5\r\n", 400, 0, 0, 0, 0},
    {P11 "Content-Length: 1 0\r\n", 400, 0, 0, 0, 0},
    {P11 "Content-Length: 5, 5\r\n", 400, 0, 0, 0, 0},
    {P11 "Content-Length: 5\r\nContent-Length: 5\r\n", 400, 0, 0, 0, 0},
    {P11 "Content-Length: 5\r\nContent-Length: 6\r\n", 400, 0, 0, 0, 0},
    {P11 "Content_Length: 5\r\n", 0, HTTP_BODY_NONE, 0, 1, 0},
    /* Transfer-Encoding (RFC 9112 6.1, 6.3, 7) */
    {P11 "Transfer-Encoding: chunked\r\n", 0, HTTP_BODY_CHUNKED, 0, 1, 0},
    {P11 "Transfer-Encoding: Chunked \r\n", 0, HTTP_BODY_CHUNKED, 0, 1, 0},
    {P11 "Transfer-Encoding: , chunked,\r\n", 0, HTTP_BODY_CHUNKED, 0, 1, 0},
    {P11 "Transfer-Encoding:\r\nTransfer-Encoding: chunked\r\n", 0, HTTP_BODY_CHUNKED, 0, 1, 0},
    {P11 "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", 400, 0, 0, 0, 0},
    {P11 "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", 400, 0, 0, 0, 0},
    {"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n", 400, 0, 0, 0, 0},
    {P11 "Transfer-Encoding: chunked, gzip\r\n", 400, 0, 0, 0, 0},
    {P11 "Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n", 400, 0, 0, 0, 0},
    {P11 "Transfer-Encoding: chunked, chunked\r\n", 400, 0, 0, 0, 0},
    {P11 "Transfer-Encoding: chunked;x=1\r\n", 400, 0, 0, 0, 0},
    {P11 "Transfer-Encoding:\r\n", 400, 0, 0, 0, 0},
    {P11 "Transfer-Encoding: x y\r\n", 400, 0, 0, 0, 0},
    {P11 "Transfer-Encoding: \"chunked\"\r\n", 400, 0, 0, 0, 0},
    {P11 "Transfer-Encoding: gzip\r\n", 501, 0, 0, 0, 0},
    {P11 "Transfer-Encoding: identity\r\n", 501, 0, 0, 0, 0},
    {P11 "Transfer-Encoding: chunkedchunked\r\n", 501, 0, 0, 0, 0},
    {P11 "Transfer-Encoding: gzip, chunked\r\n", 501, 0, 0, 0, 0},
    {P11 "Transfer-Encoding: gzip;q=1 , chunked\r\n", 501, 0, 0, 0, 0},
    {P11 "Transfer-Encoding: deflate\r\nTransfer-Encoding: chunked\r\n", 501, 0, 0, 0, 0},
    /* Expect (RFC 9110 10.1.1) */
    {P11 "Expect: 100-continue\r\nContent-Length: 1\r\n", 0, HTTP_BODY_LENGTH, 1, 1, 1},
    {P11 "Expect: 100-Continue\r\n", 0, HTTP_BODY_NONE, 0, 1, 1},
    {"POST / HTTP/1.0\r\nExpect: 100-continue\r\n", 0, HTTP_BODY_NONE, 0, 0, 0},
    {P11 "Expect: 200-ok\r\n", 417, 0, 0, 0, 0},
    {P11 "Expect: 100-continue, x\r\n", 417, 0, 0, 0, 0},
    {P11 "Expect:\r\n", 0, HTTP_BODY_NONE, 0, 1, 0},
};

static void test_framing(void)
{
    for (size_t i = 0; i < sizeof framing_cases / sizeof *framing_cases; i++) {
        const struct framing_case *t = &framing_cases[i];
        struct http_request req;
        struct http_framing f;
        char in[512];
        int n = snprintf(in, sizeof in, "%s\r\n", t->head);
        CHECK(http_parse_request(in, (size_t)n, &req) == n, "framing case %zu: parse", i);
        int st = http_request_framing(&req, &f);
        CHECK(st == t->status, "framing case %zu: status %d, want %d: %s", i, st, t->status, t->head);
        if (st != 0 || t->status != 0)
            continue;
        CHECK(f.body == t->body && f.length == t->length && f.keep_alive == t->keep_alive
              && f.expect_continue == t->cont,
              "framing case %zu: body %d length %llu keep_alive %d continue %d: %s", i,
              (int)f.body, (unsigned long long)f.length, f.keep_alive, f.expect_continue, t->head);
    }
}

/* http_request_early over every prefix of every framing case (split at every offset): a
 * prefix is never refused unless the whole section is refused with 400. Then sections
 * that must be refused before their blank line, and some that must not be yet. */
static int early_at(const char *in, size_t k, int *parsed)
{
    struct http_request req;
    char *p = copy_of(in, k);
    *parsed = http_parse_request(p, k, &req);
    int e = *parsed == HTTP_INCOMPLETE ? http_request_early(&req) : 0;
    free(p);
    return e;
}

static void test_early(void)
{
    for (size_t i = 0; i < sizeof framing_cases / sizeof *framing_cases; i++) {
        const struct framing_case *t = &framing_cases[i];
        size_t len = strlen(t->head);   /* the field lines, without the blank line */
        int parsed, ok = 1;
        for (size_t k = 0; k <= len && ok; k++) {
            int e = early_at(t->head, k, &parsed);
            ok = e == 0 || (e == 400 && t->status == 400);
            CHECK(ok, "early case %zu: prefix %zu refused %d, whole section %d: %s", i, k, e,
                  t->status, t->head);
        }
    }
    /* llhttp's socket-level cases: refused without the blank line that never comes */
    static const char *const doomed[] = {
        "PUT /url HTTP/1.1\r\nContent-Length: 1000000000000000000000\r\n",
        "PUT /url HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1\r\nContent-Length: 2\r\n",
        "PUT /url HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\nX-Still: coming",
        "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n",
    };
    for (size_t i = 0; i < sizeof doomed / sizeof *doomed; i++) {
        int parsed, e = early_at(doomed[i], strlen(doomed[i]), &parsed);
        CHECK(parsed == HTTP_INCOMPLETE && e == 400, "doomed %zu: %d %d", i, parsed, e);
    }
    /* still arriving, nothing wrong yet: the request line alone, a half line */
    static const char *const fine[] = {
        "PUT /url HTTP/1.1\r\n", "PUT /url HTTP/1.1\r\nContent-Length: 1",
        "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n", "GET / HTTP/1.1\r\nExpect: x\r\n",
        "GET / HTTP/1.1\r\nTransfer-Encoding:\r\n", "GET /x HTT",
    };
    for (size_t i = 0; i < sizeof fine / sizeof *fine; i++) {
        int parsed, e = early_at(fine[i], strlen(fine[i]), &parsed);
        CHECK(parsed == HTTP_INCOMPLETE && e == 0, "fine %zu: %d %d", i, parsed, e);
    }
}

/* --- http_chunked_decode ---------------------------------------------------------- */

struct chunk_case {
    const char *in;
    size_t len;
    int want;          /* OK, HTTP_INCOMPLETE or HTTP_INVALID */
    const char *body;  /* OK and INCOMPLETE: the decoded bytes */
    size_t body_len;
    const char *rest;  /* OK: the bytes after the body */
};

static const struct chunk_case chunk_cases[] = {
    {S("5\r\nhello\r\n0\r\n\r\n"), OK, S("hello"), ""},
    {S("5\r\nhello\r\n0\r\n\r\nGET / HTTP/1.1\r\n"), OK, S("hello"), "GET / HTTP/1.1\r\n"},
    {S("0\r\n\r\n"), OK, S(""), ""},
    {S("a\r\n0123456789\r\nA\r\n0123456789\r\n0\r\n\r\n"), OK, S("01234567890123456789"), ""},
    {S("3\r\nabc\r\n2\r\nde\r\n000\r\n\r\n"), OK, S("abcde"), ""},
    {S("00000000000005\r\nhello\r\n0\r\n\r\n"), OK, S("hello"), ""},
    {S("5;a=b;c;d=\"x\\\"y;\" ; e = f\r\nhello\r\n0;z\r\n\r\n"), OK, S("hello"), ""},
    {S("5 ;a\t; b\r\nhello\r\n0\r\n\r\n"), OK, S("hello"), ""},
    {S("1\r\n\0\r\n0\r\nX: a\r\nY:\r\nZ: \xc3\xa9\r\n\r\nrest"), OK, S("\0"), "rest"},
    {S(""), HTTP_INCOMPLETE, S(""), 0},
    {S("5\r\nhel"), HTTP_INCOMPLETE, S("hel"), 0},
    {S("5\r\nhello\r\n"), HTTP_INCOMPLETE, S("hello"), 0},
    {S("5\r\nhello\r\n0\r\n"), HTTP_INCOMPLETE, S("hello"), 0},
    {S("0\r\nX: a\r\n"), HTTP_INCOMPLETE, S(""), 0},
    {S("00000000000000f\r\n"), HTTP_INCOMPLETE, S(""), 0},
    /* chunk-size (RFC 9112 7.1) */
    {S("\r\n"), HTTP_INVALID, 0, 0, 0},
    {S("x\r\n"), HTTP_INVALID, 0, 0, 0},
    {S("+5\r\nhello\r\n0\r\n\r\n"), HTTP_INVALID, 0, 0, 0},
    {S("-1\r\n"), HTTP_INVALID, 0, 0, 0},
    {S("0x5\r\nhello\r\n0\r\n\r\n"), HTTP_INVALID, 0, 0, 0},
    {S(" 5\r\nhello\r\n0\r\n\r\n"), HTTP_INVALID, 0, 0, 0},
    {S("5 \r\nhello\r\n0\r\n\r\n"), HTTP_INVALID, 0, 0, 0},
    {S("1_0\r\n"), HTTP_INVALID, 0, 0, 0},
    {S("0000000000000001\r\n"), HTTP_INVALID, 0, 0, 0},
    {S("FFFFFFFFFFFFFFFF0\r\n"), HTTP_INVALID, 0, 0, 0},
    {S("5\nhello\r\n0\r\n\r\n"), HTTP_INVALID, 0, 0, 0},
    {S("5\r\rhello"), HTTP_INVALID, 0, 0, 0},
    /* extensions (7.1.1) */
    {S("5;\r\nhello\r\n0\r\n\r\n"), HTTP_INVALID, 0, 0, 0},
    {S("5;\nhello"), HTTP_INVALID, 0, 0, 0},
    {S("2 erfrferferf\r\n"), HTTP_INVALID, 0, 0, 0},
    {S("5;bad[=x\r\n"), HTTP_INVALID, 0, 0, 0},
    {S("5;a=\r\n"), HTTP_INVALID, 0, 0, 0},
    {S("5;a \r\n"), HTTP_INVALID, 0, 0, 0},
    {S("5;a=\"x\r\nhello\r\n"), HTTP_INVALID, 0, 0, 0},
    {S("5;a=\"\x01\"\r\n"), HTTP_INVALID, 0, 0, 0},
    {S("5;a\0\r\n"), HTTP_INVALID, 0, 0, 0},
    {S("5;a\rb\r\n"), HTTP_INVALID, 0, 0, 0},
    /* data and its CRLF */
    {S("5\r\nhelloXY\r\n0\r\n\r\n"), HTTP_INVALID, 0, 0, 0},
    {S("5\r\nhello\n0\r\n\r\n"), HTTP_INVALID, 0, 0, 0},
    {S("5\r\nhello\r\r"), HTTP_INVALID, 0, 0, 0},
    {S("5\r\nhello\r\n\r\n"), HTTP_INVALID, 0, 0, 0},
    /* trailer section (7.1.2) */
    {S("5\r\nhello\r\n0\r\n\n"), HTTP_INVALID, 0, 0, 0},
    {S("0\r\nX: a\n\r\n"), HTTP_INVALID, 0, 0, 0},
    {S("0\r\n a: b\r\n\r\n"), HTTP_INVALID, 0, 0, 0},
    {S("0\r\n: b\r\n\r\n"), HTTP_INVALID, 0, 0, 0},
    {S("0\r\nX a\r\n\r\n"), HTTP_INVALID, 0, 0, 0},
    {S("0\r\nX: \x01\r\n\r\n"), HTTP_INVALID, 0, 0, 0},
    {S("0\r\n\rX"), HTTP_INVALID, 0, 0, 0},
};

struct chunk_result {
    long code;   /* INCOMPLETE, INVALID, or the count of bytes after the body */
    char *body;  /* decoded bytes (NUL-free comparison by length) */
    size_t body_len;
    char *rest;  /* bytes after the body: the returned ones, then unfed pieces */
    size_t rest_len;
};

/* Feeds in[0..len) in the pieces that end at cuts[] (and at len), as a server would: each
 * piece lands in the buffer right after the bytes decoded so far. */
static void feed_chunks(const char *in, size_t len, const size_t *cuts, size_t ncuts,
                        struct chunk_result *out)
{
    struct http_chunked c = {0};
    char *buf = malloc(len ? len : 1);
    size_t have = 0, from = 0;

    memset(out, 0, sizeof *out);
    out->code = HTTP_INCOMPLETE;
    for (size_t k = 0; k <= ncuts && out->code == HTTP_INCOMPLETE; k++) {
        size_t to = k < ncuts ? cuts[k] : len, n = to - from;
        char *piece = copy_of(in + from, n);  /* the decoder sees exactly this piece */
        size_t got = n;
        out->code = http_chunked_decode(&c, piece, &got);
        CHECK(got <= n, "decoded more than fed");
        memcpy(buf + have, piece, got + (out->code > 0 ? (size_t)out->code : 0));
        free(piece);
        have += got;
        from = to;
    }
    out->body = buf;
    out->body_len = have;
    if (out->code >= 0) {
        out->rest = buf + have;
        out->rest_len = (size_t)out->code + (len - from);
        memmove(buf + have + out->code, in + from, len - from);
    }
}

static int same_result(const struct chunk_result *a, const struct chunk_result *b)
{
    if (a->code < 0 || b->code < 0)
        return a->code == b->code
               && (a->code != HTTP_INCOMPLETE
                   || (a->body_len == b->body_len && !memcmp(a->body, b->body, a->body_len)));
    return a->body_len == b->body_len && !memcmp(a->body, b->body, a->body_len)
           && a->rest_len == b->rest_len && !memcmp(a->rest, b->rest, a->rest_len);
}

static void check_chunked(const char *in, size_t len, int want, const char *body, size_t body_len,
                          const char *rest, size_t rest_len, const char *label)
{
    struct chunk_result whole, part;
    size_t *cuts = malloc((len ? len : 1) * sizeof *cuts);

    feed_chunks(in, len, NULL, 0, &whole);
    int ok = want == OK ? whole.code >= 0 && whole.body_len == body_len
                              && !memcmp(whole.body, body, body_len) && whole.rest_len == rest_len
                              && !memcmp(whole.rest, rest, rest_len)
             : want == HTTP_INCOMPLETE ? whole.code == want && whole.body_len == body_len
                                             && !memcmp(whole.body, body, body_len)
             : whole.code == want;
    CHECK(ok, "%s: %s, %zu body bytes", label, code_name(whole.code), whole.body_len);

    for (size_t k = 1; k < len; k++)
        cuts[k - 1] = k;
    feed_chunks(in, len, cuts, len ? len - 1 : 0, &part);
    CHECK(same_result(&whole, &part), "%s: byte by byte gives %s", label, code_name(part.code));
    free(part.body);
    for (size_t k = 0; k <= len; k++) {
        feed_chunks(in, len, &k, 1, &part);
        int same = same_result(&whole, &part);
        free(part.body);
        if (!same) {
            CHECK(same, "%s: split at %zu gives %s", label, k, code_name(part.code));
            break;
        }
    }
    free(whole.body);
    free(cuts);
}

static void test_chunked(void)
{
    char label[32];
    for (size_t i = 0; i < sizeof chunk_cases / sizeof *chunk_cases; i++) {
        const struct chunk_case *t = &chunk_cases[i];
        snprintf(label, sizeof label, "chunk case %zu", i);
        check_chunked(t->in, t->len, t->want, t->body, t->body_len, t->rest,
                      t->rest ? strlen(t->rest) : 0, label);
    }

    /* LIMIT_CHUNK_TRAILER bounds extension and trailer bytes together */
    size_t cap = 3 * LIMIT_CHUNK_TRAILER;
    char *b = malloc(cap);
    for (int over = 0; over <= 1; over++) {
        size_t n = (size_t)snprintf(b, cap, "1;x=");
        size_t ext = LIMIT_CHUNK_TRAILER / 2;
        memset(b + n, 'e', ext - 3);  /* counted: "x=", the value, CR */
        n += ext - 3;
        n += (size_t)snprintf(b + n, cap - n, "\r\nA\r\n0\r\nT: ");
        /* counted: "T: ", the value, CR LF, the final CR LF */
        size_t trailer = LIMIT_CHUNK_TRAILER - ext - 7 + (size_t)over;
        memset(b + n, 't', trailer);
        n += trailer;
        n += (size_t)snprintf(b + n, cap - n, "\r\n\r\n");
        struct chunk_result r;
        feed_chunks(b, n, NULL, 0, &r);
        CHECK(over ? r.code == HTTP_INVALID : r.code == 0 && r.body_len == 1,
              "extensions + trailers %s the limit: %s", over ? "over" : "at", code_name(r.code));
        free(r.body);
    }
    free(b);

    /* a failed decoder stays failed */
    struct http_chunked c = {0};
    char bad[] = "x", good[] = "0\r\n\r\n";
    size_t n = 1;
    CHECK(http_chunked_decode(&c, bad, &n) == HTTP_INVALID, "invalid");
    n = 5;
    CHECK(http_chunked_decode(&c, good, &n) == HTTP_INVALID, "sticky invalid");
}

/* --- targets, queries, reasons ---------------------------------------------------- */

static void test_split_target(void)
{
    static const char *const cases[][3] = {
        {"/a/b?x=1", "/a/b", "x=1"}, {"/a", "/a", ""},        {"/?", "/", ""},
        {"/a?b?c", "/a", "b?c"},     {"*", "*", ""},          {"http://h:80/p?q", "/p", "q"},
        {"http://h?q", "/", "q"},    {"HTTPS://h", "/", ""},  {"http:/x", "http:/x", ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *path, *query;
        size_t pl, ql;
        http_split_target(cases[i][0], strlen(cases[i][0]), &path, &pl, &query, &ql);
        CHECK(pl == strlen(cases[i][1]) && !memcmp(path, cases[i][1], pl)
              && ql == strlen(cases[i][2]) && !memcmp(query, cases[i][2], ql),
              "split %s: path %.*s query %.*s", cases[i][0], (int)pl, path, (int)ql, query);
    }
}

static void test_percent_decode(void)
{
    static const struct { const char *in; int plus; const char *want; } cases[] = {
        {"a%20b", 0, "a b"},  {"a+b", 1, "a b"},      {"a+b", 0, "a+b"},
        {"%41%6a%7E", 0, "Aj~"}, {"%e9", 0, "\xe9"},  {"", 0, ""},
        {"%00", 0, NULL},     {"a%0", 0, NULL},       {"%", 0, NULL},
        {"%zz", 0, NULL},     {"%g1", 0, NULL},       {"%1", 1, NULL},
    };
    char out[16];
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *in = cases[i].in;
        size_t n = strlen(in);
        char *p = copy_of(in, n);
        int r = http_percent_decode(p, n, out, sizeof out, cases[i].plus);
        free(p);
        if (cases[i].want)
            CHECK(r == (int)strlen(cases[i].want) && !memcmp(out, cases[i].want, (size_t)r),
                  "decode \"%s\": %d", in, r);
        else
            CHECK(r == -1, "decode \"%s\": %d, want -1", in, r);
    }
    CHECK(http_percent_decode("abc", 3, out, 3, 0) == 3, "fits exactly");
    CHECK(http_percent_decode("abc", 3, out, 2, 0) == -1, "does not fit");
    CHECK(http_percent_decode("%41", 3, out, 1, 0) == 1 && out[0] == 'A', "escape fits");
    /* fuzz regression: a raw NUL is refused like a decoded one */
    char *nul = copy_of("a\0b", 3);
    CHECK(http_percent_decode(nul, 3, out, sizeof out, 0) == -1, "raw NUL");
    free(nul);
}

static void test_query_get(void)
{
    static const struct { const char *q, *key; size_t cap; int want; const char *out; } cases[] = {
        {"a=1&b=2", "b", 16, 1, "2"},          {"a=1&a=2", "a", 16, 1, "1"},
        {"a&b=2", "a", 16, 0, ""},             {"a=&b", "b", 16, 0, ""},
        {"x=hello+world%21", "x", 16, 12, "hello world!"},
        {"a=1", "c", 16, -1, 0},               {"", "a", 16, -1, 0},
        {"ab=1", "a", 16, -1, 0},              {"a=1", "ab", 16, -1, 0},
        {"a=%zz", "a", 16, -2, 0},             {"a=%00", "a", 16, -2, 0},
        {"a=12345", "a", 5, -2, 0},            {"a=12345", "a", 6, 5, "12345"},
        {"a=1", "a", 0, -2, 0},                {"%61=1", "a", 16, 1, "1"},
        {"a%zz=1&a=2", "a", 16, 1, "2"},       {"&&a=1&", "a", 16, 1, "1"},
        {"a+b=1", "a b", 16, 1, "1"},          {"a=b=c", "a", 16, 3, "b=c"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char out[16];
        size_t n = strlen(cases[i].q);
        char *p = copy_of(cases[i].q, n);
        memset(out, 'X', sizeof out);
        int r = http_query_get(p, n, cases[i].key, out, cases[i].cap);
        free(p);
        CHECK(r == cases[i].want && (r < 0 || !strcmp(out, cases[i].out)),
              "query \"%s\" key \"%s\": %d", cases[i].q, cases[i].key, r);
    }
    /* fuzz regression (fuzz_query): raw NULs after a matching key prefix were taken for
     * the key's terminator and the comparison read past the end of the key */
    static const char q[] = "name\0\0\0=%00&name=ok";
    char *p = copy_of(q, sizeof q - 1), *key = copy_of("name", 5), out[16];
    CHECK(http_query_get(p, sizeof q - 1, key, out, sizeof out) == 2 && !strcmp(out, "ok"),
          "raw NUL in a query key");
    free(p);
    free(key);
}

static void test_status_reason(void)
{
    static const int sent[] = {100, 200, 201, 204, 400, 401, 403, 404, 405, 408, 409, 411,
                               413, 414, 415, 417, 429, 431, 500, 501, 503, 505};
    for (size_t i = 0; i < sizeof sent / sizeof *sent; i++)
        CHECK(strcmp(http_status_reason(sent[i]), "Unknown"), "reason for %d", sent[i]);
    CHECK(!strcmp(http_status_reason(404), "Not Found"), "404");
    CHECK(!strcmp(http_status_reason(999), "Unknown") && !strcmp(http_status_reason(0), "Unknown"),
          "unknown codes");
}

/* --- corpus ----------------------------------------------------------------------- */

/* Cases the corpus rejects at server level for a reason a parser cannot see: the request
 * is well-formed HTTP and the server refuses it (405/501). Keep short and honest. */
static const char *const server_only[][2] = {
    {"COMP-METHOD-CONNECT",
     "CONNECT example.com:443 is well-formed authority-form; an origin server answers 405/501"},
};


enum verdict { V_ACCEPT, V_REJECT, V_INCOMPLETE };
static const char *const verdict_name[] = {"accept", "reject", "incomplete"};

struct message {
    enum verdict v;
    char why[40];       /* the step that decided */
    char method[64];
    long body;          /* body length, -1 before the body */
    int keep_alive;
};

/* One message at *pos of buf[0..*len): head, framing, then the body (chunked bodies are
 * decoded in place, which shrinks *len). On accept *pos moves past the message. */
static void replay_one(char *buf, size_t *len, size_t *pos, struct message *m)
{
    struct http_request req;
    struct http_framing f;
    size_t at = *pos;
    int n = http_parse_request(buf + at, *len - at, &req);

    m->body = -1;
    m->keep_alive = 0;
    m->method[0] = 0;
    m->v = n == HTTP_INCOMPLETE ? V_INCOMPLETE : V_REJECT;
    snprintf(m->why, sizeof m->why, "head %s", code_name(n));
    if (n == HTTP_INCOMPLETE && http_request_early(&req)) {   /* as the server does */
        m->v = V_REJECT;
        snprintf(m->why, sizeof m->why, "early %d", http_request_early(&req));
    }
    if (n < 0)
        return;
    snprintf(m->method, sizeof m->method, "%.*s", (int)req.method_len, req.method);
    int st = http_request_framing(&req, &f);
    snprintf(m->why, sizeof m->why, "framing %d", st);
    if (st != 0)
        return;
    at += (size_t)n;
    m->keep_alive = f.keep_alive;
    m->v = V_INCOMPLETE;
    if (f.body == HTTP_BODY_LENGTH) {
        snprintf(m->why, sizeof m->why, "body short of Content-Length");
        if (*len - at < f.length)
            return;
        m->body = (long)f.length;
        at += f.length;
    } else if (f.body == HTTP_BODY_CHUNKED) {
        struct http_chunked c = {0};
        size_t got = *len - at;
        ssize_t r = http_chunked_decode(&c, buf + at, &got);
        snprintf(m->why, sizeof m->why, "chunked body %s", code_name(r));
        if (r < 0) {
            m->v = r == HTTP_INCOMPLETE ? V_INCOMPLETE : V_REJECT;
            return;
        }
        m->body = (long)got;
        at += got;
        *len = at + (size_t)r;
    } else {
        m->body = 0;
    }
    snprintf(m->why, sizeof m->why, "ok");
    m->v = V_ACCEPT;
    *pos = at;
}

/* Replays a connection: messages one after another while the server would keep it open.
 * The verdict is the first message's; later ones only count. Returns the messages
 * answered. */
static int replay(char *buf, size_t len, struct message *first)
{
    struct message later;
    size_t pos = 0;
    int answered;

    replay_one(buf, &len, &pos, first);
    if (first->v != V_ACCEPT)
        return 0;
    later = *first;
    for (answered = 1; later.keep_alive && pos < len; answered++) {
        replay_one(buf, &len, &pos, &later);
        if (later.v != V_ACCEPT)
            break;
    }
    return answered;
}

static char *load_case(const char *dir, const char *files, size_t *len)
{
    char *all = NULL, path[1024];
    const char *f = files;
    *len = 0;
    for (;;) {
        const char *plus = strstr(f, " + ");
        size_t flen = plus ? (size_t)(plus - f) : strlen(f), n;
        snprintf(path, sizeof path, "%s/http/%.*s", dir, (int)flen, f);
        char *part = unit_slurp(path, &n);
        if (!part) {
            free(all);
            return NULL;
        }
        char *grown = realloc(all, *len + n + 1);
        if (!grown)
            abort();
        all = grown;
        memcpy(all + *len, part, n + 1);
        *len += n;
        free(part);
        if (!plus)
            return all;
        f = plus + 3;
    }
}

static int column(char **names, int count, const char *want)
{
    for (int i = 0; i < count; i++)
        if (!strcmp(names[i], want))
            return i;
    fprintf(stderr, "cases.tsv has no column %s\n", want);
    return -1;
}

/* Splits line in place at tabs; returns the field count (at most cap). */
static int split_tabs(char *line, char **fields, int cap)
{
    int n = 0;
    while (n < cap) {
        fields[n++] = line;
        line = strchr(line, '\t');
        if (!line)
            break;
        *line++ = 0;
    }
    return n;
}

static void test_corpus(void)
{
    const char *dir = unit_shared();
    char path[1024], *names[16], *fields[16];
    size_t tsv_len;
    int counts[4][3] = {{0}}, preferred_met = 0, preferred_total = 0, server_only_used = 0;
    static const char *const expect_names[] = {"accept", "reject", "incomplete", "either"};

    if (!dir) {
        SKIP("corpus: SHARED_TESTDATA is not set (../shared is absent)");
        return;
    }
    snprintf(path, sizeof path, "%s/http/cases.tsv", dir);
    char *tsv = unit_slurp(path, &tsv_len);
    if (!tsv) {
        SKIP("corpus: cannot read %s", path);
        return;
    }
    char *line = tsv, *next = strchr(line, '\n');
    if (next)
        *next++ = 0;
    int ncol = split_tabs(line, names, 16);
    int c_name = column(names, ncol, "name"), c_exp = column(names, ncol, "expected");
    int c_body = column(names, ncol, "body_len"), c_file = column(names, ncol, "file");
    int c_pref = column(names, ncol, "preferred"), c_method = column(names, ncol, "method");
    CHECK(c_name >= 0 && c_exp >= 0 && c_body >= 0 && c_file >= 0 && c_pref >= 0 && c_method >= 0,
          "cases.tsv columns");
    if (c_name < 0 || c_exp < 0 || c_body < 0 || c_file < 0 || c_pref < 0 || c_method < 0) {
        free(tsv);
        return;
    }

    for (line = next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = 0;
        if (split_tabs(line, fields, 16) != ncol) {
            CHECK(0, "cases.tsv: malformed line %.40s", line);
            continue;
        }
        const char *name = fields[c_name], *exp = fields[c_exp], *bl = fields[c_body];
        int e = 0;
        while (e < 4 && strcmp(exp, expect_names[e]))
            e++;
        size_t len;
        char *buf = load_case(dir, fields[c_file], &len);
        CHECK(e < 4 && buf, "%s: expected \"%s\", file %s", name, exp, fields[c_file]);
        if (e == 4 || !buf) {
            free(buf);
            continue;
        }

        char label[160];
        snprintf(label, sizeof label, "corpus %s", name);
        if (len <= 4096)
            check_bytewise(buf, len, label);

        struct message r;
        int answered = replay(buf, len, &r);
        free(buf);
        counts[e][r.v]++;

        const char *reason = NULL;
        for (size_t i = 0; i < sizeof server_only / sizeof *server_only; i++)
            if (!strcmp(server_only[i][0], name))
                reason = server_only[i][1];
        int ok;
        if (e == 0)
            ok = r.v == V_ACCEPT && (!*bl || r.body == atol(bl)) && !strcmp(r.method, fields[c_method]);
        else if (e == 1)
            ok = r.v == V_REJECT || (r.v == V_ACCEPT && reason);
        else if (e == 2)
            ok = r.v == V_INCOMPLETE;
        else
            ok = 1;
        CHECK(ok, "%s: expected %s, parser %s (%s), body %ld (want %s), %d message(s)", name, exp,
              verdict_name[r.v], r.why, r.body, *bl ? bl : "-", answered);
        if (reason) {
            CHECK(e == 1 && r.v == V_ACCEPT, "%s: listed as server-only but parser says %s",
                  name, verdict_name[r.v]);
            printf("  server-only reject %s: %s\n", name, reason);
            server_only_used++;
        }
        if (e == 3 && *fields[c_pref] && strcmp(fields[c_pref], verdict_name[r.v]))
            printf("  either %s: parser %s (%s), corpus prefers %s\n", name, verdict_name[r.v],
                   r.why, fields[c_pref]);
        if (e == 3 && *fields[c_pref]) {
            preferred_total++;
            preferred_met += !strcmp(fields[c_pref], verdict_name[r.v]);
        }
    }
    free(tsv);
    CHECK(server_only_used == (int)(sizeof server_only / sizeof *server_only),
          "every server-only entry names a corpus case");
    printf("corpus (parser verdicts accept/reject/incomplete by expected verdict):\n");
    for (int e = 0; e < 4; e++)
        printf("  %-10s %3d: %3d / %3d / %3d\n", expect_names[e],
               counts[e][0] + counts[e][1] + counts[e][2], counts[e][0], counts[e][1], counts[e][2]);
    printf("  either cases matching the corpus's preferred verdict: %d of %d\n", preferred_met,
           preferred_total);
}

int main(void)
{
    test_parse_table();
    test_parse_limits();
    test_find_header();
    test_framing();
    test_early();
    test_chunked();
    test_split_target();
    test_percent_decode();
    test_query_get();
    test_status_reason();
    test_corpus();
    return unit_report("test_http");
}
