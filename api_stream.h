/* Live streams of process output (API.md "Live streams"): WS /execute/stream (the SDK's
 * runCodeStream), GET /execute/processes/{id}/stream as Server-Sent Events or WebSocket,
 * and the ?wait= long poll. Every reader holds its own offsets into the record's rings
 * (proc.h) and sends from them when its socket takes more: no reader buffers output. */
#ifndef SANDBOX_API_STREAM_H
#define SANDBOX_API_STREAM_H

#include "api.h"

struct proc;

api_route_fn api_execute_stream;   /* GET /execute/stream (WebSocket upgrade) */
api_route_fn api_process_stream;   /* GET /execute/processes/{id}/stream */

/* GET /execute/processes/{id}?wait=SECONDS for a found record p. Returns 0 when the record
 * is to be answered now (no wait asked, or p finished), SERVER_PARKED when the answer
 * comes when p finishes or the wait ends, or -1 after answering 400 for a bad wait. */
int api_stream_wait(struct server_request *req, struct server_reply *rep, struct proc *p);

#endif
