/* The agent-held environment: variables a client set with PUT/PATCH /env, applied to every
 * process started afterwards, under the request's own env. Precedence, highest first: the
 * request's env, the agent-held set, the environment the agent inherited (less its private
 * SANDBOX_AGENT_* settings). After a replace (PUT) the inherited environment stops applying:
 * the set is then the whole base, which is what "replace all" means to the SDKs.
 * The module owns its strings: one block per set, swapped whole on each change. */
#ifndef SANDBOX_ENVSET_H
#define SANDBOX_ENVSET_H
#include <stddef.h>

#define ENVSET_DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

enum envset_error {
    ENVSET_E_KEY = -1,     /* an entry is not "K=V" with a non-empty K */
    ENVSET_E_COUNT = -2,   /* the resulting set would pass LIMIT_ENV_VARS */
    ENVSET_E_BYTES = -3,   /* ... or LIMIT_ENV_BYTES ("K=V\0" bytes) */
    ENVSET_E_NOMEM = -4,
};

/* 1 when key[0..len) can name a variable: non-empty, no '=' and no NUL. */
int envset_key_ok(const char *key, size_t len);

/* Applies kv[0..n), each "K=V" (copied). replace: they become the whole set and the inherited
 * environment stops applying; else they are merged over the current set. A later duplicate
 * key wins. All or nothing: returns 0, or an envset_error with the set unchanged. */
int envset_update(char *const *kv, size_t n, int replace);
/* Removes one variable (NUL-terminated key) from what new processes get. One the agent holds
 * is dropped from the set; one inherited (while inheriting) can only go by no longer
 * inheriting, so the rest of the visible environment becomes the whole set, as if PUT.
 * Returns 1 removed, 0 it was not set (nothing changes), or an envset_error. */
int envset_remove(const char *key);
/* Drops the agent-held set: new processes start with the inherited environment again. */
void envset_clear(void);

size_t envset_count(void);     /* variables in the agent-held set */
int envset_replaced(void);     /* 1 after a replace: the inherited environment is not used */

/* Entries envset_base may write, not counting the terminating NULL. */
size_t envset_base_max(void);
/* The base environment of a new process into out (envset_base_max() + 1 entries): inherited
 * variables (unless replaced) not set by the agent, then the agent-held set, then PATH with
 * ENVSET_DEFAULT_PATH when nothing set one. Entries whose key is in skip (a NULL-terminated
 * "K=V" list, may be NULL: the request's own env) are left out, for the caller to append.
 * NULL-terminates and returns the count. The pointers stay valid until the next
 * envset_update or envset_clear. */
size_t envset_base(char **out, char *const *skip);

#endif
