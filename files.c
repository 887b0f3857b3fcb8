#include "files.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "limits.h"
#include "runas.h"
#include "util.h"

/* openat2(2) from linux/openat2.h, spelled out: musl's headers do not carry it. */
#ifndef SYS_openat2
#define SYS_openat2 437
#endif
#ifndef SYS_renameat2
#define SYS_renameat2 316
#endif
#define RESOLVE_NO_MAGICLINKS 0x02
#define RESOLVE_NO_SYMLINKS   0x04
#define RESOLVE_BENEATH       0x08
#define NOREPLACE             1   /* RENAME_NOREPLACE */

struct open_how_ {
    uint64_t flags;
    uint64_t mode;
    uint64_t resolve;
};

static int base_fd = -1;          /* the root ("/" when not confined), O_PATH */
static int confined;              /* a files root was given */
static int use_openat2;           /* confined and the kernel has openat2 */
static char root[PATH_MAX];       /* realpath of the root; "" when not confined */
static size_t root_len;
static char workdir[PATH_MAX];    /* realpath of the workdir */
static struct stat st_slash, st_work, st_root;   /* what remove refuses */

/* ---- paths ---- */

/* Folds "//", "/./" and a trailing "/" or "/." of an absolute path, in place. ".." stays:
 * folding it would be wrong across symlinks; the kernel resolves it (beneath the root). */
static void path_fold(char *p)
{
    char *w = p;
    for (const char *r = p; *r;) {
        if (*r == '/') {
            while (r[0] == '/' && (r[1] == '/' || (r[1] == '.' && (r[2] == '/' || !r[2]))))
                r += r[1] == '/' ? 1 : 2;
            if (!*r)
                break;
        }
        *w++ = *r++;
    }
    while (w > p + 1 && w[-1] == '/')
        w--;
    if (w == p)
        *w++ = '/';
    *w = 0;
}

/* A client path into its normalized absolute form (abs, PATH_MAX bytes) and the part of it
 * below base_fd (*rel points into abs, or is "."). Returns 0 or -1 (EINVAL, EXDEV). */
static int path_resolve(const char *path, char *abs, const char **rel)
{
    size_t n = strnlen(path, PATH_MAX);
    if (n == 0 || n >= PATH_MAX) {
        errno = EINVAL;
        return -1;
    }
    int w = path[0] == '/' ? snprintf(abs, PATH_MAX, "%s", path)
                           : snprintf(abs, PATH_MAX, "%s/%s", workdir, path);
    if (w < 0 || w >= PATH_MAX) {
        errno = EINVAL;
        return -1;
    }
    path_fold(abs);
    if (!confined) {
        *rel = abs[1] ? abs + 1 : ".";
        return 0;
    }
    if (strncmp(abs, root, root_len) != 0 || (abs[root_len] != '/' && abs[root_len])) {
        errno = EXDEV;
        return -1;
    }
    *rel = abs[root_len] ? abs + root_len + 1 : ".";
    return 0;
}

/* Splits rel into its directory (into dir, PATH_MAX bytes) and last component. The last
 * component must be a name: "." and ".." are EINVAL, the root itself EBUSY. */
static int path_split(const char *rel, char *dir, const char **base)
{
    if (!strcmp(rel, ".")) {
        errno = EBUSY;
        return -1;
    }
    const char *slash = strrchr(rel, '/');
    *base = slash ? slash + 1 : rel;
    if (!strcmp(*base, ".") || !strcmp(*base, "..")) {
        errno = EINVAL;
        return -1;
    }
    if (!slash)
        strcpy(dir, ".");
    else
        snprintf(dir, PATH_MAX, "%.*s", (int)(slash - rel), rel);
    return 0;
}

/* ---- confined opens ---- */

/* Without openat2: ".." folded lexically (exact, as no symlink is followed), then one
 * O_NOFOLLOW open per component from base. A symlink anywhere is EXDEV: the walk cannot
 * tell a harmless one from an escape without following it. */
