/* The HopX files endpoints (/files/...): a front-end over files.c. Uploads stream from the
 * socket to disk through the server's body hook; downloads go out with sendfile. */
#ifndef SANDBOX_API_FILES_H
#define SANDBOX_API_FILES_H
#include <stddef.h>

#include "agent.h"
#include "server.h"

/* Sets up files.c (--files-root, the workdir). Returns 0, or -1 with a message on stderr. */
int api_files_init(const struct agent *a);

/* For api.c's body hook: an upload request (POST/PUT /files/upload, authorized) starts
 * streaming. Returns SERVER_STREAM with sink filled, or SERVER_ANSWERED with an error in
 * rep. */
int api_files_upload_stream(struct agent *a, struct server_request *req,
                            struct server_reply *rep, struct server_sink *sink);

/* Route handlers (api.c's table), each answering rep. */
int api_files_read(struct agent *a, struct server_request *req, struct server_reply *rep,
                   const char *param, size_t param_len);
int api_files_download(struct agent *a, struct server_request *req, struct server_reply *rep,
                       const char *param, size_t param_len);
int api_files_write(struct agent *a, struct server_request *req, struct server_reply *rep,
                    const char *param, size_t param_len);
int api_files_upload(struct agent *a, struct server_request *req, struct server_reply *rep,
                     const char *param, size_t param_len);
int api_files_list(struct agent *a, struct server_request *req, struct server_reply *rep,
                   const char *param, size_t param_len);
int api_files_exists(struct agent *a, struct server_request *req, struct server_reply *rep,
                     const char *param, size_t param_len);
int api_files_stat(struct agent *a, struct server_request *req, struct server_reply *rep,
                   const char *param, size_t param_len);
int api_files_remove(struct agent *a, struct server_request *req, struct server_reply *rep,
                     const char *param, size_t param_len);
int api_files_mkdir(struct agent *a, struct server_request *req, struct server_reply *rep,
                    const char *param, size_t param_len);
int api_files_move(struct agent *a, struct server_request *req, struct server_reply *rep,
                   const char *param, size_t param_len);

#endif
