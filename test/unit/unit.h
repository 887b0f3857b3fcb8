/* A minimal table-driven test harness: CHECK counts, the summary line is what make test reads. */
#ifndef SANDBOX_UNIT_H
#define SANDBOX_UNIT_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int unit_passed, unit_failed, unit_skipped;

#define CHECK(cond, ...)                                                     \
    do {                                                                     \
        if (cond) {                                                          \
            unit_passed++;                                                   \
        } else {                                                             \
            unit_failed++;                                                   \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);  \
            fprintf(stderr, __VA_ARGS__);                                    \
            fputc('\n', stderr);                                             \
        }                                                                    \
    } while (0)

#define SKIP(...)                                                            \
    do {                                                                     \
        unit_skipped++;                                                      \
        fprintf(stderr, "SKIP: ");                                           \
        fprintf(stderr, __VA_ARGS__);                                        \
        fputc('\n', stderr);                                                 \
    } while (0)

/* Path of the shared third-party test data, or NULL when ../shared is absent. */
static inline const char *unit_shared(void)
{
    const char *d = getenv("SHARED_TESTDATA");
    return d && *d ? d : NULL;
}

/* Reads a whole file into malloc'd memory (NUL-terminated for convenience). */
static inline char *unit_slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    char *p = malloc(cap + 1);
    size_t r;
    while (p && (r = fread(p + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            char *q = realloc(p, cap * 2 + 1);
            if (!q) { free(p); p = NULL; break; }
            p = q;
            cap *= 2;
        }
    }
    fclose(f);
    if (p) p[n] = 0;
    *len = n;
    return p;
}

static inline int unit_report(const char *name)
{
    printf("%s: %d passed, %d failed, %d skipped\n", name, unit_passed, unit_failed, unit_skipped);
    return unit_failed ? 1 : 0;
}

#endif
