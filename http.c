/* HTTP/1.1 request parsing and message rules (RFC 9112, RFC 9110). See http.h. */
#include "http.h"

#include <string.h>

/* Chunked decoder states. 0 is the start of a chunk-size line so a zeroed struct works.
 * The extension states and the trailer states are contiguous ranges: their bytes count
 * against LIMIT_CHUNK_TRAILER. */
enum {
    CH_SIZE,          /* chunk-size hex digits */
    CH_EXT_BWS,       /* BWS after an item: only more BWS or ";" may follow */
    CH_EXT_NAME0,     /* after ";": BWS then chunk-ext-name */
    CH_EXT_NAME,
    CH_EXT_NAME_BWS,  /* BWS after a name: "=" or ";" must follow */
    CH_EXT_VAL0,      /* after "=": BWS then token or quoted-string */
    CH_EXT_TOKEN,
    CH_EXT_QUOTED,
    CH_EXT_ESCAPE,    /* after "\" in a quoted-string */
    CH_EXT_QEND,      /* after the closing quote */
    CH_SIZE_LF,       /* CR of the size line seen */
    CH_DATA,
    CH_DATA_CR,
    CH_DATA_LF,
    CH_TRAILER,       /* start of a trailer line (or of the final empty line) */
    CH_TRAILER_NAME,
    CH_TRAILER_VALUE,
    CH_TRAILER_LF,
    CH_END_LF,        /* CR of the final empty line seen */
    CH_DONE,
    CH_FAILED,        /* sticky: every later call is HTTP_INVALID too */
};

/* Character classes: RFC 9110 5.6.2 (tchar), 5.5 (field values), RFC 3986 2-3 (URIs). */
static int is_digit(unsigned c) { return c - '0' < 10; }
static int is_ws(unsigned c) { return c == ' ' || c == '\t'; }

static int is_tchar(unsigned c)
{
    return is_digit(c) || (c | 0x20) - 'a' < 26 || (c && strchr("!#$%&'*+-.^_`|~", (int)c));
}

/* field-vchar / SP / HTAB: VCHAR and obs-text; NUL, CR, LF, DEL and other CTLs are out */
static int is_field_char(unsigned c) { return c >= 0x20 ? c != 0x7f : c == '\t'; }

/* Visible ASCII minus '"', '#', '<' and '>', which no URL serializer leaves unescaped
 * (WHATWG URL percent-encodes them in paths and queries; '#' starts a fragment, which is
 * not part of a request-target, RFC 9112 3.2). Characters some clients do send raw
 * (| ^ ` { } \ [ ]) are tolerated. */
static int is_target_char(unsigned c) { return c > 0x20 && c < 0x7f && !strchr("\"#<>", (int)c); }

/* reg-name characters besides pct-encoded: unreserved / sub-delims (RFC 3986 3.2.2) */
static int is_regname_char(unsigned c)
{
    return is_digit(c) || (c | 0x20) - 'a' < 26 || (c && strchr("-._~!$&'()*+,;=", (int)c));
}

static int hex_value(unsigned c)
{
    if (is_digit(c))
        return (int)(c - '0');
    if ((c | 0x20) - 'a' < 6)
        return (int)((c | 0x20) - 'a' + 10);
    return -1;
}

static unsigned lower(unsigned c) { return c - 'A' < 26 ? c | 0x20 : c; }

/* ASCII case-insensitive comparison of n bytes. */
static int ieq(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
            return 0;
    return 1;
}

static int is_named(const char *s, size_t n, const char *lit)
{
    return n == strlen(lit) && ieq(s, lit, n);
}

/* --- request line and header section --------------------------------------------- */

/* CRLF at *i. A bare CR or LF is invalid: RFC 9112 2.2 lets us refuse bare LF, and a
 * line end two parsers disagree on is how requests get smuggled. */
static int take_crlf(const unsigned char *p, size_t end, size_t *i)
{
    if (*i >= end)
        return HTTP_INCOMPLETE;
    if (p[*i] != '\r')
        return HTTP_INVALID;
    if (*i + 1 >= end)
        return HTTP_INCOMPLETE;
    if (p[*i + 1] != '\n')
        return HTTP_INVALID;
    *i += 2;
    return 0;
}

/* request-line = method SP request-target SP HTTP-version CRLF (RFC 9112 3), with
 * exactly one SP between the parts: splitting on whitespace runs (which 3 allows) is a
 * leniency a front proxy might not share. */
