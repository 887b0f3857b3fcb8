/* WebSocket framing for a server (RFC 6455), no extensions: the opening handshake's checks
 * and accept key, a restartable frame parser, and the frame header writer.
 * Pure: no syscalls, no clock, no globals, no allocation. Sockets, deadlines and pings are
 * the caller's (wsconn.h drives this on the loop). */
#ifndef SANDBOX_WS_H
#define SANDBOX_WS_H
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "http.h"

enum ws_opcode { WS_CONT = 0, WS_TEXT = 1, WS_BINARY = 2, WS_CLOSE = 8, WS_PING = 9,
                 WS_PONG = 10 };

/* Close codes (RFC 6455 7.4.1). The parser's errors are the negated code it calls for. */
#define WS_CLOSE_NORMAL      1000
#define WS_CLOSE_GOING_AWAY  1001
#define WS_CLOSE_PROTOCOL    1002   /* a frame breaking the protocol */
#define WS_CLOSE_NO_STATUS   1005   /* received close without a code (never sent) */
#define WS_CLOSE_INVALID     1007   /* text that is not UTF-8 */
#define WS_CLOSE_POLICY      1008
#define WS_CLOSE_TOO_BIG     1009   /* a message over the parser's max_message */
#define WS_CLOSE_INTERNAL    1011

#define WS_CONTROL_MAX       125    /* control frame payload (RFC 6455 5.5) */
#define WS_HEADER_MAX        10     /* server frame header: 2 + 8 length bytes, no mask */

/* ---- handshake (RFC 6455 4.2) ---- */

enum ws_upgrade {
    WS_UPGRADE_NONE = 0,     /* no "Upgrade: websocket": an ordinary request */
    WS_UPGRADE_OK = 1,       /* valid: answer 101 with accept as Sec-WebSocket-Accept */
    WS_UPGRADE_BAD = -1,     /* asks for websocket but is malformed (method, Connection, key): 400 */
    WS_UPGRADE_VERSION = -2, /* Sec-WebSocket-Version is not 13: 426 with "Sec-WebSocket-Version: 13" */
};
/* Checks req as an opening handshake: GET, HTTP/1.1, Upgrade has the token "websocket",
 * Connection has the token "upgrade", Sec-WebSocket-Version 13, and a Sec-WebSocket-Key that
 * is base64 of 16 bytes. On WS_UPGRADE_OK accept holds the NUL-terminated accept key. */
enum ws_upgrade ws_upgrade_check(const struct http_request *req, char accept[29]);

/* base64(SHA-1(key "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")) into out, NUL-terminated.
 * Returns 0, or -1 when key is not 24 base64 characters ending in "==". */
int ws_accept_key(const char *key, size_t len, char out[29]);

/* ---- frames from the client ---- */

enum ws_event_type {
    WS_EV_NONE,     /* the input was consumed; no event is complete yet */
    WS_EV_DATA,     /* a piece of a data message (may be empty when it ends one) */
    WS_EV_PING,
    WS_EV_PONG,
    WS_EV_CLOSE,    /* the client's close; nothing after it is parsed */
};

struct ws_event {
    enum ws_event_type type;
    int opcode;                /* DATA: WS_TEXT or WS_BINARY, the message's */
    int last;                  /* DATA: this piece ends the message */
    const uint8_t *data;       /* DATA: unmasked, inside the caller's buffer; control: inside
                                * the parser; valid until the next ws_parse call */
    size_t len;
    int close_code;            /* CLOSE: the code, or WS_CLOSE_NO_STATUS */
};

/* Parser state. Zero it, set max_message, then feed bytes in any split. */
struct ws_parser {
    uint64_t max_message;      /* data message bytes over all its fragments */
    /* private */
    int state;
    int err;                   /* sticky: negated close code */
    uint8_t hdr[14];
    uint8_t hdr_have, hdr_need;
    uint8_t opcode, fin, mask[4];
    uint64_t left;             /* payload bytes left in the current frame */
    uint64_t pos;              /* payload bytes of the current frame done (mask index) */
    int msg_opcode;            /* WS_TEXT/WS_BINARY while a data message is open, else 0 */
    uint64_t msg_len;
    uint8_t u8_need, u8_lo, u8_hi;   /* UTF-8 validation across pieces of a text message */
    uint8_t ctrl[WS_CONTROL_MAX];
    uint8_t ctrl_len;
};

/* Consumes bytes of buf[0..len) up to the end of at most one event, unmasking data payload
 * in place (buf is modified). Returns the bytes consumed (the caller passes the rest again)
 * with *ev set (WS_EV_NONE when all were consumed without completing one), or a negative
 * error, the negated close code to send, after which every call returns it again:
 *   -WS_CLOSE_PROTOCOL  unmasked frame, reserved bits, unknown opcode, a fragmented or
 *                       oversized (> 125) control frame, a continuation without a start,
 *                       a new data frame inside a fragmented message, a length with its top
 *                       bit set, a close payload of 1 byte or with a code one may not send
 *   -WS_CLOSE_INVALID   text (or a close reason) that is not UTF-8
 *   -WS_CLOSE_TOO_BIG   a data message longer than max_message (known from the header) */
ssize_t ws_parse(struct ws_parser *p, uint8_t *buf, size_t len, struct ws_event *ev);

/* ---- frames to the client ---- */

/* Writes a server (unmasked) frame header for len payload bytes. Returns its length. */
size_t ws_frame_header(uint8_t out[WS_HEADER_MAX], int opcode, int fin, uint64_t len);
/* A close payload: code, then reason (cut to fit 125 bytes). Returns its length. */
size_t ws_close_payload(uint8_t out[WS_CONTROL_MAX], int code, const char *reason);

#endif
