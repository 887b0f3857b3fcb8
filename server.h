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
};

/* What a handler fills. Owned by the connection; reused across its requests. */
struct server_reply {
    int status;
    const char *content_type; /* NULL: application/json; charset=utf-8 */
    struct buf headers;       /* extra header lines, each ending in CRLF */
    struct buf body;
    const char *note;         /* copied from the request for the log line */
};

/* Returns 0 when rep is ready to send, or SERVER_PARKED: the handler kept req->token and
 * will fill server_parked(token) and call server_resume(token) later. */
#define SERVER_PARKED 1
typedef int server_handler(void *ctx, struct server_request *req, struct server_reply *rep);

/* Serves on a listening, non-blocking socket. Returns 0 or -1 (errno). */
int server_start(int listen_fd, server_handler *handler, void *ctx);
/* Closes connections whose deadline passed. Returns the next deadline (monotonic us), or
 * -1 when there is none. */
int64_t server_tick(int64_t now_us);
/* The reply of a parked request, or NULL when its client went away meanwhile. */
struct server_reply *server_parked(uint64_t token);
/* Sends the parked reply (no-op when the client went away). */
void server_resume(uint64_t token);
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