static int open_walk(int base, const char *rel, int flags, mode_t mode)
{
    char buf[PATH_MAX];
    const char *comp[PATH_MAX / 2];
    size_t ncomp = 0;
    snprintf(buf, sizeof buf, "%s", rel);
    for (char *save = NULL, *c = strtok_r(buf, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
        if (!strcmp(c, "."))
            continue;
        if (!strcmp(c, "..")) {
            if (!ncomp) {
                errno = EXDEV;
                return -1;
            }
            ncomp--;
            continue;
        }
        comp[ncomp++] = c;
    }
    if (!ncomp)
        return openat(base, ".", flags, mode);
    int fd = base;
    for (size_t i = 0; i < ncomp; i++) {
        int last = i + 1 == ncomp;
        int f = last ? flags | O_NOFOLLOW : O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
        int nfd = openat(fd, comp[i], f, mode);
        int err = errno;
        if (nfd < 0 && (err == ENOTDIR || err == ELOOP)) {
            struct stat st;
            if (fstatat(fd, comp[i], &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
                err = EXDEV;
        } else if (nfd >= 0 && last && (flags & O_PATH) && !(flags & O_DIRECTORY)) {
            struct stat st;   /* O_PATH|O_NOFOLLOW opens a symlink itself: refuse it too */
            if (fstat(nfd, &st) == 0 && S_ISLNK(st.st_mode)) {
                close(nfd);
                nfd = -1;
                err = EXDEV;
            }
        }
        if (fd != base)
            close(fd);
        if (nfd < 0) {
            errno = err;
            return -1;
        }
        fd = nfd;
    }
    return fd;
}

/* openat beneath `base` (the root when confined). Returns a descriptor or -1. */
static int open_below(int base, const char *rel, int flags, mode_t mode)
{
    flags |= O_CLOEXEC;
    if (!confined)
        return openat(base, rel, flags, mode);
    if (use_openat2) {
        struct open_how_ how = { (uint64_t)flags, (flags & (O_CREAT | O_TMPFILE)) ? mode : 0,
                                 RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS };
        long fd = syscall(SYS_openat2, base, rel, &how, sizeof how);
        if (fd >= 0 || errno != ENOSYS)
            return (int)fd;
        use_openat2 = 0;   /* an old kernel: walk from now on */
    }
    return open_walk(base, rel, flags, mode);
}

static int open_rel(const char *rel, int flags, mode_t mode)
{
    return open_below(base_fd, rel, flags, mode);
}

/* The directory of rel, opened O_PATH, and rel's last component. */
static int open_parent(const char *rel, const char **base)
{
    char dir[PATH_MAX];
    if (path_split(rel, dir, base) < 0)
        return -1;
    return open_rel(dir, O_PATH | O_DIRECTORY, 0);
}

/* ---- names of owners ---- */

/* The name for id in /etc/passwd or /etc/group (field 3 is the id), else the number.
 * One entry cached per file: a listing is nearly always one owner. */
static void id_name(const char *file, uint32_t id, char out[33], uint32_t *cache_id,
                    char cache[33])
{
    if (*cache_id == id && *cache) {
        memcpy(out, cache, 33);
        return;
    }
    snprintf(out, 33, "%u", id);
    FILE *f = fopen(file, "re");
    char line[512];
    while (f && fgets(line, sizeof line, f)) {
        char *name = line, *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2 || strtoul(c2 + 1, NULL, 10) != id || c2[1] < '0' || c2[1] > '9')
            continue;
        *c1 = 0;
        snprintf(out, 33, "%.32s", name);
        break;
    }
    if (f)
        fclose(f);
    *cache_id = id;
    memcpy(cache, out, 33);
}

static uint32_t uid_cached = UINT32_MAX, gid_cached = UINT32_MAX;
static char uid_name[33], gid_name[33];

static void names_forget(void)
{
    uid_cached = gid_cached = UINT32_MAX;
}

/* ---- entries ---- */

static void entry_fill(struct files_entry *e, const struct stat *st, int dirfd,
                       const char *name)
{
    e->name = strrchr(e->path, '/');
    e->name = e->name && e->name[1] ? e->name + 1 : e->path;
    e->type = S_ISREG(st->st_mode) ? FILES_FILE : S_ISDIR(st->st_mode) ? FILES_DIR
            : S_ISLNK(st->st_mode) ? FILES_SYMLINK : FILES_OTHER;
    e->size = (uint64_t)st->st_size;
    e->mode = st->st_mode & 07777;
    e->uid = st->st_uid;
    e->gid = st->st_gid;
    e->mtime_ms = (int64_t)st->st_mtim.tv_sec * 1000 + st->st_mtim.tv_nsec / 1000000;
    e->target[0] = 0;
    e->target_is_dir = 0;
    if (e->type == FILES_SYMLINK) {
        ssize_t n = readlinkat(dirfd, name, e->target, sizeof e->target - 1);
        e->target[n > 0 ? n : 0] = 0;
        /* where the link points, looked at beneath the root only */
        int fd = open_below(dirfd, name, O_PATH, 0);
        struct stat t;
        if (fd >= 0) {
            e->target_is_dir = fstat(fd, &t) == 0 && S_ISDIR(t.st_mode);
            close(fd);
        }
    }
    id_name("/etc/passwd", e->uid, e->owner, &uid_cached, uid_name);
    id_name("/etc/group", e->gid, e->group, &gid_cached, gid_name);
}

/* ---- setup ---- */

static int set_path(char *dst, const char *src)
{
    char *r = realpath(src, NULL);
    if (!r)
        return -1;
    snprintf(dst, PATH_MAX, "%s", r);
    free(r);
    return 0;
}

int files_init(const char *root_dir, const char *work, int flags)
{
    if (base_fd >= 0)
        close(base_fd);
    base_fd = -1;
    confined = 0;
    root[0] = 0;
    root_len = 0;
    if (set_path(workdir, work) < 0)
        snprintf(workdir, sizeof workdir, "%s", work);
    if (root_dir && set_path(root, root_dir) < 0)
        return -1;
    if (root_dir && strcmp(root, "/") != 0) {
        confined = 1;
        root_len = strlen(root);
    } else {
        strcpy(root, "/");
    }
    base_fd = open(confined ? root : "/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (base_fd < 0)
        return -1;
    use_openat2 = 0;
    if (confined && !(flags & FILES_NO_OPENAT2)) {
        struct open_how_ how = { O_PATH | O_CLOEXEC, 0, RESOLVE_BENEATH };
        long fd = syscall(SYS_openat2, base_fd, ".", &how, sizeof how);
        if (fd >= 0) {
            use_openat2 = 1;
            close((int)fd);
        }
    }
    stat("/", &st_slash);
    if (stat(workdir, &st_work) < 0)
        st_work = st_slash;
    fstat(base_fd, &st_root);
    return 0;
}

const char *files_confinement(void)
{
    return !confined ? "none" : use_openat2 ? "openat2" : "walk";
}

/* ---- stat and list ---- */

int files_stat(const char *path, struct files_entry *e)
{
    const char *rel, *base;
    if (path_resolve(path, e->path, &rel) < 0)
        return -1;
    names_forget();
    struct stat st;
    if (!strcmp(rel, ".")) {   /* the root itself */
        if (fstat(base_fd, &st) < 0)
            return -1;
        entry_fill(e, &st, base_fd, ".");
        return 0;
    }
    int dfd = open_parent(rel, &base);
    if (dfd < 0)
        return -1;
    int rc = fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW);
    if (rc == 0)
        entry_fill(e, &st, dfd, base);
    int err = errno;
    close(dfd);
    errno = err;
    return rc;
}

struct listing {
    char *names;          /* relative names, NUL-separated */
    size_t len, cap;
    size_t *offs;         /* into names */
    size_t n, max;
    int truncated;
};

static int listing_add(struct listing *l, const char *prefix, const char *name)
{
    if (l->n == l->max) {
        l->truncated = 1;
        return -1;
    }
    size_t need = strlen(prefix) + strlen(name) + 2;
    if (l->len + need > l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 65536;
        while (cap < l->len + need)
            cap *= 2;
        if (cap > LIMIT_FILES_LIST_BYTES) {
            l->truncated = 1;
            return -1;
        }
        char *p = realloc(l->names, cap);
        if (!p)
            return -1;
        l->names = p;
        l->cap = cap;
    }
    l->offs[l->n++] = l->len;
    char *p = l->names + l->len;
    size_t pl = strlen(prefix), nl = strlen(name);
    memcpy(p, prefix, pl);
    p += pl;
    if (pl)
        *p++ = '/';
    memcpy(p, name, nl + 1);
    l->len += (size_t)(p - (l->names + l->len)) + nl + 1;
    return 0;
}

/* Collects dir's entries (and, depth > 1, theirs: subdirectories are opened O_NOFOLLOW, so
 * the descent never leaves through a symlink). Stops quietly at the bound. */
static void listing_collect(struct listing *l, int dirfd, const char *prefix, int depth)
{
    DIR *d = fdopendir(dirfd);
    if (!d) {
        close(dirfd);
        return;
    }
    struct dirent *de;
    while (!l->truncated && (de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        if (listing_add(l, prefix, de->d_name) < 0)
            break;
        if (depth <= 1)
            continue;
        int isdir = de->d_type == DT_DIR;
        if (de->d_type == DT_UNKNOWN) {
            struct stat st;
            isdir = fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                    S_ISDIR(st.st_mode);
        }
        if (!isdir)
            continue;
        int sub = openat(dirfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub < 0)
            continue;
        char sp[PATH_MAX];
        if (snprintf(sp, sizeof sp, "%s%s%s", prefix, *prefix ? "/" : "", de->d_name) >=
            (int)sizeof sp) {
            close(sub);
            continue;
        }
        listing_collect(l, sub, sp, depth - 1);
    }
    closedir(d);
}

/* Path order with '/' lowest, so a directory's entries follow it directly. */
static const char *sort_names;
static int listing_cmp(const void *a, const void *b)
{
    const unsigned char *x = (const unsigned char *)sort_names + *(const size_t *)a;
    const unsigned char *y = (const unsigned char *)sort_names + *(const size_t *)b;
    while (*x && *x == *y)
        x++, y++;
    int cx = *x == '/' ? 1 : *x ? *x + 1 : 0, cy = *y == '/' ? 1 : *y ? *y + 1 : 0;
    return cx - cy;
}

/* Stats name below dirfd without following symlinks on the way (a component swapped for a
 * symlink after the walk must not lead the stat outside). */
static int stat_below(int dirfd, const char *name, struct stat *st)
{
    if (!confined || !strchr(name, '/'))
        return fstatat(dirfd, name, st, AT_SYMLINK_NOFOLLOW);
    int fd = -1;
    if (use_openat2) {
        struct open_how_ how = { O_PATH | O_NOFOLLOW | O_CLOEXEC, 0,
                                 RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS };
        fd = (int)syscall(SYS_openat2, dirfd, name, &how, sizeof how);
    } else {
        char dir[PATH_MAX];
        const char *slash = strrchr(name, '/');
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - name), name);
        int dfd = open_walk(dirfd, dir, O_PATH | O_DIRECTORY | O_CLOEXEC, 0);
        if (dfd >= 0) {
            int rc = fstatat(dfd, slash + 1, st, AT_SYMLINK_NOFOLLOW);
            close(dfd);
            return rc;
        }
    }
    if (fd < 0)
        return -1;
    int rc = fstat(fd, st);
    close(fd);
    return rc;
}

long files_list(const char *path, int depth, size_t max, files_list_fn *fn, void *ctx,
                int *truncated, char *abs_out)
{
    char abs[PATH_MAX];
    const char *rel;
    *truncated = 0;
    if (path_resolve(path, abs, &rel) < 0)
        return -1;
    if (abs_out)
        memcpy(abs_out, abs, strlen(abs) + 1);
    if (depth < 1)
        depth = 1;
    if (depth > LIMIT_FILES_DEPTH)
        depth = LIMIT_FILES_DEPTH;
    if (max > LIMIT_FILES_LIST)
        max = LIMIT_FILES_LIST;
    int dfd = open_rel(rel, O_RDONLY | O_DIRECTORY, 0);
    if (dfd < 0)
        return -1;
    int keep = dup(dfd);   /* fdopendir takes dfd; entries are stat'ed through keep */
    struct listing l = { .max = max, .offs = malloc((max ? max : 1) * sizeof(size_t)) };
    if (keep < 0 || !l.offs) {
        close(dfd);
        if (keep >= 0)
            close(keep);
        free(l.offs);
        errno = ENOMEM;
        return -1;
    }
    names_forget();
    listing_collect(&l, dfd, "", depth);
    sort_names = l.names;
    qsort(l.offs, l.n, sizeof *l.offs, listing_cmp);
    long given = 0;
    struct files_entry *e = malloc(sizeof *e);
    int rc = e ? 0 : -1;
    size_t alen = strlen(abs);
    if (e) {
        memcpy(e->path, abs, alen);
        if (abs[1])
            e->path[alen++] = '/';
    }
    for (size_t i = 0; e && i < l.n; i++) {
        const char *name = l.names + l.offs[i];
        struct stat st;
        if (stat_below(keep, name, &st) < 0)
            continue;   /* gone since readdir */
        size_t nl = strlen(name);
        if (alen + 1 + nl >= sizeof e->path)
            continue;   /* deeper than PATH_MAX from the top: not nameable */
        memcpy(e->path + alen, name, nl + 1);   /* abs and its '/' are already there */
        entry_fill(e, &st, keep, name);
        if (fn(ctx, e) < 0) {
            rc = -1;
            errno = ECANCELED;
            break;
        }
        given++;
    }
    *truncated = l.truncated;
    free(e);
    free(l.names);
    free(l.offs);
    close(keep);
    return rc < 0 ? -1 : given;
}

/* ---- mkdir ---- */

/* rel is not a directory: EEXIST when it is something else, ENOTDIR when a component
 * on the way is a file. Returns -1. */
static int mkdir_not_dir(const char *rel)
{
    const char *base;
    struct stat st;
    int pfd = open_parent(rel, &base);
    int exists = pfd >= 0 && fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0;
    if (pfd >= 0)
        close(pfd);
    errno = exists ? EEXIST : ENOTDIR;
    return -1;
}

static void tmp_name(char out[64], const char *what);
static int rename_at(int sdir, const char *s, int ddir, const char *d, int overwrite);

/* One directory, base in pfd. With an owner it is made under a temporary name, chowned,
 * then renamed into place (never replacing), so nobody sees it with the agent's owner. */
static int mkdir_one(int pfd, const char *base, mode_t mode, const struct runas_user *owner)
{
    if (!owner)
        return mkdirat(pfd, base, mode);
    char tmp[64];
    tmp_name(tmp, "mkdir");
    if (mkdirat(pfd, tmp, mode) < 0)
        return -1;
    if (fchownat(pfd, tmp, owner->uid, owner->gid, AT_SYMLINK_NOFOLLOW) == 0 &&
        rename_at(pfd, tmp, pfd, base, 0) == 0)
        return 0;
    int err = errno;
    unlinkat(pfd, tmp, AT_REMOVEDIR);
    errno = err;
    return -1;
}

/* mkdir -p of rel beneath the base, the directories it makes owned by owner (NULL: the
 * agent). *created when the last one was made here. */
static int mkdir_rel(const char *rel, mode_t mode, const struct runas_user *owner, int *created)
{
    *created = 0;
    int fd = open_rel(rel, O_PATH | O_DIRECTORY, 0);
    if (fd >= 0) {
        close(fd);
        return 0;
    }
    if (errno == ENOTDIR)
        return mkdir_not_dir(rel);
    if (errno != ENOENT)
        return -1;
    char buf[PATH_MAX];
    snprintf(buf, sizeof buf, "%s", rel);
    size_t n = strlen(buf);
    for (size_t i = 0; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != 0)
            continue;
        if (i == 0 || buf[i - 1] == '/')
            continue;
        char save = buf[i];
        buf[i] = 0;
        const char *base;
        int pfd = open_parent(buf, &base);
        if (pfd < 0 && errno == EINVAL) {   /* a "." or ".." component: nothing to create */
            buf[i] = save;
            continue;
        }
        if (pfd < 0)
            return -1;
        int rc = mkdir_one(pfd, base, mode, owner);
        int err = errno;
        close(pfd);
        if (rc < 0 && err != EEXIST) {
            errno = err;
            return -1;
        }
        *created = rc == 0;
        buf[i] = save;
    }
    fd = open_rel(rel, O_PATH | O_DIRECTORY, 0);   /* it exists, and is a directory */
    if (fd < 0)
        return errno == ENOTDIR ? mkdir_not_dir(rel) : -1;
    close(fd);
    return 0;
}