static int parse_request_line(const unsigned char *p, size_t end, size_t *pos,
                              struct http_request *req)
{
    static const char version[] = "HTTP/d.d";  /* "HTTP" is case-sensitive (2.3) */
    size_t i = *pos, start = i;

    while (i < end && is_tchar(p[i]))
        i++;
    if (i == end)
        return HTTP_INCOMPLETE;
    if (i == start || p[i] != ' ')
        return HTTP_INVALID;
    req->method = (const char *)p + start;
    req->method_len = i - start;

    start = ++i;
    while (i < end && is_target_char(p[i])) {
        if (i - start == LIMIT_URI_BYTES)  /* known long before the line ends */
            return HTTP_URI_TOO_LONG;
        i++;
    }
    if (i == end)
        return HTTP_INCOMPLETE;
    if (i == start || p[i] != ' ')
        return HTTP_INVALID;
    req->target = (const char *)p + start;
    req->target_len = i - start;

    i++;
    for (size_t k = 0; k < sizeof version - 1; k++, i++) {
        if (i == end)
            return HTTP_INCOMPLETE;
        if (version[k] == 'd' ? !is_digit(p[i]) : p[i] != (unsigned char)version[k])
            return HTTP_INVALID;
    }
    /* Judged as soon as the digits are in: whatever follows, this request fails. */
    if (p[i - 3] != '1' || p[i - 1] > '1')
        return HTTP_BAD_VERSION;
    req->minor = p[i - 1] - '0';
    int r = take_crlf(p, end, &i);
    if (r == 0)
        *pos = i;
    return r;
}

/* field-line = field-name ":" OWS field-value OWS CRLF (RFC 9112 5). A line starting
 * with SP/HTAB is obs-fold (5.2) or whitespace after the start line (2.2); whitespace
 * before the colon is a MUST-400 (5.1). All three fail the field-name check here. */
static int parse_field_line(const unsigned char *p, size_t end, size_t *pos,
                            struct http_header *h)
{
    size_t i = *pos, start = i, value, value_end;

    while (i < end && is_tchar(p[i]))
        i++;
    if (i == end)
        return HTTP_INCOMPLETE;
    if (i == start || p[i] != ':')
        return HTTP_INVALID;
    h->name = (const char *)p + start;
    h->name_len = i - start;

    i++;
    while (i < end && is_ws(p[i]))
        i++;
    value = value_end = i;
    while (i < end && is_field_char(p[i])) {
        if (!is_ws(p[i]))
            value_end = i + 1;
        i++;
    }
    int r = take_crlf(p, end, &i);  /* also rejects NUL and other CTLs in the value */
    if (r != 0)
        return r;
    h->value = (const char *)p + value;
    h->value_len = value_end - value;
    *pos = i;
    return 0;
}

int http_parse_request(const char *buf, size_t len, struct http_request *req)
{
    const unsigned char *p = (const unsigned char *)buf;
    /* Only the first LIMIT_HEADER_BYTES count; a header section not done by then is 431. */
    size_t end = len < LIMIT_HEADER_BYTES ? len : LIMIT_HEADER_BYTES;
    size_t i = 0;
    int r = 0;

    req->num_headers = 0;
    /* RFC 9112 2.2: ignore empty lines before the request-line (after a body, say). */
    while (r == 0 && i < end && p[i] == '\r')
        r = take_crlf(p, end, &i);
    if (r == 0)
        r = parse_request_line(p, end, &i, req);
    if (r != 0)
        req->method_len = 0;   /* no request line yet (see http_request_early) */
    while (r == 0) {
        if (i < end && p[i] == '\r') {
            r = take_crlf(p, end, &i);
            if (r == 0)
                return (int)i;
        } else if (i < end && req->num_headers == LIMIT_HEADERS) {
            r = HTTP_HEADERS_TOO_LARGE;
        } else {
            r = parse_field_line(p, end, &i, &req->headers[req->num_headers]);
            if (r == 0)
                req->num_headers++;
        }
    }
    if (r == HTTP_INCOMPLETE && len >= LIMIT_HEADER_BYTES)
        r = HTTP_HEADERS_TOO_LARGE;
    return r;
}

const struct http_header *http_find_header(const struct http_request *req, const char *name)
{
    for (size_t k = 0; k < req->num_headers; k++)
        if (is_named(req->headers[k].name, req->headers[k].name_len, name))
            return &req->headers[k];
    return NULL;
}

