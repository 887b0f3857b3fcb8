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

/* Webhooks (hook.c, resolve.c, dns.c) */
#define LIMIT_DNS_ADDRS        8         /* addresses kept per answer: connect tries the first */
#define LIMIT_DNS_RECORDS      64        /* answer records read; real answers have a handful */
#define LIMIT_DNS_CNAMES       8         /* CNAME links followed; resolvers stop near 8-16 */
#define LIMIT_DNS_POINTERS     32        /* compression jumps per name (backwards-only anyway) */
#define LIMIT_DNS_MSG          1232      /* UDP answer read (the EDNS-safe size; we send no EDNS: 512) */
#define LIMIT_DNS_TRY_MS       2000      /* one query to one nameserver (resolv.conf's timeout:) */
#define LIMIT_DNS_ROUNDS       2         /* passes over the nameservers (resolv.conf's attempts:) */
#define LIMIT_DNS_SERVERS      3         /* nameserver lines used (glibc's MAXNS) */
#define LIMIT_HOSTS_BYTES      (64u << 10) /* /etc/hosts read; a VM's is a few lines */
#define LIMIT_CA_FILE_BYTES    (4u << 20)  /* CA bundle; Debian's is ~220 KiB */
#define LIMIT_TLS_CERT         16384     /* end-entity certificate kept for an IP-address match */
#define LIMIT_TLS_OUT          4096      /* TLS output record size: our requests are small */
#define LIMIT_TIMEOUT_ASYNC_S  3600      /* default timeout of POST /execute/async (API.md) */
#define LIMIT_HOOK_ACTIVE      16        /* deliveries at once (API.md); the rest wait in order */
#define LIMIT_HOOK_ATTEMPTS    8         /* then the delivery fails for good */
#define LIMIT_HOOK_BACKOFF_MS  1000      /* first retry delay, doubled per attempt up to 64x */
#define LIMIT_HOOK_BACKOFF_MAX 64        /* ... capped at this many first delays */
#define LIMIT_HOOK_CONNECT_MS  10000     /* name lookup + TCP connect (API.md) */
#define LIMIT_HOOK_TOTAL_MS    30000     /* a whole attempt: connect, TLS, request, answer */
#define LIMIT_HOOK_URL         2048      /* callback_url bytes; browsers' practical limit */
#define LIMIT_HOOK_HEADERS     32        /* callback_headers entries */
#define LIMIT_HOOK_HEADER_BYTES 8192     /* callback_headers names + values */
#define LIMIT_HOOK_SECRET      4096      /* callback_signature_secret bytes, as LIMIT_SECRET_BYTES */
#define LIMIT_HOOK_HEAD        8192      /* response status line + headers read; we need the status */
#define LIMIT_HOOK_DRAIN       (64u << 10) /* response body read and dropped, then we close anyway */
#define LIMIT_HOOK_PAYLOAD     (16u << 20) /* rendered payload: 2 x 1 MiB output, escaped */
#define LIMIT_HOOK_PENDING     4096      /* unsettled deliveries: each pins its record past
                                          * --max-records; more are refused with 503 */

/* SDK parity (issue 12) */
#define LIMIT_ENV_KEY_BYTES    1024         /* a key in DELETE /env/{key}: longer ones are no
                                             * name anyone sets (the path fits 8 KiB anyway) */

/* Live streams (WebSocket, Server-Sent Events, long poll, file watching) */
#define LIMIT_WS_MESSAGE       (1u << 20)   /* a client message; larger ones are closed with 1009 */
#define LIMIT_WS_PING_MS       30000        /* WebSocket keepalive ping */
#define LIMIT_WS_IDLE_MS       75000        /* nothing from the client, not even a pong, for 2.5 pings: gone */
#define LIMIT_WS_CLOSE_MS      2000         /* after our close frame or last SSE event: the client's close/EOF */
#define LIMIT_SSE_PING_MS      15000        /* ": ping" comment: proxies drop silent streams at 30-60 s */
#define LIMIT_STREAM_CHUNK     65536        /* output bytes per event: one pipe read's worth */
#define LIMIT_STREAM_FIRST_MS  30000        /* WS /execute/stream: the execute message comes within this */
#define LIMIT_SDK_GAP_MS       5            /* WS /execute/stream: between frames; the TS SDK keeps only the
                                             * first of several frames that arrive in one TCP read */
#define LIMIT_WAIT_S           300          /* GET /execute/processes/{id}?wait= at most */
#define LIMIT_WATCH_DIRS       8192         /* directories one file watch follows (inotify watches) */
#define LIMIT_WATCH_EVENTS     256          /* change events queued per watch client; more is one OVERFLOW */
#define LIMIT_SDK_REPEAT_MS    100          /* WS /execute/stream: "complete" again until the client
                                             * closes (the SDK hangs for good when it loses it) */
#define LIMIT_SDK_REPEATS      30           /* ... at most this often, then the server closes */

/* stdin and terminals */
#define LIMIT_STDIN_PENDING    (1u << 20)   /* stdin bytes queued per process: past it a write
                                             * is refused (429) until the child reads */
