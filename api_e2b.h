/* E2B's in-sandbox daemon protocol (envd 0.6; ../shared/E2B.md has the wire facts) on its own
 * listener (--e2b-listen): Connect RPC with the JSON codec over HTTP/1.1 for process.Process
 * and filesystem.Filesystem, and GET/POST /files, GET /health. A thin front-end: processes
 * are proc.c records (the HopX routes see them too), files go through files.c, watches
 * through watch.c.
 *
 * api_e2b.c routes, authenticates and holds what the three files share (below);
 * api_e2b_proc.c is process.Process, api_e2b_fs.c filesystem.Filesystem and /files. */
#ifndef SANDBOX_API_E2B_H
#define SANDBOX_API_E2B_H
#include <stddef.h>
#include <stdint.h>

#include "api.h"
#include "files.h"
#include "runas.h"

/* Reads the optional access token (token_file NULL: none; a trailing newline dropped).
 * c lives as long as the agent. Returns 0, or -1 after printing why. */
int api_e2b_init(const struct api_ctx *c, const char *token_file);

/* The second listener's handler and body hook (server_listen_second); ctx unused. */
int api_e2b_handle(void *ctx, struct server_request *req, struct server_reply *rep);
int api_e2b_body_hook(void *ctx, struct server_request *req, struct server_reply *rep,
                      struct server_sink *sink);

/* ---- shared by api_e2b*.c ---- */

/* A Connect call's decoded request and who makes it. */
struct e2b_call {
    const struct api_ctx *c;
    struct server_request *req;
    struct server_reply *rep;
    const char *json;             /* the request message (unwrapped from its envelope) */
    size_t json_len;
    int stream;                   /* server-streaming: errors go in an end-stream envelope */
    char user[64];                /* from Authorization: Basic, else the agent's own user */
    char home[PATH_MAX];          /* that user's home (or the workdir when it has none) */
    int switch_user;              /* processes run as user (api_proc's `user`) */
    const struct runas_user *owner;  /* owns what files calls create; NULL: the agent */
    struct runas_user as;         /* the user looked up (owner points here) */
};

typedef int e2b_method_fn(struct e2b_call *k);

/* Answers a Connect error: unary with the code's HTTP status, streaming as a 200 whose only
 * envelope is the end-stream one carrying the error. Returns 0 (a handler's return). */
int e2b_error(struct e2b_call *k, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* errno of a files.h call (or watch_open) as a Connect error about path. Returns 0. */
int e2b_errno(struct e2b_call *k, int err, const char *path);
/* Decodes the request message by table t into out (strings in ar, which the caller opened
 * with DECODE_ARENA_FOR(k->json_len) and closes). Returns 0, or -1 after answering
 * invalid_argument. */
int e2b_decode(struct e2b_call *k, const struct decode_table *t, struct decode_arena *ar,
               void *out);
/* Unary success: rep becomes 200 application/json with the body in b (taken by copy). */
void e2b_reply(struct e2b_call *k, const char *json, size_t len);

/* A client path made absolute: "" and "~" are the home, "~/x" and relative paths are taken
 * from it. out has PATH_MAX bytes. Returns 0, or -1 when too long. */
int e2b_path(const char *home, const char *in, char *out);

/* Standard base64 (with padding) of p[0..n) appended to b. */
void e2b_b64_put(struct buf *b, const unsigned char *p, size_t n);
/* Decodes standard or URL-safe base64 (padding optional) in place. Returns the length, or
 * -1 when malformed. */
long e2b_b64_decode(char *s, size_t n);

/* The Keepalive-Ping-Interval of a streaming request in microseconds (absent, zero or
 * malformed: LIMIT_E2B_KEEPALIVE_S). */
int64_t e2b_keepalive_us(const struct server_request *req);

/* Takes the connection of a streaming call over (server.h takeover): 200
 * application/connect+json, close-delimited; owner->take follows with the fd. Returns
 * SERVER_TAKEN. */
int e2b_stream_take(struct e2b_call *k, const struct server_owner *owner, void *ctx);

/* Writes one envelope (flags 0 or CONNECT_FLAG_END) holding json[0..len) to w (wsconn.h,
 * bare mode). Returns as wsconn_sendv. */
struct wsconn;
int e2b_stream_send(struct wsconn *w, unsigned flags, const char *json, size_t len);
/* The end-stream envelope: {} or {"error":{"code","message"}} (code NULL: none), then the
 * connection ends. Returns as wsconn_sendv. */
int e2b_stream_end(struct wsconn *w, const char *code, const char *msg);

/* EntryInfo of e (files.h) as a JSON object. */
void e2b_put_entry(struct buf *b, const struct files_entry *e);

/* The methods (api_e2b_proc.c, api_e2b_fs.c). */
e2b_method_fn e2b_proc_start, e2b_proc_connect, e2b_proc_list, e2b_proc_send_input,
    e2b_proc_send_signal, e2b_proc_close_stdin, e2b_proc_update;
e2b_method_fn e2b_fs_stat, e2b_fs_list_dir, e2b_fs_make_dir, e2b_fs_move, e2b_fs_remove,
    e2b_fs_watch_dir, e2b_fs_create_watcher, e2b_fs_get_watcher_events,
    e2b_fs_remove_watcher;

/* GET /files and the POST /files body hook (api_e2b_fs.c). home: the caller's home; owner:
 * who owns what an upload creates (NULL: the agent); a gzip body inflates to at most
 * c->gzip_limit bytes. */
int e2b_files_get(struct server_request *req, struct server_reply *rep, const char *home);
int e2b_files_post(const struct api_ctx *c, struct server_request *req,
                   struct server_reply *rep, struct server_sink *sink, const char *home,
                   const struct runas_user *owner);
/* Answers a /files error: {"code": status, "message"}. */
void e2b_files_error(struct server_reply *rep, int status, const char *msg);

#endif
