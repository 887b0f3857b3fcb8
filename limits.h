/* Every bound the agent enforces, each with the reason for its number.
 * Flags may override the process limits; a peer never can. */
#ifndef SANDBOX_LIMITS_H
#define SANDBOX_LIMITS_H

/* HTTP */
#define LIMIT_CONNECTIONS      1024      /* client slots; beyond this, accept waits (backlog) */
#define LIMIT_HEADER_BYTES     16384     /* request line + headers; nginx's large buffer is 8K x4 */
#define LIMIT_HEADERS          64        /* header lines per request; SDKs send < 15 */
#define LIMIT_URI_BYTES        8192      /* request-target; RFC 9112 3 suggests >= 8000 */
#define LIMIT_BODY_BYTES       (8u << 20) /* JSON request body: code files up to 8 MiB */
#define LIMIT_BODY_TOTAL       (64u << 20) /* bodies buffered over all connections: read before
                                          * auth, so anyone could otherwise pin 1024 x 8 MiB */
#define LIMIT_CHUNK_TRAILER    4096      /* bytes of chunked trailer section we skip */
#define LIMIT_RESPONSE_BYTES   (768u << 20) /* one response: a full record list at the default budget */
#define LIMIT_REPLY_TOTAL      (512u << 20) /* large replies held over all connections: past it
                                             * (and one always allowed), large GETs get 503 */
#define LIMIT_REQUEST_ID       64        /* echoed X-Request-ID, longer ones are replaced */

/* Deadlines, milliseconds */
#define LIMIT_HEADER_MS        10000     /* whole header block must arrive within this */
#define LIMIT_BODY_MS          60000     /* whole body must arrive within this */
#define LIMIT_IDLE_MS          60000     /* keep-alive connection with nothing to do */
#define LIMIT_WRITE_MS         60000     /* response writer making no progress */
#define LIMIT_LINGER_MS        2000      /* draining after a close so the peer sees our answer */

/* JSON */
#define LIMIT_JSON_DEPTH       64        /* requests nest 3 deep; deep input is an attack */
#define LIMIT_JSON_TOKENS      65536     /* an env object of 16k pairs at most */

/* JWT */
#define LIMIT_TOKEN_BYTES      4096      /* a bearer token; ours are ~200 bytes */
#define LIMIT_JWT_LEEWAY_S     60        /* clock skew tolerated on exp/nbf/iat */
#define LIMIT_SECRET_BYTES     4096      /* HMAC key file */

/* Processes (defaults; flags override) */
#define LIMIT_MAX_RUNNING      128
#define LIMIT_MAX_RECORDS      1000
#define LIMIT_OUTPUT_BYTES     (1u << 20)   /* kept per stream per process */
#define LIMIT_OUTPUT_BUDGET    (256u << 20) /* kept output over all records */
#define LIMIT_GRACE_S          5            /* SIGTERM -> SIGKILL */
#define LIMIT_STOP_KILL_MS     3000         /* shutdown after SIGKILL: reap, last answers (and their linger) */
#define LIMIT_TIMEOUT_BG_S     300          /* default timeout, background */
#define LIMIT_TIMEOUT_SYNC_S   30           /* default timeout, synchronous */
#define LIMIT_TIMEOUT_MAX_S    (7 * 86400)  /* larger timeouts are a client bug */
#define LIMIT_ENV_VARS         1024         /* variables per request or agent env */
#define LIMIT_ENV_BYTES        (128u << 10) /* agent env "K=V" bytes: execve takes no string over 128 KiB */
#define LIMIT_ARGS             4096         /* argv entries for command+args */
#define LIMIT_PIPE_READ        65536        /* bytes read from a pipe per poll round */
#define LIMIT_RECORD_CACHE     16384        /* a finished record's JSON kept ready (both forms);
                                             * bigger ones are rendered per request */

/* Operator surface */
#define LIMIT_SYS_PROCESSES    32768        /* entries GET /processes lists: the default pid_max */
#define LIMIT_CMDLINE_BYTES    4096         /* command line bytes reported per system process */
#define LIMIT_PASSWD_BYTES     (256u << 10) /* /etc/passwd read for user names; a VM's is ~2 KiB */

/* VM init (--modules, --net) */
#define LIMIT_MODULES_LIST_BYTES (64u << 10) /* --modules FILE; a VM's NIC chain is ~250 bytes */
#define LIMIT_NET_WAIT_MS      10000        /* --net waits this long for its interface: a NIC
                                             * driver may register it after its module loads */

/* Process control (cgroup.c) */
#define LIMIT_CGROUP_LINGER    256          /* records' cgroups kept for removal while processes
                                             * they left behind run; past it they just stay */
#define LIMIT_MEMORY_MIN       (1u << 20)   /* memory_bytes below this would OOM at exec */
#define LIMIT_CGROUP_RETRY_MS  1000         /* a busy cgroup's removal is retried this often */
#define LIMIT_CGROUP_SPARES    2            /* cgroups made ahead of time: a burst of starts
                                             * past it makes them on the request's path */

#endif
