/* The operator endpoints: the agent-held environment (/env), metrics (/metrics and
 * /metrics/snapshot), the VM's process list (/processes), and the process lifecycle log
 * lines. Routed from api.c; state lives in envset.c, metrics.c, proc.c and sysinfo.c. */
#ifndef SANDBOX_API_OPS_H
#define SANDBOX_API_OPS_H
#include <stddef.h>

#include "agent.h"
#include "server.h"

/* Starts the lifecycle log (a proc.h observer) and takes the first CPU sample. */
void api_ops_init(void);

/* Each answers rep (status + body); param is unused. */
int api_env_get(struct agent *a, struct server_request *req, struct server_reply *rep,
                const char *param, size_t param_len);
int api_env_put(struct agent *a, struct server_request *req, struct server_reply *rep,
                const char *param, size_t param_len);
int api_env_patch(struct agent *a, struct server_request *req, struct server_reply *rep,
                  const char *param, size_t param_len);
int api_env_delete(struct agent *a, struct server_request *req, struct server_reply *rep,
                   const char *param, size_t param_len);
int api_metrics_snapshot(struct agent *a, struct server_request *req, struct server_reply *rep,
                         const char *param, size_t param_len);
int api_metrics_prometheus(struct agent *a, struct server_request *req,
                           struct server_reply *rep, const char *param, size_t param_len);
int api_system_processes(struct agent *a, struct server_request *req, struct server_reply *rep,
                         const char *param, size_t param_len);

#endif