/* --- message rules ---------------------------------------------------------------- */

/* Next element of a #list (RFC 9110 5.6.1) at *off, OWS trimmed, possibly empty.
 * Returns 0 once the value is used up. Commas inside quoted strings are not special:
 * no list read here has a quoted-string we accept. */
static int list_next(const char *v, size_t len, size_t *off, const char **el, size_t *el_len)
{
    size_t i = *off, j = i;

    if (i > len)
        return 0;
    while (j < len && v[j] != ',')
        j++;
    *off = j + 1;
    while (i < j && is_ws((unsigned char)v[i]))
        i++;
    while (j > i && is_ws((unsigned char)v[j - 1]))
        j--;
    *el = v + i;
    *el_len = j - i;
    return 1;
}

/* uri-host [ ":" port ] (RFC 9110 7.2, RFC 3986 3.2.2-3.2.3). uri-host is an IP-literal
 * ("[" IPv6 "]"; IPvFuture is refused) or a reg-name, which also covers IPv4address.
 * No userinfo ('@' is not a reg-name character) and no empty host: an http URI has a
 * non-empty host (RFC 9110 4.2.1). need_port: authority-form for CONNECT (9112 3.2.3). */
static int valid_authority(const char *s, size_t n, int need_port)
{
    size_t i = 0;

    if (n > 0 && s[0] == '[') {
        i = 1;
        while (i < n && (hex_value((unsigned char)s[i]) >= 0 || s[i] == ':' || s[i] == '.'))
            i++;
        if (i == 1 || i == n || s[i] != ']')
            return 0;
        i++;
    } else {
        while (i < n && s[i] != ':') {
            if (s[i] == '%') {
                if (n - i < 3 || hex_value((unsigned char)s[i + 1]) < 0
                    || hex_value((unsigned char)s[i + 2]) < 0)
                    return 0;
                i += 3;
            } else if (is_regname_char((unsigned char)s[i])) {
                i++;
            } else {
                return 0;
            }
        }
        if (i == 0)
            return 0;
    }
    if (i == n)
        return !need_port;
    if (s[i] != ':')
        return 0;
    while (++i < n)
        if (!is_digit((unsigned char)s[i]))
            return 0;
    return 1;
}

/* Length of an "http://authority" or "https://authority" prefix, or 0; *auth is where
 * the authority starts. Other schemes are not ours to serve. */
static size_t absolute_prefix(const char *t, size_t n, size_t *auth)
{
    size_t i;

    if (n >= 7 && ieq(t, "http://", 7))
        i = 7;
    else if (n >= 8 && ieq(t, "https://", 8))
        i = 8;
    else
        return 0;
    *auth = i;
    while (i < n && t[i] != '/' && t[i] != '?')
        i++;
    return i;
}

/* The request-target forms of RFC 9112 3.2: origin-form for any method, absolute-form
 * (which a server MUST accept, 3.2.2; userinfo in it is an error, RFC 9110 4.2.4),
 * authority-form only and always for CONNECT, asterisk-form only for OPTIONS. */
static int valid_target(const struct http_request *req)
{
    const char *t = req->target;
    size_t n = req->target_len, auth = 0, end;

    if (n == 0)
        return 0;
    if (is_named(req->method, req->method_len, "connect"))
        return valid_authority(t, n, 1);
    if (t[0] == '/')
        return 1;
    if (n == 1 && t[0] == '*')
        return is_named(req->method, req->method_len, "options");
    end = absolute_prefix(t, n, &auth);
    return end > 0 && valid_authority(t + auth, end - auth, 0);
}

/* Content-Length = 1*DIGIT (RFC 9112 6.2, RFC 9110 8.6). A second Content-Length line,
 * or a list such as "5, 5", is refused even when the values agree (8.6 allows either). */
static int content_length(const struct http_request *req, int *present, uint64_t *out)
{
    for (size_t k = 0; k < req->num_headers; k++) {
        const struct http_header *h = &req->headers[k];
        uint64_t v = 0;
        if (!is_named(h->name, h->name_len, "content-length"))
            continue;
        if (*present || h->value_len == 0)
            return 400;
        *present = 1;
        for (size_t i = 0; i < h->value_len; i++) {
            unsigned d = (unsigned char)h->value[i] - '0';
            if (d > 9 || v > (UINT64_MAX - d) / 10)
                return 400;
            v = v * 10 + d;
        }
        *out = v;
    }
    return 0;
}

