/* The process endpoints: background and synchronous runs of commands and code, listing,
 * output, kill and forget. Routed from api.c; records live in proc.c. */
#ifndef SANDBOX_API_PROC_H
#define SANDBOX_API_PROC_H
#include <stddef.h>

#include "api.h"

/* Each answers rep (status + JSON body). param is the {id} path segment, if any.
 * The synchronous ones may return SERVER_PARKED. */
/* The languages whose interpreter is on the PATH a new process gets, as a JSON array of
 * their names ("python", "javascript", ...), for /health. */
void api_proc_languages(struct buf *b);

api_route_fn api_commands_background;
api_route_fn api_execute_background;
api_route_fn api_commands_run;
api_route_fn api_execute_run;
api_route_fn api_processes_list;
api_route_fn api_process_get;
api_route_fn api_process_output;
api_route_fn api_process_forget;
api_route_fn api_kill_body;
api_route_fn api_kill_path;

/* Webhooks (issue 16): POST /execute/async, and the payload hook.c POSTs for a record. */
int api_execute_async(const struct api_ctx *c, struct server_request *req, struct server_reply *rep,
                      const char *param, size_t param_len);
struct buf;
struct proc;
int api_hook_payload(const struct proc *p, struct buf *b);

#endif
