/* The agent's configuration and state, owned by agent.c. The request handlers never see this
 * struct: main hands them a struct api_ctx (api.h). */
#ifndef SANDBOX_AGENT_H
#define SANDBOX_AGENT_H
#include <stddef.h>
#include <stdint.h>

#include "api.h"
#include "secret.h"

struct config {
    const char *listen;        /* HOST:PORT as given */
    const char *workdir;
    const char *secret_file;
    const char *jwt_audience;  /* NULL: not checked */
    const char *jwt_subject;   /* NULL: not checked */
    long jwt_prev_grace_s;     /* after a SIGHUP rotation, the old secret still admits this long */
    const char *log_format;    /* "logfmt" (default) or "json" */
    int no_auth;
    long max_running;
    long max_records;
    long output_limit;         /* bytes kept per stream */
    long output_budget;        /* bytes kept over all records */
    long grace_s;
    const char *ca_file;       /* webhooks: PEM trust anchors for https callbacks */
    long hook_backoff_ms;      /* webhooks: first retry delay (tests shorten it) */
    long hook_timeout_ms;      /* webhooks: one attempt's deadline (tests shorten it) */
    const char *resolv_conf;   /* webhooks: nameservers (default /etc/resolv.conf) */
    const char *hosts_file;    /* webhooks: names before DNS (default /etc/hosts) */
    long terminal_keep_s;      /* WS /terminal: an unattached session is hung up after this */
    int init_mode;             /* --init: bring the system up as a VM's /sbin/init */
    const char *hostname;      /* --hostname: set at start; NULL: left alone */
    long python_sessions;      /* Python interpreters alive at once (pysession.h) */
    long python_idle_s;        /* an unused Python session ends after this long */
    const char *files_root;    /* --files-root: file endpoints confined beneath it */
    const char *modules;       /* --modules: a file listing kernel modules to load; NULL: none */
    const char *net;           /* --net IFACE=ADDR/PREFIX[,gw=GW][,mtu=N]; NULL: none */
    const char *dns;           /* --dns: nameserver for /etc/resolv.conf; NULL: left alone */
    int no_cgroups;            /* --no-cgroups: process groups only (cgroup.h) */
    const char *default_user;  /* --default-user: runs without `user` run as it; NULL: root */
    const char *e2b_listen;    /* --e2b-listen: E2B's envd protocol there; NULL: off */
    const char *e2b_token_file;/* --e2b-token-file: the X-Access-Token it wants */
    long gzip_limit;           /* --gzip-limit: bytes a gzip upload may inflate to */
};

struct agent {
    struct config cfg;
    struct secret_keys keys;
    struct api_ctx api;        /* what the request handlers see (filled in main) */
    char listen_addr[80];      /* what we bound, "127.0.0.1:7777" */
    int64_t start_wall_ms;
    int64_t start_mono_us;
    int stopping;              /* SIGTERM/SIGINT: 1 TERM sent, draining; 2 KILL sent, reaping */
    int64_t stop_deadline_us;  /* end of the current stopping phase (monotonic) */
    int pid1;                  /* 1: PID 1, reaper of the namespace; 0: subreaper; -1: neither */
};

#endif
