/* A connection taken from the server (server.h takeover) that streams messages to its
 * client: WebSocket frames (ws.h), or in raw mode bytes as given (Server-Sent Events).
 *
 * It reads the client (raw: only to see it leave), answers pings, assembles messages up
 * to LIMIT_WS_MESSAGE, closes with the parser's code on a protocol error, pings every
 * LIMIT_WS_PING_MS and drops a client silent for LIMIT_WS_IDLE_MS (raw: writes ": ping"
 * every LIMIT_SSE_PING_MS), and drops a client that takes nothing for LIMIT_WRITE_MS.
 *
 * Each message goes out in one write (TCP_NODELAY: its own segment). At most one message
 * is held here: the owner sends the next when wsconn_pending() is 0, and ops->writable
 * says when that becomes true. So a client that stops reading costs its socket buffer and
 * one message; the rest stays wherever the owner reads from (a record's ring, an offset).
 *
 * Lifetime: ops->closed is called exactly once, from the loop (never from inside a
 * wsconn_* call), after which the struct is freed and the slot released (server_release). */
#ifndef SANDBOX_WSCONN_H
#define SANDBOX_WSCONN_H
#include <stddef.h>
#include <sys/uio.h>

struct wsconn;

struct wsconn_ops {
    /* A whole message from the client (not in raw mode): WS_TEXT (valid UTF-8) or
     * WS_BINARY; data valid during the call. May be NULL. Frames that came with the
     * handshake are delivered from inside wsconn_start, before it returns: use w. */
    void (*message)(void *ctx, struct wsconn *w, int opcode, const char *data, size_t len);
    /* What was queued is written: the owner may send again. May be NULL. */
    void (*writable)(void *ctx, struct wsconn *w);
    /* Gone (client left, error, deadline, or after wsconn_close): the owner frees ctx and
     * never uses w again. */
    void (*closed)(void *ctx);
};

/* raw modes: WSCONN_SSE writes ": ping" comments when idle; WSCONN_BARE writes nothing
 * of its own (a protocol with its own keepalive messages: E2B's Connect streams). */
#define WSCONN_SSE  1
#define WSCONN_BARE 2

/* Takes over fd (a server_owner.take): pending[0..len) are bytes the client sent after
 * the request. raw: SSE (no framing; input is discarded). Returns the connection, or NULL
 * when out of memory, after closing fd and releasing its slot (ops->closed is not called). */
struct wsconn *wsconn_start(int fd, int raw, const char *pending, size_t len,
                            const struct wsconn_ops *ops, void *ctx);

/* A server_owner.take in one call: fd < 0 (the client left before the upgrade went out) or
 * wsconn_start failing calls ops->closed(ctx) here, before returning NULL, so the owner has
 * one place that frees ctx. Otherwise as wsconn_start. */
struct wsconn *wsconn_take(int fd, int raw, const char *pending, size_t len,
                           const struct wsconn_ops *ops, void *ctx);

/* Sends one message: a frame (opcode WS_TEXT or WS_BINARY) whose payload is the iovecs in
 * order, or in raw mode their bytes. Returns 0 (written, or the rest queued), or -1 when
 * something is still pending (EBUSY) or the connection is closing (EPIPE). */
int wsconn_sendv(struct wsconn *w, int opcode, const struct iovec *iov, int n);
int wsconn_send(struct wsconn *w, int opcode, const void *data, size_t len);
/* Bytes of the last message not yet written (0: the owner may send). */
size_t wsconn_pending(const struct wsconn *w);
/* Stops (0) or resumes (1) reading the client, for an owner that cannot take more now. */
void wsconn_read(struct wsconn *w, int on);
/* Ends the connection after what is queued: a close frame with code and reason (raw: just
 * the end of the stream), then up to LIMIT_WS_CLOSE_MS for the client's close or EOF.
 * Further sends fail; ops->closed follows from the loop. */
void wsconn_close(struct wsconn *w, int code, const char *reason);
/* Open connections (all owners together). */
int wsconn_count(void);
/* Shutdown: closes every connection with 1001 (raw: ends the stream). */
void wsconn_stop_all(void);

#endif
