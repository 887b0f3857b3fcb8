/* stdin and terminals over HTTP: feeding a process's stdin, closing it, resizing its
 * terminal. Routed from api.c; the bytes go through proc.h (proc_stdin_write,
 * proc_stdin_close, proc_resize), which every front-end shares. */
#ifndef SANDBOX_API_TERM_H
#define SANDBOX_API_TERM_H
#include <stddef.h>

#include "api.h"

/* POST /execute/processes/{id}/stdin: the raw body, or with a JSON content type
 * {data, encoding?: "utf-8"|"base64", close?}; ?close=true closes stdin after. */
api_route_fn api_process_stdin;
/* POST /execute/processes/{id}/stdin/close */
api_route_fn api_process_stdin_close;
/* POST /execute/processes/{id}/resize {cols, rows} */
api_route_fn api_process_resize;

#endif
