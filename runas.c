#include "runas.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "limits.h"

extern char **environ;

/* ---- helpers ---- */

/* Field number k (0-based, ':'-separated) of line [s, e) as [*fs, *fe). 0, or -1 when the
 * line has fewer fields. */
static int field(const char *s, const char *e, int k, const char **fs, const char **fe)
{
    for (; k > 0; k--) {
        const char *c = memchr(s, ':', (size_t)(e - s));
        if (!c)
            return -1;
        s = c + 1;
    }
    const char *c = memchr(s, ':', (size_t)(e - s));
    *fs = s;
    *fe = c ? c : e;
    return 0;
}

/* A decimal id of [s, e): 0 and *out, or -1. */
static int id_of(const char *s, const char *e, unsigned long *out)
{
    unsigned long v = 0;
    if (s == e || e - s > 10)
        return -1;
    for (; s < e; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        v = v * 10 + (unsigned long)(*s - '0');
    }
    if (v > 0xfffffffeul)   /* (uid_t)-1 means "no change" to setuid */
        return -1;
    *out = v;
    return 0;
}

static void copy(char *dst, size_t cap, const char *s, const char *e)
{
    size_t n = (size_t)(e - s) < cap - 1 ? (size_t)(e - s) : cap - 1;
    memcpy(dst, s, n);
    dst[n] = 0;
}

/* Reads a whole small file into buf (NUL-terminated). Returns its length or -1. */
static ssize_t slurp(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t n = 0;
    ssize_t r;
    while (n < cap - 1 && (r = read(fd, buf + n, cap - 1 - n)) > 0)
        n += (size_t)r;
    close(fd);
    buf[n] = 0;
    return (ssize_t)n;
}

/* ---- API ---- */

int runas_parse_passwd(const char *text, size_t len, const char *who, struct runas_user *u)
{
    unsigned long want = 0;
    size_t wlen = strlen(who);
    int by_uid = id_of(who, who + wlen, &want) == 0;
    if (wlen == 0 || wlen >= RUNAS_NAME_MAX)
        return -1;
    memset(u, 0, sizeof *u);
    for (const char *s = text, *end = text + len; s < end;) {
        const char *e = memchr(s, '\n', (size_t)(end - s));
        if (!e)
            e = end;
        const char *n0, *n1, *u0, *u1, *g0, *g1, *h0, *h1;
        unsigned long uid, gid;
        if (field(s, e, 0, &n0, &n1) == 0 && field(s, e, 2, &u0, &u1) == 0 &&
            field(s, e, 3, &g0, &g1) == 0 && id_of(u0, u1, &uid) == 0 &&
            id_of(g0, g1, &gid) == 0 && n1 > n0 &&
            (by_uid ? uid == want : (size_t)(n1 - n0) == wlen && !memcmp(n0, who, wlen))) {
            u->uid = (uid_t)uid;
            u->gid = (gid_t)gid;
            copy(u->name, sizeof u->name, n0, n1);
            if (field(s, e, 5, &h0, &h1) == 0 && h1 > h0)
                copy(u->home, sizeof u->home, h0, h1);
            else
                strcpy(u->home, "/");
            u->groups[0] = u->gid;
            u->ngroups = 1;
            return 0;
        }
        s = e + 1;
    }
    if (!by_uid)
        return -1;
    u->uid = (uid_t)want;   /* a bare uid: allowed, as with docker run --user */
    u->gid = (gid_t)want;
    snprintf(u->name, sizeof u->name, "%lu", want);
    strcpy(u->home, "/");
    u->groups[0] = u->gid;
    u->ngroups = 1;
    return 0;
}

void runas_parse_groups(const char *text, size_t len, struct runas_user *u)
{
    size_t nlen = strlen(u->name);
    for (const char *s = text, *end = text + len; s < end && u->ngroups < RUNAS_GROUPS_MAX;) {
        const char *e = memchr(s, '\n', (size_t)(end - s));
        if (!e)
            e = end;
        const char *g0, *g1, *m0, *m1;
        unsigned long gid;
        if (field(s, e, 2, &g0, &g1) == 0 && id_of(g0, g1, &gid) == 0 &&
            field(s, e, 3, &m0, &m1) == 0) {
            for (const char *m = m0; m < m1;) {   /* comma-separated member names */
                const char *c = memchr(m, ',', (size_t)(m1 - m));
                const char *me = c ? c : m1;
                int dup = 0;
                for (int i = 0; i < u->ngroups; i++)
                    dup |= u->groups[i] == (gid_t)gid;
                if ((size_t)(me - m) == nlen && !memcmp(m, u->name, nlen) && !dup) {
                    u->groups[u->ngroups++] = (gid_t)gid;
                    break;
                }
                m = me + 1;
            }
        }
        s = e + 1;
    }
}

int runas_lookup(const char *who, struct runas_user *u)
{
    char *buf = malloc(LIMIT_PASSWD_BYTES);
    if (!buf)
        return -1;
    ssize_t n = slurp("/etc/passwd", buf, LIMIT_PASSWD_BYTES);
    int rc = runas_parse_passwd(buf, n > 0 ? (size_t)n : 0, who, u);
    if (rc == 0 && (n = slurp("/etc/group", buf, LIMIT_PASSWD_BYTES)) > 0)
        runas_parse_groups(buf, (size_t)n, u);
    free(buf);
    if (rc < 0)
        errno = ENOENT;
    return rc;
}

int runas_exec_main(int argc, char **argv)
{
    unsigned long uid, gid, g;
    gid_t groups[RUNAS_GROUPS_MAX];
    size_t ng = 0;
    if (argc < 7 || strcmp(argv[4], "--") != 0 ||
        id_of(argv[1], argv[1] + strlen(argv[1]), &uid) < 0 ||
        id_of(argv[2], argv[2] + strlen(argv[2]), &gid) < 0) {
        fprintf(stderr, "sandbox-agent exec-as: usage: exec-as UID GID G1,G2 -- PATH ARGV0...\n");
        return 126;
    }
    for (const char *s = argv[3]; *s && ng < RUNAS_GROUPS_MAX;) {
        const char *c = strchr(s, ',');
        const char *e = c ? c : s + strlen(s);
        if (id_of(s, e, &g) == 0)
            groups[ng++] = (gid_t)g;
        s = c ? c + 1 : e;
    }
    if (setgroups(ng, groups) < 0 || setgid((gid_t)gid) < 0 || setuid((uid_t)uid) < 0) {
        fprintf(stderr, "sandbox-agent: cannot become uid %lu gid %lu: %s\n", uid, gid,
                strerror(errno));
        return 126;
    }
    execve(argv[5], argv + 6, environ);
    int e = errno;
    fprintf(stderr, "sandbox-agent: cannot execute '%s': %s\n", argv[5], strerror(e));
    return e == ENOENT ? 127 : 126;
}
