/* File watching routes (API.md "Live streams"): WS /files/watch (the SDK's watchFiles:
 * {action:"watch", path, recursive?} then change events) and GET /files/watch?path= as
 * Server-Sent Events, on the core watch module (watch.h). */
#ifndef SANDBOX_API_WATCH_H
#define SANDBOX_API_WATCH_H

#include "api.h"

api_route_fn api_files_watch;   /* GET /files/watch: WebSocket upgrade, else SSE */

#endif
