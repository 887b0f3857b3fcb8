#include "ws.h"

#include <string.h>
#include <strings.h>

#include <bearssl_hash.h>

#include "b64.h"

enum { P_HEADER, P_PAYLOAD, P_CLOSED };

static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/* ---- handshake ---- */

static int is_b64(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '+' || c == '/';
}

int ws_accept_key(const char *key, size_t len, char out[29])
{
    /* 16 bytes are 22 characters and "==" (RFC 6455 4.1: the nonce is 16 random bytes) */
    if (len != 24 || key[22] != '=' || key[23] != '=')
        return -1;
    for (size_t i = 0; i < 22; i++)
        if (!is_b64(key[i]))
            return -1;
    br_sha1_context sc;
    uint8_t d[br_sha1_SIZE];
    br_sha1_init(&sc);
    br_sha1_update(&sc, key, len);
    br_sha1_update(&sc, ws_guid, sizeof ws_guid - 1);
    br_sha1_out(&sc, d);
    out[b64_encode(d, sizeof d, out)] = 0;   /* 20 bytes: 28 characters */
    return 0;
}

/* Does the comma-separated list in h hold `token` (case-insensitive)? */
static int has_token(const struct http_header *h, const char *token)
{
    if (!h)
        return 0;
    size_t tl = strlen(token), i = 0;
    while (i < h->value_len) {
        while (i < h->value_len && (h->value[i] == ' ' || h->value[i] == '\t' || h->value[i] == ','))
            i++;
        size_t s = i;
        while (i < h->value_len && h->value[i] != ',')
            i++;
        size_t e = i;
        while (e > s && (h->value[e - 1] == ' ' || h->value[e - 1] == '\t'))
            e--;
        if (e - s == tl && strncasecmp(h->value + s, token, tl) == 0)
            return 1;
    }
    return 0;
}

enum ws_upgrade ws_upgrade_check(const struct http_request *req, char accept[29])
{
    if (!has_token(http_find_header(req, "upgrade"), "websocket"))
        return WS_UPGRADE_NONE;
    if (req->method_len != 3 || memcmp(req->method, "GET", 3) != 0 || req->minor != 1 ||
        !has_token(http_find_header(req, "connection"), "upgrade"))
        return WS_UPGRADE_BAD;
    const struct http_header *v = http_find_header(req, "sec-websocket-version");
    if (!v || v->value_len != 2 || memcmp(v->value, "13", 2) != 0)
        return WS_UPGRADE_VERSION;
    const struct http_header *k = http_find_header(req, "sec-websocket-key");
    if (!k || ws_accept_key(k->value, k->value_len, accept) < 0)
        return WS_UPGRADE_BAD;
    return WS_UPGRADE_OK;
}

/* ---- parser ---- */

/* Validates s[0..n) as a continuation of the UTF-8 text whose state p holds (RFC 3629:
 * no overlongs, no surrogates, nothing above U+10FFFF). Returns 0 or -1. */
static int utf8_feed(struct ws_parser *p, const uint8_t *s, size_t n)
{
    uint8_t need = p->u8_need, lo = p->u8_lo, hi = p->u8_hi;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = s[i];
        if (need) {
            if (c < lo || c > hi)
                return -1;
            need--;
            lo = 0x80;
            hi = 0xBF;
            continue;
        }
        if (c < 0x80)
            continue;
        lo = 0x80;
        hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF)
            need = 1;
        else if (c == 0xE0)
            need = 2, lo = 0xA0;
        else if (c == 0xED)
            need = 2, hi = 0x9F;
        else if (c >= 0xE1 && c <= 0xEF)
            need = 2;
        else if (c == 0xF0)
            need = 3, lo = 0x90;
        else if (c == 0xF4)
            need = 3, hi = 0x8F;
        else if (c >= 0xF1 && c <= 0xF3)
            need = 3;
        else
            return -1;
    }
    p->u8_need = need;
    p->u8_lo = lo;
    p->u8_hi = hi;
    return 0;
}