int files_mkdir(const char *path, mode_t mode, const struct runas_user *owner, int *created)
{
    char abs[PATH_MAX];
    const char *rel;
    *created = 0;
    if (path_resolve(path, abs, &rel) < 0)
        return -1;
    return mkdir_rel(rel, mode, owner, created);
}

/* ---- remove ---- */

/* Is st one of "/", the workdir, the root? */
static int protected_dir(const struct stat *st)
{
    const struct stat *p[] = { &st_slash, &st_work, &st_root };
    for (size_t i = 0; i < 3; i++)
        if (st->st_dev == p[i]->st_dev && st->st_ino == p[i]->st_ino)
            return 1;
    return 0;
}

/* Removes name in dirfd and everything below it. Each directory is opened O_NOFOLLOW, so a
 * directory swapped for a symlink mid-way is unlinked as the symlink, never descended. */
static int remove_tree(int parent, const char *name, int level)
{
    if (unlinkat(parent, name, 0) == 0)
        return 0;
    if (errno != EISDIR && errno != EPERM)
        return -1;
    if (level >= LIMIT_FILES_DEPTH * 8) {
        errno = ELOOP;
        return -1;
    }
    int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -1;
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return -1;
    }
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        if (remove_tree(dirfd(d), de->d_name, level + 1) < 0) {
            rc = -1;
            break;
        }
    }
    int err = errno;
    closedir(d);
    if (rc == 0)
        return unlinkat(parent, name, AT_REMOVEDIR);
    errno = err;
    return -1;
}

