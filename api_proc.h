/* The process endpoints: background and synchronous runs of commands and code, listing,
 * output, kill and forget. Routed from api.c; records live in proc.c. */
#ifndef SANDBOX_API_PROC_H
#define SANDBOX_API_PROC_H
#include <stddef.h>

#include "agent.h"
#include "server.h"

/* Each answers rep (status + JSON body). param is the {id} path segment, if any.
 * The synchronous ones may return SERVER_PARKED. */
int api_commands_background(struct agent *a, struct server_request *req, struct server_reply *rep,
                            const char *param, size_t param_len);
int api_execute_background(struct agent *a, struct server_request *req, struct server_reply *rep,
                           const char *param, size_t param_len);
int api_commands_run(struct agent *a, struct server_request *req, struct server_reply *rep,
                     const char *param, size_t param_len);
int api_execute_run(struct agent *a, struct server_request *req, struct server_reply *rep,
                    const char *param, size_t param_len);
int api_processes_list(struct agent *a, struct server_request *req, struct server_reply *rep,
                       const char *param, size_t param_len);
int api_process_get(struct agent *a, struct server_request *req, struct server_reply *rep,
                    const char *param, size_t param_len);
int api_process_output(struct agent *a, struct server_request *req, struct server_reply *rep,
                       const char *param, size_t param_len);
int api_process_forget(struct agent *a, struct server_request *req, struct server_reply *rep,
                       const char *param, size_t param_len);
int api_kill_body(struct agent *a, struct server_request *req, struct server_reply *rep,
                  const char *param, size_t param_len);
int api_kill_path(struct agent *a, struct server_request *req, struct server_reply *rep,
                  const char *param, size_t param_len);

#endif