static ssize_t fail(struct ws_parser *p, int code)
{
    p->err = -code;
    return p->err;
}

/* Codes a peer may send (RFC 6455 7.4; 1012-1014 registered with IANA since). */
static int close_code_ok(int c)
{
    return (c >= 1000 && c <= 1003) || (c >= 1007 && c <= 1014) || (c >= 3000 && c <= 4999);
}

/* The header is complete: check it and set up the payload. Returns 0 or an error. */
static ssize_t header_done(struct ws_parser *p)
{
    uint8_t b0 = p->hdr[0], b1 = p->hdr[1];
    p->fin = b0 >> 7;
    p->opcode = b0 & 15;
    uint64_t len = b1 & 127;
    const uint8_t *m = p->hdr + 2;
    if (len == 126) {
        len = (uint64_t)p->hdr[2] << 8 | p->hdr[3];
        m += 2;
    } else if (len == 127) {
        len = 0;
        for (int i = 0; i < 8; i++)
            len = len << 8 | p->hdr[2 + i];
        m += 8;
        if (len >> 63)
            return fail(p, WS_CLOSE_PROTOCOL);
    }
    memcpy(p->mask, m, 4);
    if (b0 & 0x70)
        return fail(p, WS_CLOSE_PROTOCOL);   /* no extension was negotiated */
    if (!(b1 & 0x80))
        return fail(p, WS_CLOSE_PROTOCOL);   /* 5.1: a server must close on an unmasked frame */
    if (p->opcode >= 8) {
        if (p->opcode > WS_PONG || !p->fin || len > WS_CONTROL_MAX)
            return fail(p, WS_CLOSE_PROTOCOL);
        p->ctrl_len = 0;
    } else if (p->opcode == WS_CONT) {
        if (!p->msg_opcode)
            return fail(p, WS_CLOSE_PROTOCOL);
    } else if (p->opcode == WS_TEXT || p->opcode == WS_BINARY) {
        if (p->msg_opcode)
            return fail(p, WS_CLOSE_PROTOCOL);
        p->msg_opcode = p->opcode;
        p->msg_len = 0;
        p->u8_need = 0;
    } else {
        return fail(p, WS_CLOSE_PROTOCOL);
    }
    if (p->opcode < 8) {
        /* refuse before the bytes arrive: the client announced them */
        if (len > p->max_message || p->msg_len + len > p->max_message)
            return fail(p, WS_CLOSE_TOO_BIG);
        p->msg_len += len;
    }
    p->left = len;
    p->pos = 0;
    p->state = P_PAYLOAD;
    return 0;
}

/* A control frame's payload is complete in ctrl[]. */
static ssize_t control_done(struct ws_parser *p, struct ws_event *ev)
{
    ev->data = p->ctrl;
    ev->len = p->ctrl_len;
    p->state = P_HEADER;
    if (p->opcode == WS_PING) {
        ev->type = WS_EV_PING;
    } else if (p->opcode == WS_PONG) {
        ev->type = WS_EV_PONG;
    } else {
        ev->type = WS_EV_CLOSE;
        ev->close_code = WS_CLOSE_NO_STATUS;
        if (p->ctrl_len == 1)
            return fail(p, WS_CLOSE_PROTOCOL);
        if (p->ctrl_len >= 2) {
            ev->close_code = p->ctrl[0] << 8 | p->ctrl[1];
            if (!close_code_ok(ev->close_code))
                return fail(p, WS_CLOSE_PROTOCOL);
            struct ws_parser u = { 0 };
            if (utf8_feed(&u, p->ctrl + 2, p->ctrl_len - 2u) < 0 || u.u8_need)
                return fail(p, WS_CLOSE_INVALID);
            ev->data = p->ctrl + 2;
            ev->len = p->ctrl_len - 2u;
        } else {
            ev->len = 0;
        }
        p->state = P_CLOSED;
    }
    return 0;
}

