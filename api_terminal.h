/* WS /terminal: an interactive login shell on a PTY that outlives its WebSocket.
 *
 * A session is a process record (proc.h, pty) plus the offset of the next output byte its
 * client has not been sent. The first message names it ({type:"session", session}); a
 * client that reconnects with ?session= within the keep time (--terminal-keep, default
 * 300 s) gets the same shell and, from that offset, what it printed meanwhile (as much as
 * the record's ring kept). A session nobody reattaches to is hung up: SIGHUP to its
 * process group (SIGKILL after the grace period), then reaped like any process.
 * Messages, client -> agent: {type:"input", data}, {type:"resize", cols, rows},
 * {type:"signal", signal}, binary frames as raw input; agent -> client: {type:"output",
 * data}, {type:"exit", code}, {type:"error", error, code}. */
#ifndef SANDBOX_API_TERMINAL_H
#define SANDBOX_API_TERMINAL_H

#include "api.h"

api_route_fn api_terminal;   /* GET /terminal (WebSocket upgrade) */

#endif
