/* The HopX files endpoints (/files/...): a front-end over files.c. Uploads stream from the
 * socket to disk through the server's body hook; downloads go out with sendfile. */
#ifndef SANDBOX_API_FILES_H
#define SANDBOX_API_FILES_H
#include <stddef.h>

#include "api.h"
#include "server.h"

/* Sets up files.c (root: --files-root or NULL; the workdir) and installs api.c's body
 * hook. Returns 0, or -1 with a message on stderr. */
int api_files_init(const char *root, const char *workdir);

/* For api.c's body hook: an upload request (POST/PUT /files/upload, authorized) starts
 * streaming. Returns SERVER_STREAM with sink filled, or SERVER_ANSWERED with an error in
 * rep. */
int api_files_upload_stream(const struct api_ctx *c, struct server_request *req,
                            struct server_reply *rep, struct server_sink *sink);

/* Route handlers (api.c's table), each answering rep. */
int api_files_read(const struct api_ctx *c, struct server_request *req, struct server_reply *rep,
                   const char *param, size_t param_len);
int api_files_download(const struct api_ctx *c, struct server_request *req, struct server_reply *rep,
                       const char *param, size_t param_len);
int api_files_write(const struct api_ctx *c, struct server_request *req, struct server_reply *rep,
                    const char *param, size_t param_len);
int api_files_upload(const struct api_ctx *c, struct server_request *req, struct server_reply *rep,
                     const char *param, size_t param_len);
int api_files_list(const struct api_ctx *c, struct server_request *req, struct server_reply *rep,
                   const char *param, size_t param_len);
int api_files_exists(const struct api_ctx *c, struct server_request *req, struct server_reply *rep,
                     const char *param, size_t param_len);
int api_files_stat(const struct api_ctx *c, struct server_request *req, struct server_reply *rep,
                   const char *param, size_t param_len);
int api_files_remove(const struct api_ctx *c, struct server_request *req, struct server_reply *rep,
                     const char *param, size_t param_len);
int api_files_mkdir(const struct api_ctx *c, struct server_request *req, struct server_reply *rep,
                    const char *param, size_t param_len);
int api_files_move(const struct api_ctx *c, struct server_request *req, struct server_reply *rep,
                   const char *param, size_t param_len);

#endif
