/* stdin and terminals over HTTP: feeding a process's stdin, closing it, resizing its
 * terminal. Routed from api.c; the bytes go through proc.h (proc_stdin_write,
 * proc_stdin_close, proc_resize), which every front-end shares. */
#ifndef SANDBOX_API_TERM_H
#define SANDBOX_API_TERM_H
#include <stddef.h>

#include "agent.h"
#include "server.h"

/* POST /execute/processes/{id}/stdin: the raw body, or with a JSON content type
 * {data, encoding?: "utf-8"|"base64", close?}; ?close=true closes stdin after. */
int api_process_stdin(struct agent *a, struct server_request *req, struct server_reply *rep,
                      const char *param, size_t param_len);
/* POST /execute/processes/{id}/stdin/close */
int api_process_stdin_close(struct agent *a, struct server_request *req,
                            struct server_reply *rep, const char *param, size_t param_len);
/* POST /execute/processes/{id}/resize {cols, rows} */
int api_process_resize(struct agent *a, struct server_request *req, struct server_reply *rep,
                       const char *param, size_t param_len);

#endif