ssize_t ws_parse(struct ws_parser *p, uint8_t *buf, size_t len, struct ws_event *ev)
{
    memset(ev, 0, sizeof *ev);
    if (p->err)
        return p->err;
    size_t used = 0;
    while (used < len || (p->state == P_PAYLOAD && p->left == 0)) {
        if (p->state == P_CLOSED)
            return (ssize_t)len;   /* RFC 6455 5.5.1: nothing is read after a close */
        if (p->state == P_HEADER) {
            if (p->hdr_have == 0)
                p->hdr_need = 2;
            while (p->hdr_have < p->hdr_need && used < len) {
                p->hdr[p->hdr_have++] = buf[used++];
                if (p->hdr_have == 2) {
                    /* an unmasked frame has no mask bytes to wait for: refuse it now */
                    if (!(p->hdr[1] & 0x80))
                        return fail(p, WS_CLOSE_PROTOCOL);
                    uint8_t l = p->hdr[1] & 127;
                    p->hdr_need = (uint8_t)(2 + (l == 126 ? 2 : l == 127 ? 8 : 0) + 4);
                }
            }
            if (p->hdr_have < p->hdr_need)
                return (ssize_t)used;
            p->hdr_have = 0;
            ssize_t r = header_done(p);
            if (r < 0)
                return r;
        }
        size_t n = len - used;
        if (n > p->left)
            n = (size_t)p->left;
        uint8_t *d = buf + used;
        if (p->opcode >= 8) {
            for (size_t i = 0; i < n; i++)
                p->ctrl[p->ctrl_len++] = d[i] ^ p->mask[(p->pos + i) & 3];
        } else {
            for (size_t i = 0; i < n; i++)
                d[i] ^= p->mask[(p->pos + i) & 3];
        }
        p->pos += n;
        p->left -= n;
        used += n;
        if (p->left > 0 && n == 0)
            return (ssize_t)used;
        if (p->opcode >= 8) {
            if (p->left > 0)
                return (ssize_t)used;
            ssize_t r = control_done(p, ev);
            return r < 0 ? r : (ssize_t)used;
        }
        int last = p->fin && p->left == 0;
        if (p->msg_opcode == WS_TEXT &&
            (utf8_feed(p, d, n) < 0 || (last && p->u8_need)))
            return fail(p, WS_CLOSE_INVALID);
        if (p->left == 0)
            p->state = P_HEADER;
        if (n > 0 || last) {
            ev->type = WS_EV_DATA;
            ev->opcode = p->msg_opcode;
            ev->last = last;
            ev->data = d;
            ev->len = n;
            if (last)
                p->msg_opcode = 0;
            return (ssize_t)used;
        }
    }
    return (ssize_t)used;
}

/* ---- writer ---- */

size_t ws_frame_header(uint8_t out[WS_HEADER_MAX], int opcode, int fin, uint64_t len)
{
    out[0] = (uint8_t)((fin ? 0x80 : 0) | (opcode & 15));
    if (len < 126) {
        out[1] = (uint8_t)len;
        return 2;
    }
    if (len <= 0xFFFF) {
        out[1] = 126;
        out[2] = (uint8_t)(len >> 8);
        out[3] = (uint8_t)len;
        return 4;
    }
    out[1] = 127;
    for (int i = 0; i < 8; i++)
        out[2 + i] = (uint8_t)(len >> (56 - 8 * i));
    return 10;
}

size_t ws_close_payload(uint8_t out[WS_CONTROL_MAX], int code, const char *reason)
{
    out[0] = (uint8_t)(code >> 8);
    out[1] = (uint8_t)code;
    size_t n = reason ? strlen(reason) : 0;
    if (n > WS_CONTROL_MAX - 2)
        n = WS_CONTROL_MAX - 2;
    if (n)
        memcpy(out + 2, reason, n);
    return 2 + n;
}
