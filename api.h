/* Request routing, authentication and the endpoint handlers' shared helpers. */
#ifndef SANDBOX_API_H
#define SANDBOX_API_H

#include "agent.h"
#include "json.h"
#include "server.h"

/* The server_handler: routes req (ctx is the struct agent). */
int api_handle(void *ctx, struct server_request *req, struct server_reply *rep);

/* The server's body hook (server_set_body_hook): uploads stream to disk, after the same
 * routing and authorization as any request; every other body is buffered. */
int api_body_hook(void *ctx, struct server_request *req, struct server_reply *rep,
                  struct server_sink *sink);

/* {"error": msg, "code": code, "request_id": ...} with status. */
void api_error(const struct server_request *req, struct server_reply *rep, int status,
               const char *code, const char *msg);

/* Parses req's body, which must be a JSON object (an empty body counts as {}).
 * Returns malloc'd tokens (the caller frees them), or NULL after answering 400
 * INVALID_JSON / INVALID_REQUEST, or 500 when out of memory. */
struct json_token *api_parse_body(const struct server_request *req, struct server_reply *rep);

#endif