int files_remove(const char *path, int recursive)
{
    char abs[PATH_MAX];
    const char *rel, *base;
    if (path_resolve(path, abs, &rel) < 0)
        return -1;
    int dfd = open_parent(rel, &base);
    if (dfd < 0)
        return -1;
    struct stat st;
    int rc = fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW);
    if (rc == 0 && S_ISDIR(st.st_mode) && protected_dir(&st)) {
        errno = EBUSY;
        rc = -1;
    } else if (rc == 0 && S_ISDIR(st.st_mode)) {
        rc = recursive ? remove_tree(dfd, base, 0) : unlinkat(dfd, base, AT_REMOVEDIR);
    } else if (rc == 0) {
        rc = unlinkat(dfd, base, 0);
    }
    int err = errno;
    close(dfd);
    errno = err;
    return rc;
}

/* ---- copying (moves and staged writes across filesystems) ---- */

static int copy_fd(int in, int out)
{
    for (;;) {
        ssize_t n = sendfile(out, in, NULL, 1u << 30);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return (int)n;
    }
}

/* Copies sname in sdir to dname in ddir (which must not exist): files, symlinks and
 * directories, with their permission bits and, where the agent may set it (root), their
 * owner: a move keeps the owner. */
static int copy_tree(int sdir, const char *sname, int ddir, const char *dname, int level)
{
    struct stat st;
    if (fstatat(sdir, sname, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return -1;
    if (S_ISLNK(st.st_mode)) {
        char t[PATH_MAX];
        ssize_t n = readlinkat(sdir, sname, t, sizeof t - 1);
        if (n < 0)
            return -1;
        t[n] = 0;
        if (symlinkat(t, ddir, dname) < 0)
            return -1;
        fchownat(ddir, dname, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW);   /* best effort */
        return 0;
    }
    if (S_ISREG(st.st_mode)) {
        int in = openat(sdir, sname, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (in < 0)
            return -1;
        int out = openat(ddir, dname, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, st.st_mode & 07777);
        int rc = out < 0 ? -1 : copy_fd(in, out);
        /* best effort owner; chown drops set-id bits, so the mode is set again after it */
        if (rc == 0 && fchown(out, st.st_uid, st.st_gid) == 0)
            rc = fchmod(out, st.st_mode & 07777);
        int err = errno;
        if (out >= 0 && close(out) < 0 && rc == 0)
            rc = -1, err = errno;
        close(in);
        errno = err;
        return rc;
    }
    if (!S_ISDIR(st.st_mode)) {
        errno = ENODEV;
        return -1;
    }
    if (level >= LIMIT_FILES_DEPTH * 8) {
        errno = ELOOP;
        return -1;
    }
    if (mkdirat(ddir, dname, st.st_mode & 07777) < 0)
        return -1;
    fchownat(ddir, dname, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW);   /* best effort */
    int sfd = openat(sdir, sname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int dfd = openat(ddir, dname, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    DIR *d = sfd >= 0 && dfd >= 0 ? fdopendir(sfd) : NULL;
    int rc = d ? 0 : -1, err = errno;
    struct dirent *de;
    while (d && (de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        if (copy_tree(dirfd(d), de->d_name, dfd, de->d_name, level + 1) < 0) {
            rc = -1, err = errno;
            break;
        }
    }
    if (d)
        closedir(d);
    else if (sfd >= 0)
        close(sfd);
    if (dfd >= 0)
        close(dfd);
    errno = err;
    return rc;
}

static void tmp_name(char out[64], const char *what)
{
    char hex[17];
    util_random_hex(hex, 16);
    snprintf(out, 64, ".sandbox-agent-%s-%s.tmp", what, hex);
}

/* rename with RENAME_NOREPLACE when !overwrite. */
static int rename_at(int sdir, const char *s, int ddir, const char *d, int overwrite)
{
    if (overwrite)
        return renameat(sdir, s, ddir, d);
    long rc = syscall(SYS_renameat2, sdir, s, ddir, d, NOREPLACE);
    if (rc == 0 || (errno != EINVAL && errno != ENOSYS))
        return (int)rc;
    /* a filesystem without RENAME_NOREPLACE: check, then rename (a window, documented) */
    struct stat st;
    if (fstatat(ddir, d, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        errno = EEXIST;
        return -1;
    }
    return renameat(sdir, s, ddir, d);
}

/* Moves across filesystems: copy to a temporary name beside the target, rename it into
 * place, then remove the source. A failure removes the partial copy. */
static int move_copy(int sdir, const char *sname, int ddir, const char *dname, int overwrite)
{
    char tmp[64];
    tmp_name(tmp, "move");
    if (copy_tree(sdir, sname, ddir, tmp, 0) < 0) {
        int err = errno;
        remove_tree(ddir, tmp, 0);
        errno = err;
        return -1;
    }
    struct stat st;
    if (overwrite && fstatat(ddir, dname, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode))
        remove_tree(ddir, dname, 0);   /* rename cannot replace a non-empty directory */
    if (rename_at(ddir, tmp, ddir, dname, overwrite) < 0) {
        int err = errno;
        remove_tree(ddir, tmp, 0);
        errno = err;
        return -1;
    }
    return remove_tree(sdir, sname, 0);
}

/* ---- move ---- */

int files_move(const char *from, const char *to, int overwrite, const struct runas_user *owner)
{
    char fabs[PATH_MAX], tabs[PATH_MAX], tdir[PATH_MAX];
    const char *frel, *trel, *fbase, *tbase;
    if (path_resolve(from, fabs, &frel) < 0 || path_resolve(to, tabs, &trel) < 0)
        return -1;
    int created, rc = -1, err;
    if (path_split(trel, tdir, &tbase) < 0 || mkdir_rel(tdir, 0755, owner, &created) < 0)
        return -1;
    int sfd = open_parent(frel, &fbase);
    if (sfd < 0)
        return -1;
    struct stat st;
    int dfd = open_rel(tdir, O_PATH | O_DIRECTORY, 0);
    if (dfd < 0)
        goto out;
    if (fstatat(sfd, fbase, &st, AT_SYMLINK_NOFOLLOW) < 0)
        goto out;
    if (S_ISDIR(st.st_mode) && protected_dir(&st)) {
        errno = EBUSY;
        goto out;
    }
    rc = rename_at(sfd, fbase, dfd, tbase, overwrite);
    if (rc < 0 && errno == EXDEV)
        rc = move_copy(sfd, fbase, dfd, tbase, overwrite);
out:
    err = errno;
    close(sfd);
    if (dfd >= 0)
        close(dfd);
    errno = err;
    return rc;
}

/* ---- reading ---- */

int files_open_read(const char *path, struct stat *st)
{
    char abs[PATH_MAX];
    const char *rel;
    if (path_resolve(path, abs, &rel) < 0)
        return -1;
    /* O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused below anyway */
    int fd = open_rel(rel, O_RDONLY | O_NONBLOCK | O_NOCTTY, 0);
    if (fd < 0)
        return -1;
    if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode)) {
        int err = S_ISDIR(st->st_mode) ? EISDIR : ENODEV;
        close(fd);
        errno = err;
        return -1;
    }
    fcntl(fd, F_SETFL, 0);
    return fd;
}

/* ---- atomic writes ---- */

static void writer_clear(struct files_writer *w)
{
    w->dirfd = -1;
    w->fd = -1;
    w->tmp[0] = 0;
    w->path[0] = 0;
    w->size = 0;
    w->chown = 0;
}

/* The directory a staged upload waits in: the workdir, or the root when the workdir is
 * outside it. */
static int open_stage_dir(void)
{
    const char *rel;
    char abs[PATH_MAX];
    if (path_resolve(workdir, abs, &rel) == 0) {
        int fd = open_rel(rel, O_PATH | O_DIRECTORY, 0);
        if (fd >= 0)
            return fd;
    }
    return open_rel(".", O_PATH | O_DIRECTORY, 0);
}

int files_writer_open(struct files_writer *w, const char *path, const struct runas_user *owner)
{
    writer_clear(w);
    if (owner) {
        w->chown = 1;
        w->uid = owner->uid;
        w->gid = owner->gid;
    }
    if (path) {
        char abs[PATH_MAX], dir[PATH_MAX];
        const char *rel, *base;
        int created;
        if (path_resolve(path, abs, &rel) < 0 || path_split(rel, dir, &base) < 0)
            return -1;
        if (mkdir_rel(dir, 0755, owner, &created) < 0)
            return -1;
        w->dirfd = open_rel(dir, O_PATH | O_DIRECTORY, 0);
        snprintf(w->path, sizeof w->path, "%s", path);
    } else {
        w->dirfd = open_stage_dir();
    }
    if (w->dirfd < 0)
        return -1;
    tmp_name(w->tmp, "upload");
    w->fd = openat(w->dirfd, w->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (w->fd < 0) {
        int err = errno;
        close(w->dirfd);
        writer_clear(w);
        errno = err;
        return -1;
    }
    /* the owner from the start: the file is never visible under its name with another */
    if (w->chown && fchown(w->fd, w->uid, w->gid) < 0) {
        files_writer_abort(w);
        return -1;
    }
    return 0;
}

int files_writer_write(struct files_writer *w, const void *p, size_t n)
{
    const char *s = p;
    while (n > 0) {
        ssize_t k = write(w->fd, s, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            if (k == 0)
                errno = ENOSPC;
            return -1;
        }
        s += k;
        n -= (size_t)k;
        w->size += (uint64_t)k;
    }
    return 0;
}

void files_writer_abort(struct files_writer *w)
{
    int err = errno;
    if (w->fd >= 0)
        close(w->fd);
    if (w->dirfd >= 0) {
        if (w->tmp[0])
            unlinkat(w->dirfd, w->tmp, 0);
        close(w->dirfd);
    }
    writer_clear(w);
    errno = err;
}

/* Publishes tmp in sdir as base in ddir. */
static int writer_publish(int sdir, const char *tmp, int ddir, const char *base, int overwrite)
{
    if (overwrite)
        return renameat(sdir, tmp, ddir, base);
    /* link(2) never replaces: the no-overwrite publish is atomic on every filesystem */
    if (linkat(sdir, tmp, ddir, base, 0) < 0)
        return -1;
    unlinkat(sdir, tmp, 0);
    return 0;
}

int files_writer_commit(struct files_writer *w, const char *path, int mode, int overwrite,
                        char *abs_out)
{
    char abs[PATH_MAX], dir[PATH_MAX];
    const char *rel, *base;
    int ddir = -1, rc = -1, err;
    if (!path)
        path = w->path;
    if (path_resolve(path, abs, &rel) < 0 || path_split(rel, dir, &base) < 0)
        goto fail;
    if (abs_out)
        memcpy(abs_out, abs, strlen(abs) + 1);
    int created;
    struct runas_user who = { .uid = w->uid, .gid = w->gid };
    if (mkdir_rel(dir, 0755, w->chown ? &who : NULL, &created) < 0)
        goto fail;
    ddir = open_rel(dir, O_PATH | O_DIRECTORY, 0);
    if (ddir < 0)
        goto fail;
    struct stat old;
    int exists = fstatat(ddir, base, &old, AT_SYMLINK_NOFOLLOW) == 0;
    if (exists && S_ISDIR(old.st_mode)) {
        errno = EISDIR;
        goto fail;
    }
    if (exists && !overwrite) {
        errno = EEXIST;
        goto fail;
    }
    mode_t m = mode >= 0 ? (mode_t)mode : exists && S_ISREG(old.st_mode) ? old.st_mode & 07777
                                                                        : 0644;
    if (fchmod(w->fd, m) < 0)
        goto fail;
    rc = writer_publish(w->dirfd, w->tmp, ddir, base, overwrite);
    int moved = rc == 0;   /* the temporary file itself became the target */
    if (rc < 0 && errno == EXDEV) {
        /* staged on another filesystem: copy beside the target, then publish that */
        char tmp2[64];
        tmp_name(tmp2, "upload");
        int in = openat(w->dirfd, w->tmp, O_RDONLY | O_CLOEXEC);
        int out = in < 0 ? -1 : openat(ddir, tmp2, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, m);
        rc = out < 0 ? -1 : copy_fd(in, out);
        if (rc == 0 && w->chown && fchown(out, w->uid, w->gid) < 0)
            rc = -1;
        if (out >= 0 && fchmod(out, m) < 0)
            rc = -1;
        err = errno;
        if (in >= 0)
            close(in);
        if (out >= 0 && close(out) < 0)
            rc = -1, err = errno;
        if (rc == 0)
            rc = writer_publish(ddir, tmp2, ddir, base, overwrite);
        if (rc < 0) {
            err = errno;
            unlinkat(ddir, tmp2, 0);
            errno = err;
        }
    }
    if (rc == 0 && close(w->fd) < 0)   /* NFS and the like report write errors at close */
        rc = -1;
    else if (rc == 0)
        w->fd = -1;
    if (moved)
        w->tmp[0] = 0;   /* renamed or linked away: nothing to remove */
fail:
    err = errno;
    if (ddir >= 0)
        close(ddir);
    files_writer_abort(w);
    errno = err;
    return rc;
}

void files_perm_string(uint32_t mode, char out[10])
{
    static const char rwx[] = "rwxrwxrwx";
    for (int i = 0; i < 9; i++)
        out[i] = mode & (0400u >> i) ? rwx[i] : '-';
    if (mode & 04000)
        out[2] = mode & 0100 ? 's' : 'S';
    if (mode & 02000)
        out[5] = mode & 010 ? 's' : 'S';
    if (mode & 01000)
        out[8] = mode & 01 ? 't' : 'T';
    out[9] = 0;
}