/* Transfer-Encoding = #transfer-coding over all its lines (RFC 9112 6.1, 7). chunked
 * must be the final coding and appear once (6.1, 6.3): else 400. Any other coding,
 * including "identity" (dropped by RFC 9112) and codings before chunked, is one we do
 * not implement: 501 (6.1). No coding at all cannot frame a body: 400. */
static int transfer_coding(const struct http_request *req, int partial)
{
    int chunked = 0, other = 0;

    for (size_t k = 0; k < req->num_headers; k++) {
        const struct http_header *h = &req->headers[k];
        const char *el;
        size_t n, off = 0;
        if (!is_named(h->name, h->name_len, "transfer-encoding"))
            continue;
        while (list_next(h->value, h->value_len, &off, &el, &n)) {
            size_t t = 0;
            if (n == 0)
                continue;  /* RFC 9110 5.6.1: empty elements are ignored */
            while (t < n && is_tchar((unsigned char)el[t]))
                t++;
            if (t == 0 || chunked)
                return 400;
            if (is_named(el, t, "chunked")) {
                if (t != n)
                    return 400;  /* chunked takes no parameters */
                chunked = 1;
                continue;
            }
            while (t < n && is_ws((unsigned char)el[t]))
                t++;
            if (t < n && el[t] != ';')
                return 400;
            other = 1;
        }
    }
    /* partial: a later line may still bring the coding, or a 400 that outranks the 501 */
    return partial ? 0 : other ? 501 : chunked ? 0 : 400;
}

/* The message rules over req's field lines. partial: req holds only the lines received so
 * far, so only what no later line can change is judged, and always as the complete
 * request would be: every check below that returns 400 fails on a prefix of the lines
 * exactly when it fails on all of them (two Hosts, a bad Host, target, Content-Length,
 * Content-Length with Transfer-Encoding, a malformed coding), and is reached before any
 * 501 or 417 is decided; a missing Host, the 501 and the 417 wait for the blank line. */
static int framing(const struct http_request *req, struct http_framing *f, int partial)
{
    const struct http_header *host = NULL;
    int hosts = 0, te = 0, cl = 0, close = 0, keep = 0, cont = 0, status;
    uint64_t length = 0;

    memset(f, 0, sizeof *f);
    for (size_t k = 0; k < req->num_headers; k++) {
        const struct http_header *h = &req->headers[k];
        if (is_named(h->name, h->name_len, "host"))
            host = hosts++ ? host : h;
        te |= is_named(h->name, h->name_len, "transfer-encoding");
    }
    /* RFC 9112 3.2: one Host in HTTP/1.1; never two or an invalid one in any version. */
    if (hosts > 1 || (hosts == 0 && req->minor == 1 && !partial))
        return 400;
    if (host && !valid_authority(host->value, host->value_len, 0))
        return 400;
    if (!valid_target(req))
        return 400;
    if ((status = content_length(req, &cl, &length)) != 0)
        return status;
    if (te) {
        /* RFC 9112 6.1 lets a server drop Content-Length and go on, then close; both
         * together are the classic smuggling vector, so refuse. Transfer-Encoding in
         * HTTP/1.0 means the framing is faulty (6.1): refuse too rather than guess. */
        if (cl || req->minor == 0)
            return 400;
        if ((status = transfer_coding(req, partial)) != 0)
            return status;
        f->body = HTTP_BODY_CHUNKED;
    } else if (cl) {
        f->body = HTTP_BODY_LENGTH;
        f->length = length;
    }

    if (partial)
        return 0;
    for (size_t k = 0; k < req->num_headers; k++) {
        const struct http_header *h = &req->headers[k];
        int connection = is_named(h->name, h->name_len, "connection");
        const char *el;
        size_t n, off = 0;
        if (!connection && !is_named(h->name, h->name_len, "expect"))
            continue;
        while (list_next(h->value, h->value_len, &off, &el, &n)) {
            if (connection) {  /* RFC 9112 9.3 */
                close |= is_named(el, n, "close");
                keep |= is_named(el, n, "keep-alive");
            } else if (is_named(el, n, "100-continue")) {
                cont = 1;
            } else if (n > 0) {
                return 417;  /* RFC 9110 10.1.1: an expectation we cannot meet */
            }
        }
    }
    f->keep_alive = !close && (req->minor == 1 || keep);
    /* RFC 9110 10.1.1: 100-continue in an HTTP/1.0 request MUST be ignored. */
    f->expect_continue = cont && req->minor == 1;
    return 0;
}

