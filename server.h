/* The HTTP/1.1 server on the loop: accepts, frames requests (http.h), enforces deadlines
 * and limits, calls one handler per request, and writes replies without blocking.
 * Requests on one connection are answered in order (pipelining). */
#ifndef SANDBOX_SERVER_H
#define SANDBOX_SERVER_H
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "http.h"

/* What a handler sees. Every pointer is valid only until the handler returns. */
struct server_request {
    const struct http_request *http;
    const char *method;       /* "GET" for HEAD too (see head) */
    size_t method_len;
    int head;                 /* a HEAD request: the reply body is computed, then not sent */
    const char *path;         /* raw, before '?' */
    size_t path_len;
    const char *query;        /* after '?', without it; empty when none */
    size_t query_len;
    const char *body;         /* decoded request body */
    size_t body_len;
    const char *request_id;   /* echoed or generated; NUL-terminated */
    uint64_t token;           /* names this request for server_parked/server_resume */
    const char *note;         /* handler may set a static logfmt fragment for the log line */
    /* set by a handler that returns SERVER_TAKEN (see "Connection takeover" below) */
    const struct server_owner *owner;
    void *owner_ctx;
};

/* What a handler fills. Owned by the connection; reused across its requests. */
struct server_reply {
    int status;
    const char *content_type; /* NULL: application/json; charset=utf-8 */
    struct buf headers;       /* extra header lines, each ending in CRLF */
    struct buf body;
    const char *note;         /* copied from the request for the log line */
    struct {                  /* a file-backed body: see server_reply_file */
        int set;
        int fd;
        uint64_t off, len;
    } file;
};

/* Returns 0 when rep is ready to send, or SERVER_PARKED: the handler kept req->token and
 * will fill server_parked(token) and call server_resume(token) later. */
#define SERVER_PARKED 1
typedef int server_handler(void *ctx, struct server_request *req, struct server_reply *rep);

/* Connection takeover, for WebSocket upgrades and Server-Sent Events.
 * A handler that answers 101 Switching Protocols, or starts a response that lasts as long
 * as the connection (SSE), fills rep's status, content_type and headers (no body), sets
 * req->owner and req->owner_ctx, and returns SERVER_TAKEN. The server writes the status
 * line and headers (Date, X-Request-ID; no Content-Length; "Connection: close" unless 101;
 * no Content-Type for 101), logs the request, stops watching the fd, frees its connection
 * state and calls owner->take: from then on the owner reads, writes, watches (loop.h) and
 * closes the fd. Not for HEAD requests (the handler answers those normally).
 * The taken connection still counts against LIMIT_CONNECTIONS (and in server_connections)
 * until its owner calls server_release(), once, after closing it. */
#define SERVER_TAKEN 2
struct server_owner {
    /* fd: non-blocking, close-on-exec, TCP_NODELAY. pending[0..len): bytes the client sent
     * after the request (a WebSocket client may send its first frames at once); valid
     * during the call only. fd -1: the client went away before the head was written (no
     * server_release then): just free ctx. */
    void (*take)(void *ctx, int fd, const char *pending, size_t len);
    /* server_shutdown: the owner closes what it owns soon (each with server_release). */
    void (*stop)(void);
};
/* The owner of a taken connection closed it: its slot is free again. */
void server_release(void);

/* Serves on a listening, non-blocking socket. Returns 0 or -1 (errno). */
int server_start(int listen_fd, server_handler *handler, void *ctx);
/* Closes connections whose deadline passed. Returns the next deadline (monotonic us), or
 * -1 when there is none. */
int64_t server_tick(int64_t now_us);
/* The reply of a parked request, or NULL when its client went away meanwhile. */
struct server_reply *server_parked(uint64_t token);
/* Sends the parked reply (no-op when the client went away). */
void server_resume(uint64_t token);
/* ---- Streaming request bodies and file-backed replies (the files API) ----
 * A request body is normally buffered (up to LIMIT_BODY_BYTES) and the handler is called
 * after it. A body hook sees every request that has a body once its headers are in, before
 * any body byte is read, and may take the body as a stream instead: decoded bytes (from
 * Content-Length or chunked framing) go to a sink as they arrive, any size, through one
 * LIMIT_FILES_IO buffer per connection. A sink that takes fewer bytes than offered is
 * busy: the server stops reading the socket (TCP backpressure) until server_body_resume.
 * Replies may be backed by a file instead of rep->body: sendfile, never read into memory.
 */

/* Where a streamed body goes. Called on the loop; none of them may block. */
struct server_sink {
    /* The next decoded body bytes, in order. Returns how many it took (0..n). */
    size_t (*data)(void *ctx, const char *p, size_t n);
    /* The body is complete and every byte was taken: fill rep as a handler would. */
    void (*end)(void *ctx, struct server_reply *rep);
    /* The body will never complete (client gone or too slow, malformed chunked framing,
     * a stop): release everything; no reply is asked for. Exactly one of end and abort
     * is called, once. */
    void (*abort)(void *ctx);
    void *ctx;
};

#define SERVER_STREAM   2     /* body hook: *sink is filled, stream the body to it */
#define SERVER_ANSWERED 3     /* body hook: rep is filled, answer now without the body */
/* req is as for a handler (body empty; its pointers valid only during the call). Returns
 * 0 to buffer the body and call the handler as usual, SERVER_STREAM, or SERVER_ANSWERED
 * (the body is not read: the connection closes after the reply). */
typedef int server_body_hook(void *ctx, struct server_request *req, struct server_reply *rep,
                             struct server_sink *sink);
/* Installs the body hook (NULL: none); it gets server_start's ctx. */
void server_set_body_hook(server_body_hook *hook);
/* A second listening socket served by its own handler and body hook (hook may be NULL),
 * after server_start: E2B's protocol on its own port. Connections from both share the
 * limits, deadlines and takeover rules; server_shutdown closes both listeners. The reply
 * observer (server_on_reply) sees both. Returns 0 or -1 (errno). */
int server_listen_second(int listen_fd, server_handler *handler, server_body_hook *hook,
                         void *ctx);
/* A busy sink is ready again: offer it the rest, read on. No-op for a gone request. */
void server_body_resume(uint64_t token);

/* Makes rep's body bytes [off, off + len) of fd, sent with sendfile after the headers
 * (Content-Length: len; HEAD sends none). The server owns fd from this call on: it is
 * closed after the reply or when the client goes. rep->body stays empty. */
void server_reply_file(struct server_reply *rep, int fd, uint64_t off, uint64_t len);

/* Calls fn(token, rep) with the reply to every request the handler was given, just before
 * it is sent (a parked one when resumed), after the server's own substitutions (500 for a
 * reply too large, 503 busy). Not called for the server's own errors before a handler ran,
 * nor for a parked request whose client left. One observer (idem.c keeps answers). */
void server_on_reply(void (*fn)(uint64_t token, const struct server_reply *rep));
/* Graceful stop: close the listener and idle connections; busy ones close after their
 * current reply. */
void server_shutdown(void);
/* Open client connections. */
int server_connections(void);

#endif
