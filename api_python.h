/* The Python session endpoints: POST /execute/ipython, GET /jupyter/sessions and
 * DELETE /jupyter/sessions/{id}. Routed from api.c; the sessions live in pysession.c. */
#ifndef SANDBOX_API_PYTHON_H
#define SANDBOX_API_PYTHON_H
#include <stddef.h>

#include "api.h"

/* Runs code in a session's interpreter; returns SERVER_PARKED until it answers. */
int api_python_execute(const struct api_ctx *c, struct server_request *req,
                       struct server_reply *rep, const char *param, size_t param_len);
int api_python_sessions(const struct api_ctx *c, struct server_request *req,
                        struct server_reply *rep, const char *param, size_t param_len);
int api_python_delete(const struct api_ctx *c, struct server_request *req,
                      struct server_reply *rep, const char *param, size_t param_len);

#endif