int http_request_framing(const struct http_request *req, struct http_framing *f)
{
    return framing(req, f, 0);
}

int http_request_early(const struct http_request *req)
{
    struct http_framing f;
    return req->method_len ? framing(req, &f, 1) : 0;
}

/* --- chunked transfer coding ------------------------------------------------------ */

/* After an item of the size line (the size, an extension name, value or quoted string):
 * BWS ";" starts another extension (RFC 9112 7.1.1), CR ends the line. Whitespace not
 * followed by ";" (as in "5 \r\n") is invalid. */
static int chunk_item_end(unsigned c)
{
    return is_ws(c) ? CH_EXT_BWS : c == ';' ? CH_EXT_NAME0 : c == '\r' ? CH_SIZE_LF : -1;
}

/* One framing byte outside chunk data: the next state, or -1 (RFC 9112 7.1). */
static int chunk_step(struct http_chunked *c, unsigned ch)
{
    int hex = hex_value(ch);

    switch (c->state) {
    case CH_SIZE:
        if (hex < 0)
            return c->digits ? chunk_item_end(ch) : -1;
        /* 15 digits keep the size below 2^60: no overflow, and nobody needs more. */
        if (++c->digits > 15)
            return -1;
        c->remaining = c->remaining << 4 | (unsigned)hex;
        return CH_SIZE;
    case CH_EXT_BWS:
        return is_ws(ch) ? CH_EXT_BWS : ch == ';' ? CH_EXT_NAME0 : -1;
    case CH_EXT_NAME0:
        return is_ws(ch) ? CH_EXT_NAME0 : is_tchar(ch) ? CH_EXT_NAME : -1;
    case CH_EXT_NAME:
        if (is_tchar(ch))
            return CH_EXT_NAME;
        return ch == '=' ? CH_EXT_VAL0 : is_ws(ch) ? CH_EXT_NAME_BWS : chunk_item_end(ch);
    case CH_EXT_NAME_BWS:
        if (is_ws(ch))
            return CH_EXT_NAME_BWS;
        return ch == '=' ? CH_EXT_VAL0 : ch == ';' ? CH_EXT_NAME0 : -1;
    case CH_EXT_VAL0:
        if (is_ws(ch))
            return CH_EXT_VAL0;
        return ch == '"' ? CH_EXT_QUOTED : is_tchar(ch) ? CH_EXT_TOKEN : -1;
    case CH_EXT_TOKEN:
        return is_tchar(ch) ? CH_EXT_TOKEN : chunk_item_end(ch);
    case CH_EXT_QUOTED:  /* qdtext or quoted-pair, RFC 9110 5.6.4 */
        if (ch == '"' || ch == '\\')
            return ch == '"' ? CH_EXT_QEND : CH_EXT_ESCAPE;
        return is_field_char(ch) ? CH_EXT_QUOTED : -1;
    case CH_EXT_ESCAPE:
        return is_field_char(ch) ? CH_EXT_QUOTED : -1;
    case CH_EXT_QEND:
        return chunk_item_end(ch);
    case CH_SIZE_LF:
        if (ch != '\n')
            return -1;
        c->digits = 0;
        return c->remaining ? CH_DATA : CH_TRAILER;  /* size 0 is the last-chunk */
    case CH_DATA_CR:
        return ch == '\r' ? CH_DATA_LF : -1;
    case CH_DATA_LF:
        return ch == '\n' ? CH_SIZE : -1;
    case CH_TRAILER:  /* trailer fields are checked for syntax and dropped (7.1.2) */
        return ch == '\r' ? CH_END_LF : is_tchar(ch) ? CH_TRAILER_NAME : -1;
    case CH_TRAILER_NAME:
        return is_tchar(ch) ? CH_TRAILER_NAME : ch == ':' ? CH_TRAILER_VALUE : -1;
    case CH_TRAILER_VALUE:
        return ch == '\r' ? CH_TRAILER_LF : is_field_char(ch) ? CH_TRAILER_VALUE : -1;
    case CH_TRAILER_LF:
        return ch == '\n' ? CH_TRAILER : -1;
    case CH_END_LF:
        return ch == '\n' ? CH_DONE : -1;
    default:
        return -1;
    }
}

