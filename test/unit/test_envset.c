/* envset.c against a pinned inherited environment: precedence, merge and replace, duplicate
 * keys, the request's keys left out, the default PATH, the private SANDBOX_AGENT_ prefix, and
 * refusals that change nothing. */
#include "envset.h"

#include "limits.h"
#include "unit.h"

extern char **environ;

static char *inherited[] = { "HOME=/root", "SHARED=inherited", "SANDBOX_AGENT_JWT_SECRET=s",
                             "NOEQUALS", "LANG=C", NULL };

/* The base environment as one "K=V;K=V" string, for comparing against a table. */
static const char *base(char *const *skip)
{
    static char out[4096];
    char *env[64];
    CHECK(envset_base_max() < 64, "room");
    size_t n = envset_base(env, skip);
    out[0] = 0;
    for (size_t i = 0; i < n; i++) {
        if (i)
            strcat(out, ";");
        strcat(out, env[i]);
    }
    CHECK(env[n] == NULL, "NULL-terminated");
    return out;
}

#define EXPECT(expr, want)                                                   \
    do {                                                                     \
        const char *got_ = (expr);                                           \
        CHECK(!strcmp(got_, (want)), "got %s\n  want %s", got_, (want));     \
    } while (0)

static void check_precedence(void)
{
    EXPECT(base(NULL), "HOME=/root;SHARED=inherited;LANG=C;PATH=" ENVSET_DEFAULT_PATH);
    char *set[] = { "SHARED=agent", "PATH=/agent/bin", "NEW=1" };
    CHECK(envset_update(set, 3, 0) == 0, "merge");
    EXPECT(base(NULL), "HOME=/root;LANG=C;SHARED=agent;PATH=/agent/bin;NEW=1");
    char *req[] = { "SHARED=request", "HOME=/req", NULL };
    EXPECT(base(req), "LANG=C;PATH=/agent/bin;NEW=1");
    char *req_path[] = { "PATH=/req/bin", NULL };
    EXPECT(base(req_path), "HOME=/root;LANG=C;SHARED=agent;NEW=1");
    CHECK(envset_count() == 3 && !envset_replaced(), "count");
}

static void check_merge_replace(void)
{
    envset_clear();
    char *a[] = { "A=1", "B=2", "A=3" };   /* a later duplicate wins */
    CHECK(envset_update(a, 3, 0) == 0, "dup");
    CHECK(envset_count() == 2, "dup count %zu", envset_count());
    char *req[] = { "HOME=x", "SHARED=x", "LANG=x", "PATH=x", NULL };
    EXPECT(base(req), "B=2;A=3");
    char *b[] = { "B=20", "C=30" };
    CHECK(envset_update(b, 2, 0) == 0, "merge");
    EXPECT(base(req), "A=3;B=20;C=30");
    char *c[] = { "ONLY=1" };
    CHECK(envset_update(c, 1, 1) == 0 && envset_replaced(), "replace");
    EXPECT(base(NULL), "ONLY=1;PATH=" ENVSET_DEFAULT_PATH);
    CHECK(envset_update(NULL, 0, 1) == 0, "replace with nothing");
    EXPECT(base(NULL), "PATH=" ENVSET_DEFAULT_PATH);
    envset_clear();
    CHECK(!envset_replaced() && envset_count() == 0, "clear");
    EXPECT(base(NULL), "HOME=/root;SHARED=inherited;LANG=C;PATH=" ENVSET_DEFAULT_PATH);
}

