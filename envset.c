#include "envset.h"

#include <stdlib.h>
#include <string.h>

#include "limits.h"
#include "util.h"

extern char **environ;

#define HIDDEN_PREFIX "SANDBOX_AGENT_"   /* the agent's own settings (the secret!) stay private */

static char **vars;      /* one block: nvars + 1 pointers, then the strings; NULL when empty */
static size_t nvars;
static int replaced;

/* 1 when the "K=V" strings a and b name the same variable. */
static int same_key(const char *a, const char *b)
{
    size_t n = strcspn(a, "=");
    return strncmp(a, b, n) == 0 && b[n] == '=';
}

static int in_list(char *const *list, size_t n, const char *kv)
{
    for (size_t i = 0; i < n; i++)
        if (same_key(list[i], kv))
            return 1;
    return 0;
}

static int in_null_list(char *const *list, const char *kv)
{
    for (; list && *list; list++)
        if (same_key(*list, kv))
            return 1;
    return 0;
}

int envset_key_ok(const char *key, size_t len)
{
    return len > 0 && memchr(key, '=', len) == NULL && memchr(key, 0, len) == NULL;
}

int envset_update(char *const *kv, size_t n, int replace)
{
    for (size_t i = 0; i < n; i++) {
        const char *eq = strchr(kv[i], '=');
        if (!eq || eq == kv[i])
            return ENVSET_E_KEY;
    }
    /* the new set: kept old entries (merge only), then the new ones, the last duplicate
     * winning; counted before anything is copied so a refusal changes nothing */
    char **pick = malloc((nvars + n + 1) * sizeof *pick);
    if (!pick)
        return ENVSET_E_NOMEM;
    size_t k = 0, bytes = 0;
    for (size_t i = 0; !replace && i < nvars; i++)
        if (!in_list(kv, n, vars[i]))
            pick[k++] = vars[i];
    for (size_t i = 0; i < n; i++)
        if (!in_list(kv + i + 1, n - i - 1, kv[i]))
            pick[k++] = kv[i];
    for (size_t i = 0; i < k; i++)
        bytes += strlen(pick[i]) + 1;
    int rc = k > LIMIT_ENV_VARS ? ENVSET_E_COUNT : bytes > LIMIT_ENV_BYTES ? ENVSET_E_BYTES : 0;
    char **block = rc ? NULL : util_strv_dup(pick, k);
    free(pick);
    if (!rc && !block)
        rc = ENVSET_E_NOMEM;
    if (rc)
        return rc;
    free(vars);
    vars = block;
    nvars = k;
    replaced |= replace;
    return 0;
}

/* 1 when the "K=V" string kv names key (klen bytes). */
static int names(const char *kv, const char *key, size_t klen)
{
    return strncmp(kv, key, klen) == 0 && kv[klen] == '=';
}

int envset_remove(const char *key)
{
    size_t klen = strlen(key);
    if (!envset_key_ok(key, klen))
        return ENVSET_E_KEY;
    char **base = malloc((envset_base_max() + 1) * sizeof *base);
    if (!base)
        return ENVSET_E_NOMEM;
    int inherited = 0, held = 0;
    size_t n = envset_base(base, NULL), k = 0;
    for (size_t i = 0; i < n; i++)
        if (!names(base[i], key, klen))
            base[k++] = base[i];
    /* one the agent holds may also shadow an inherited one, which must not reappear */
    for (char **e = environ; !replaced && e && *e; e++)
        inherited |= names(*e, key, klen) &&
                     strncmp(*e, HIDDEN_PREFIX, sizeof HIDDEN_PREFIX - 1) != 0;
    for (size_t i = 0; i < nvars; i++)
        held |= names(vars[i], key, klen);
    int rc = 0;
    if (inherited) {
        /* an inherited variable can only go by no longer inheriting: the visible rest
         * becomes the whole set, as a PUT of it would */
        rc = envset_update(base, k, 1);
    } else if (held) {
        size_t m = 0;
        for (size_t i = 0; i < nvars; i++)
            if (!names(vars[i], key, klen))
                base[m++] = vars[i];
        char **block = m ? util_strv_dup(base, m) : NULL;
        if (m && !block) {
            rc = ENVSET_E_NOMEM;
        } else {
            free(vars);
            vars = block;
            nvars = m;
        }
    }
    free(base);
    return rc < 0 ? rc : (inherited || held);
}

void envset_clear(void)
{
    free(vars);
    vars = NULL;
    nvars = 0;
    replaced = 0;
}

size_t envset_count(void)
{
    return nvars;
}

int envset_replaced(void)
{
    return replaced;
}

size_t envset_base_max(void)
{
    size_t n = 0;
    while (environ && environ[n])
        n++;
    return n + nvars + 1;
}

size_t envset_base(char **out, char *const *skip)
{
    size_t k = 0;
    for (char **e = environ; !replaced && e && *e; e++)
        if (strncmp(*e, HIDDEN_PREFIX, sizeof HIDDEN_PREFIX - 1) != 0 && strchr(*e, '=') &&
            !in_list(vars, nvars, *e) && !in_null_list(skip, *e))
            out[k++] = *e;
    for (size_t i = 0; i < nvars; i++)
        if (!in_null_list(skip, vars[i]))
            out[k++] = vars[i];
    out[k] = NULL;
    static char default_path[] = "PATH=" ENVSET_DEFAULT_PATH;
    if (!in_null_list(out, default_path) && !in_null_list(skip, default_path))
        out[k++] = default_path;
    out[k] = NULL;
    return k;
}