ssize_t http_chunked_decode(struct http_chunked *c, char *buf, size_t *len)
{
    size_t src = 0, dst = 0, n = *len;

    while (src < n && c->state != CH_DONE && c->state != CH_FAILED) {
        if (c->state == CH_DATA) {
            size_t take = n - src;
            if (take > c->remaining)
                take = (size_t)c->remaining;
            memmove(buf + dst, buf + src, take);
            dst += take;
            src += take;
            c->remaining -= take;
            if (c->remaining == 0)
                c->state = CH_DATA_CR;
            continue;
        }
        int skipped = (c->state >= CH_EXT_BWS && c->state <= CH_EXT_QEND)
                      || (c->state >= CH_TRAILER && c->state <= CH_END_LF);
        int next = chunk_step(c, (unsigned char)buf[src++]);
        if (next < 0 || (skipped && ++c->skipped > LIMIT_CHUNK_TRAILER))
            c->state = CH_FAILED;
        else
            c->state = next;
    }
    *len = dst;
    if (c->state == CH_FAILED)
        return HTTP_INVALID;
    if (c->state != CH_DONE)
        return HTTP_INCOMPLETE;
    memmove(buf + dst, buf + src, n - src);
    return (ssize_t)(n - src);
}

/* --- targets and queries ---------------------------------------------------------- */

void http_split_target(const char *target, size_t len, const char **path, size_t *path_len,
                       const char **query, size_t *query_len)
{
    size_t auth, start = absolute_prefix(target, len, &auth), q = start;

    while (q < len && target[q] != '?')
        q++;
    *path = target + start;
    *path_len = q - start;
    if (start > 0 && *path_len == 0) {
        *path = "/";  /* "http://host?x" asks for "/" (RFC 9110 4.2.3) */
        *path_len = 1;
    }
    *query = target + (q < len ? q + 1 : len);
    *query_len = q < len ? len - q - 1 : 0;
}

/* Decodes one character of s at *i: a byte, "%" HEXDIG HEXDIG, or "+" as SP.
 * Returns the byte (1..255) or -1 for a bad or truncated escape or a NUL, raw or decoded.
 * A raw NUL is refused too (fuzz finding): key_matches took it for the end of the key
 * and read past it, and decoded values must stay C strings. The parser never lets a NUL
 * into a request-target, so only direct callers could pass one. */
static int decode_char(const char *s, size_t len, size_t *i, int plus_is_space)
{
    int c = (unsigned char)s[(*i)++], hi, lo;

    if (c == '+' && plus_is_space)
        return ' ';
    if (c != '%')
        return c ? c : -1;
    if (len - *i < 2 || (hi = hex_value((unsigned char)s[*i])) < 0
        || (lo = hex_value((unsigned char)s[*i + 1])) < 0)
        return -1;
    *i += 2;
    c = hi << 4 | lo;
    return c ? c : -1;
}

int http_percent_decode(const char *s, size_t len, char *out, size_t cap, int plus_is_space)
{
    size_t i = 0, o = 0;

    if (cap > (unsigned)-1 >> 1)  /* INT_MAX: <limits.h> is shadowed by ours under -I. */
        cap = (unsigned)-1 >> 1;
    while (i < len) {
        int c = decode_char(s, len, &i, plus_is_space);
        if (c < 0 || o == cap)
            return -1;
        out[o++] = (char)c;
    }
    return (int)o;
}

/* Does the encoded key k[0..n) decode to `key`? An undecodable key matches nothing. */
static int key_matches(const char *k, size_t n, const char *key)
{
    size_t i = 0;

    while (i < n) {
        int c = decode_char(k, n, &i, 1);
        if (c < 0 || (unsigned char)*key != c)
            return 0;
        key++;
    }
    return *key == 0;
}

int http_query_get(const char *q, size_t qlen, const char *key, char *out, size_t cap)
{
    size_t i = 0;

    while (i < qlen) {
        size_t j = i, eq;
        while (j < qlen && q[j] != '&')
            j++;
        for (eq = i; eq < j && q[eq] != '='; eq++)
            ;
        if (j > i && key_matches(q + i, eq - i, key)) {
            size_t v = eq < j ? eq + 1 : j;
            int n = cap ? http_percent_decode(q + v, j - v, out, cap - 1, 1) : -1;
            if (n < 0)
                return -2;
            out[n] = 0;
            return n;
        }
        i = j + 1;
    }
    return -1;
}

const char *http_status_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 426: return "Upgrade Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}