static void check_refusals(void)
{
    static const struct {
        const char *key;
        size_t len;
        int ok;
    } keys[] = {
        { "A", 1, 1 }, { "lower.dot-dash", 14, 1 }, { "", 0, 0 }, { "A=B", 3, 0 },
        { "A\0B", 3, 0 }, { "=", 1, 0 },
    };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        CHECK(envset_key_ok(keys[i].key, keys[i].len) == keys[i].ok, "key %zu", i);
    envset_clear();
    char *keep[] = { "KEEP=1" };
    envset_update(keep, 1, 0);
    char *bad[] = { "OK=1", "=nokey" }, *noeq[] = { "NOEQ" };
    CHECK(envset_update(bad, 2, 0) == ENVSET_E_KEY, "empty key");
    CHECK(envset_update(noeq, 1, 1) == ENVSET_E_KEY, "no '='");
    /* LIMIT_ENV_VARS: KEEP plus 1024 new ones is one too many, and nothing changes */
    static char names[LIMIT_ENV_VARS][16];
    static char *many[LIMIT_ENV_VARS];
    for (int i = 0; i < LIMIT_ENV_VARS; i++) {
        snprintf(names[i], sizeof names[i], "V%d=x", i);
        many[i] = names[i];
    }
    CHECK(envset_update(many, LIMIT_ENV_VARS, 0) == ENVSET_E_COUNT, "count");
    CHECK(envset_count() == 1 && !envset_replaced(), "unchanged after count refusal");
    CHECK(envset_update(many, LIMIT_ENV_VARS, 1) == 0, "replace with exactly the limit");
    CHECK(envset_count() == LIMIT_ENV_VARS && envset_replaced(), "at the limit");
    envset_clear();
    /* LIMIT_ENV_BYTES counts "K=V\0" */
    static char big[LIMIT_ENV_BYTES + 8];
    memcpy(big, "BIG=", 4);
    memset(big + 4, 'x', LIMIT_ENV_BYTES - 5);   /* strlen + 1 == LIMIT_ENV_BYTES */
    big[LIMIT_ENV_BYTES - 1] = 0;
    char *one[] = { big };
    CHECK(envset_update(one, 1, 0) == 0, "exactly the byte limit");
    big[LIMIT_ENV_BYTES - 1] = 'x';
    big[LIMIT_ENV_BYTES] = 0;
    CHECK(envset_update(one, 1, 0) == ENVSET_E_BYTES, "one byte over");
    CHECK(envset_count() == 1, "unchanged after byte refusal");
    envset_clear();
}

/* envset_remove: an agent-held one, one shadowing an inherited one (which must not come
 * back), an inherited one (inheriting stops), the hidden prefix, absent keys, bad keys. */
static void check_remove(void)
{
    envset_clear();
    char *set[] = { "A=1", "SHARED=agent" };
    CHECK(envset_update(set, 2, 0) == 0, "set");
    CHECK(envset_remove("A") == 1 && !envset_replaced(), "held one");
    EXPECT(base(NULL), "HOME=/root;LANG=C;SHARED=agent;PATH=" ENVSET_DEFAULT_PATH);
    CHECK(envset_remove("A") == 0, "gone already");
    CHECK(envset_remove("SHARED") == 1 && envset_replaced(), "shadowing one");
    EXPECT(base(NULL), "HOME=/root;LANG=C;PATH=" ENVSET_DEFAULT_PATH);
    envset_clear();
    CHECK(envset_remove("LANG") == 1 && envset_replaced(), "inherited one");
    EXPECT(base(NULL), "HOME=/root;SHARED=inherited;PATH=" ENVSET_DEFAULT_PATH);
    CHECK(envset_remove("SANDBOX_AGENT_JWT_SECRET") == 0, "hidden: not visible, not set");
    CHECK(envset_remove("NOEQUALS") == 0, "an environ entry without '=' is no variable");
    CHECK(envset_remove("") == ENVSET_E_KEY && envset_remove("A=B") == ENVSET_E_KEY, "bad");
    envset_clear();
    EXPECT(base(NULL), "HOME=/root;SHARED=inherited;LANG=C;PATH=" ENVSET_DEFAULT_PATH);
}

int main(void)
{
    environ = inherited;
    check_precedence();
    check_merge_replace();
    check_refusals();
    check_remove();
    return unit_report("envset");
}
