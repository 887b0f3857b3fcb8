/* The process endpoints: background and synchronous runs of commands and code, listing,
 * output, kill and forget. Routed from api.c; records live in proc.c. */
#ifndef SANDBOX_API_PROC_H
#define SANDBOX_API_PROC_H
#include <stddef.h>
#include <stdint.h>

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

/* For the live streams (api_stream.c), which start and render records as these routes do. */
struct proc;
struct buf;
/* Decodes req's body as POST /execute/background (is_code) or /commands/background does,
 * and starts the record. Returns it, or NULL after answering rep with the error. */
struct proc *api_proc_start(const struct api_ctx *c, struct server_request *req,
                            struct server_reply *rep, int is_code, int64_t dflt_timeout);
/* The record as GET /execute/processes/{id} renders it (with_output 0: as ?output=false). */
void api_proc_record(struct buf *b, struct proc *p, int with_output);

#endif