#define LIMIT_PTY_COLS_DEFAULT 80           /* a terminal's size when the client gives none */
#define LIMIT_PTY_ROWS_DEFAULT 24
#define LIMIT_TERMINALS        256          /* WS /terminal sessions open at once (each a shell) */
#define LIMIT_TERM_KEEP_S      300          /* an unattached session waits this long for its
                                             * client (--terminal-keep), then is hung up */
#define LIMIT_TERM_CHUNK       65536        /* output bytes per terminal message */

/* Files (files.c, multipart.c, api_files.c) */
#define LIMIT_FILES_LIST       10000        /* entries one listing returns, then truncated:
                                             * ~2.5 MiB of JSON, listed in well under 50 ms */
#define LIMIT_FILES_LIST_BYTES (4u << 20)   /* relative names kept while sorting a listing */
#define LIMIT_FILES_DEPTH      32           /* ?depth= of a listing; levels a recursive remove
                                             * or copy descends (one descriptor per level) */
#define LIMIT_FILES_READ       (64u << 20)  /* /files/read answers in JSON; bigger is 413,
                                             * /files/download streams any size */
#define LIMIT_FILES_IO         (256u << 10) /* upload read buffer per streaming connection:
                                             * 20 uploads at once hold 5 MiB */
#define LIMIT_FILES_SEND       (8u << 20)   /* sendfile bytes per loop round for one reply, so
                                             * a fast reader does not starve the others */
#define LIMIT_MULTIPART_HEADER 8192         /* one part's header section; browsers send ~200 */
#define LIMIT_MULTIPART_NAME   1024         /* a part's name or filename parameter */
#define LIMIT_MULTIPART_BOUNDARY 70         /* RFC 2046 5.1.1 */

/* Idempotency-Key (idem.c): answers kept so a repeated start request is answered, not re-run */
#define LIMIT_IDEM_TTL_MS      (10 * 60 * 1000) /* how long a key is remembered: the SDKs retry
                                                 * within seconds; ten minutes covers a client
                                                 * that times out a long synchronous run */
#define LIMIT_IDEM_KEYS        4096      /* keys kept; the oldest is forgotten first (a burst of
                                          * 4096 keyed starts in 10 min is ~7 a second) */
#define LIMIT_IDEM_KEY_BYTES   255       /* the header's value (Stripe's limit; UUIDs are 36) */
#define LIMIT_IDEM_REPLY_BYTES (4u << 20) /* one kept answer: a sync run's two 1 MiB streams,
                                           * JSON-escaped; a larger one is not kept (409) */
#define LIMIT_IDEM_TOTAL_BYTES (64u << 20) /* all kept answers; past it the oldest go first */

/* Python sessions (pysession.c, api_python.c) */
#define LIMIT_PY_SESSIONS      8            /* interpreters at once (--python-sessions): each
                                             * holds 10-60 MB, more with data loaded */
#define LIMIT_PY_IDLE_S        1800         /* a session unused this long ends (--python-idle) */
#define LIMIT_PY_QUEUE         16           /* calls waiting per session; more get 429 */
#define LIMIT_PY_TIMEOUT_S     60           /* default timeout of a call (the SDK's) */
#define LIMIT_PY_GRACE_MS      3000         /* timeout's SIGINT -> kill and restart */
#define LIMIT_PY_START_MS      30000        /* an interpreter must be ready within this (IPython
                                             * imports take ~1 s, on a busy VM far more) */
#define LIMIT_PY_REPLY_BYTES   (64u << 20)  /* one driver reply: figures travel as base64 */
#define LIMIT_PY_REPLY_TOKENS  65536        /* values in one reply (a _repr_json_ is user data) */
#define LIMIT_PY_FRAME_BYTES   (64u << 20)  /* one call frame: 8 MiB of code, escaped */

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
/* E2B's protocol (api_e2b*.c, --e2b-listen) */
#define LIMIT_E2B_KEEPALIVE_S  50           /* keepalive event when a stream idles this long and
                                             * the client named no Keepalive-Ping-Interval (the
                                             * SDK sends 50; it aborts silent bodies at 300 s) */
#define LIMIT_E2B_METADATA     8192         /* X-Metadata-* headers of one upload (as xattrs) */
#define LIMIT_E2B_WATCHERS     64           /* CreateWatcher watchers at once: each holds an
                                             * inotify instance (default max_user_instances 128) */
/* Files, second pass (hfiles2) */
#define LIMIT_BUF_SPARE        (8u << 20)   /* one large freed buf kept for the next large one
                                             * (buf.c): a 10 000-entry listing is 3-4 MB, and
                                             * faulting fresh pages in was a third of its time */

/* Spawning (proc.c) */
#define LIMIT_STARTS_PER_ROUND 2            /* queued records started per loop round: each spawn
                                             * holds the loop until its child has exec'd (~1 ms) */
/* gzip uploads (inflate.c; --gzip-limit) */
#define LIMIT_GZIP_INFLATED    (4ll << 30)  /* bytes one Content-Encoding: gzip upload may
                                             * inflate to: deflate reaches ~1000:1, so a 4 MiB
                                             * bomb would otherwise fill 4 GiB of disk; 413 */
#define LIMIT_GZIP_CHUNK       (16u << 10)  /* inflated bytes per write to the file */

#endif
