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

/* A control message from a WebSocket client of process p (the process stream, WS
 * /terminal): {type:"stdin"|"input", data, encoding?: "utf-8"|"base64"},
 * {type:"stdin_close"}, {type:"signal", signal} (as the kill endpoints), {type:"resize",
 * cols, rows}. Returns NULL when applied, or an error code ("INVALID_REQUEST", "STDIN_FULL"...)
 * with a message for the client in err[0..cap). */
struct proc;
const char *api_term_control(struct proc *p, const char *data, size_t len, char *err,
                             size_t cap);
/* The error code and message a client gets for an errno of proc_stdin_write, proc_stdin_close
 * or proc_resize. */
const char *api_term_errno_code(int err);
const char *api_term_errno_text(int err);

#endif
