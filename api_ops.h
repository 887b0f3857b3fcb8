/* The operator endpoints: the agent-held environment (/env), metrics (/metrics and
 * /metrics/snapshot), the VM's process list (/processes), and the process lifecycle log
 * lines. Routed from api.c; state lives in envset.c, metrics.c, proc.c and sysinfo.c. */
#ifndef SANDBOX_API_OPS_H
#define SANDBOX_API_OPS_H
#include <stddef.h>

#include "api.h"

/* Starts the lifecycle log (a proc.h observer) and takes the first CPU sample. */
void api_ops_init(void);

/* Each answers rep (status + body); param is unused. */
api_route_fn api_env_get;
api_route_fn api_env_put;
api_route_fn api_env_patch;
api_route_fn api_env_delete;
api_route_fn api_env_delete_key;   /* DELETE /env/{key} */
api_route_fn api_cache_get;     /* GET /cache, GET /cache/stats */
api_route_fn api_cache_clear;   /* POST /cache/clear */
api_route_fn api_metrics_snapshot;
api_route_fn api_metrics_prometheus;
api_route_fn api_system_processes;

#endif
