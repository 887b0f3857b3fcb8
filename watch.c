#include "watch.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "limits.h"

#ifndef PATH_MAX   /* glibc's <limits.h> (the debug build) reaches ours by include_next */
#define PATH_MAX 4096
#endif
#ifndef NAME_MAX
#define NAME_MAX 255
#endif
#include "loop.h"

#define RAW_BYTES 4096    /* one read of raw events; the kernel queue holds the rest */
#define DIR_MASK (IN_CREATE | IN_DELETE | IN_MODIFY | IN_MOVED_FROM | IN_MOVED_TO | IN_ATTRIB | \
                  IN_CLOSE_WRITE | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR | IN_EXCL_UNLINK)

struct dir {
    int wd;
    char *path;
};

struct watch {
    int fd;
    int recursive;
    watch_fn *fn;
    void *ctx;
    char *root;
    int root_wd;
    struct dir *dirs;
    int ndirs, cap;
    int paused, closed, busy;
    int overflow_due;         /* a WATCH_OVERFLOW to offer first (dir limit, kernel queue) */
    int limit_told;           /* LIMIT_WATCH_DIRS was reported once */
    int create_then_write;    /* watch_report_writes: a create's first write is news too */
    /* the last event taken, so a run of writes to one file is one WATCH_MODIFIED */
    int last_wd;
    enum watch_kind last_kind;
    uint64_t last_name;
    size_t pos, len;
    size_t prepared;          /* pos + 1 of the raw event whose directory was added */
    char raw[RAW_BYTES] __attribute__((aligned(__alignof__(struct inotify_event))));
};

static char evpath[PATH_MAX + NAME_MAX + 2];    /* the path handed to the callback */
static char child[PATH_MAX + NAME_MAX + 2];     /* paths while adding a tree */

/* ---- the directory table ---- */

static struct dir *dir_by_wd(struct watch *w, int wd)
{
    for (int i = 0; i < w->ndirs; i++)
        if (w->dirs[i].wd == wd)
            return &w->dirs[i];
    return NULL;
}

static void dir_drop(struct watch *w, struct dir *d)
{
    free(d->path);
    *d = w->dirs[--w->ndirs];
}

/* Watches one directory. Returns 0 (new or already watched), or -1 (errno). */
static int add_one(struct watch *w, const char *path, int follow)
{
    if (w->ndirs >= LIMIT_WATCH_DIRS) {
        if (!w->limit_told)
            w->overflow_due = w->limit_told = 1;
        errno = ENOSPC;
        return -1;
    }
    int wd = inotify_add_watch(w->fd, path, DIR_MASK | (follow ? 0 : IN_DONT_FOLLOW));
    if (wd < 0)
        return -1;
    char *copy = strdup(path);
    if (!copy) {
        inotify_rm_watch(w->fd, wd);
        return -1;
    }
    struct dir *d = dir_by_wd(w, wd);
    if (d) {   /* the same directory under a new name (moved back in) */
        free(d->path);
        d->path = copy;
        return 0;
    }
    if (w->ndirs == w->cap) {
        int cap = w->cap ? w->cap * 2 : 16;
        struct dir *nd = realloc(w->dirs, (size_t)cap * sizeof *nd);
        if (!nd) {
            free(copy);
            inotify_rm_watch(w->fd, wd);
            return -1;
        }
        w->dirs = nd;
        w->cap = cap;
    }
    w->dirs[w->ndirs++] = (struct dir){ wd, copy };
    return 0;
}

static int is_dir_entry(const char *path, const struct dirent *e)
{
    if (e->d_type == DT_DIR)
        return 1;
    if (e->d_type != DT_UNKNOWN)
        return 0;   /* symlinks to directories are not followed */
    struct stat st;
    return lstat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Watches every directory under the table's entries from `first` on, breadth first over
 * the table itself, so no descriptor stays open while descending. */
static void walk(struct watch *w, int first)
{
    for (int i = first; i < w->ndirs; i++) {
        DIR *d = opendir(w->dirs[i].path);
        if (!d)
            continue;
        struct dirent *e;
        while ((e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            int n = snprintf(child, sizeof child, "%s/%s", w->dirs[i].path, e->d_name);
            if (n < 0 || (size_t)n >= PATH_MAX || !is_dir_entry(child, e))
                continue;
            if (add_one(w, child, 0) < 0 && errno == ENOSPC)
                break;
        }
        closedir(d);
    }
}

/* A directory appeared (created or moved in): it and what it already holds. */
static void add_tree(struct watch *w, const char *path)
{
    int first = w->ndirs;
    if (add_one(w, path, 0) == 0 && w->ndirs > first)
        walk(w, first);
}

/* A directory moved away: its watches (and its subtree's) go; moved back in, it is added
 * again under its new name. */
static void drop_tree(struct watch *w, const char *path)
{
    size_t n = strlen(path);
    for (int i = 0; i < w->ndirs;) {
        const char *p = w->dirs[i].path;
        if (w->dirs[i].wd != w->root_wd && !strncmp(p, path, n) && (p[n] == 0 || p[n] == '/')) {
            inotify_rm_watch(w->fd, w->dirs[i].wd);
            dir_drop(w, &w->dirs[i]);
        } else {
            i++;
        }
    }
}

/* ---- events ---- */

static uint64_t name_hash(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull;
    while (*s)
        h = (h ^ (unsigned char)*s++) * 0x100000001b3ull;
    return h;
}

/* Turns a raw event into ev (path in evpath). Returns 1 when it is one to offer. */
static int translate(struct watch *w, const struct inotify_event *ie, struct watch_event *ev)
{
    ev->is_dir = (ie->mask & IN_ISDIR) != 0;
    ev->path = evpath;
    if (ie->mask & IN_Q_OVERFLOW) {
        ev->kind = WATCH_OVERFLOW;
        snprintf(evpath, sizeof evpath, "%s", w->root);
        return 1;
    }
    struct dir *d = dir_by_wd(w, ie->wd);
    if (!d || (ie->mask & IN_IGNORED))
        return 0;
    const char *name = ie->len ? ie->name : "";
    snprintf(evpath, sizeof evpath, "%s%s%s", d->path, *name ? "/" : "", name);
    uint32_t m = ie->mask;
    int self = !*name;
    if (self && ie->wd != w->root_wd)
        return 0;   /* a subdirectory's own end: its parent reported it */
    if (m & (IN_CREATE | IN_MOVED_TO))
        ev->kind = WATCH_CREATED;
    else if (m & (IN_DELETE | IN_DELETE_SELF))
        ev->kind = WATCH_DELETED;
    else if (m & (IN_MOVED_FROM | IN_MOVE_SELF))
        ev->kind = WATCH_RENAMED;
    else if (m & IN_MODIFY)
        ev->kind = WATCH_MODIFIED;
    else if (m & IN_ATTRIB)
        ev->kind = WATCH_CHMOD;
    else {
        if ((m & IN_CLOSE_WRITE) && w->last_wd == ie->wd && w->last_name == name_hash(name))
            w->last_wd = -1;   /* a write session ended: the next write is news again */
        return 0;
    }
    if (self)
        ev->is_dir = 1;
    if (ev->kind == WATCH_MODIFIED && w->last_wd == ie->wd &&
        (w->last_kind == WATCH_MODIFIED ||
         (w->last_kind == WATCH_CREATED && !w->create_then_write)) &&
        w->last_name == name_hash(name))
        return 0;
    return 1;
}

/* What taking an event changes: the directory table, the last event. */
static void taken(struct watch *w, const struct inotify_event *ie, const struct watch_event *ev)
{
    w->last_wd = ie->wd;
    w->last_kind = ev->kind;
    w->last_name = name_hash(ie->len ? ie->name : "");
    if (w->recursive && ev->is_dir && ie->len && (ie->mask & IN_MOVED_FROM))
        drop_tree(w, ev->path);
}

/* A directory appeared: watched before the event is offered, so a consumer that reacts to
 * it (writes a file inside) is never quicker than the watch. Once per raw event. */
static void prepare(struct watch *w, const struct inotify_event *ie, const struct watch_event *ev)
{
    if (!w->recursive || !ev->is_dir || !ie->len || !(ie->mask & (IN_CREATE | IN_MOVED_TO)) ||
        w->prepared == w->pos + 1)
        return;
    w->prepared = w->pos + 1;
    add_tree(w, ev->path);
}

static void watch_free(struct watch *w)
{
    loop_del(w->fd);
    close(w->fd);
    for (int i = 0; i < w->ndirs; i++)
        free(w->dirs[i].path);
    free(w->dirs);
    free(w->root);
    free(w);
}

static void pause_watch(struct watch *w)
{
    w->paused = 1;
    loop_set(w->fd, 0);
}

/* Offers events until the consumer says stop or one read's worth is done. */
static void deliver(struct watch *w)
{
    int reads = 0;
    w->busy = 1;
    while (!w->closed && !w->paused) {
        if (w->overflow_due) {
            struct watch_event ev = { WATCH_OVERFLOW, 1, w->root };
            if (w->fn(w->ctx, &ev) < 0) {
                pause_watch(w);
                break;
            }
            w->overflow_due = 0;
            continue;
        }
        if (w->pos >= w->len) {
            if (reads++)
                break;   /* one read per loop round: POLLIN brings the rest */
            ssize_t n = read(w->fd, w->raw, sizeof w->raw);
            if (n <= 0)
                break;
            w->pos = 0;
            w->prepared = 0;
            w->len = (size_t)n;
        }
        const struct inotify_event *ie = (const void *)(w->raw + w->pos);
        size_t size = sizeof *ie + ie->len;
        struct watch_event ev;
        if (ie->mask & IN_IGNORED) {
            struct dir *d = dir_by_wd(w, ie->wd);
            if (d && ie->wd != w->root_wd)
                dir_drop(w, d);
        } else if (translate(w, ie, &ev)) {
            prepare(w, ie, &ev);
            if (w->fn(w->ctx, &ev) < 0) {
                pause_watch(w);
                break;
            }
            if (w->closed)
                break;
            taken(w, ie, &ev);
        }
        w->pos += size;
    }
    w->busy = 0;
    if (w->closed)
        watch_free(w);
}

static void on_inotify(void *ctx, int fd, short revents)
{
    (void)fd, (void)revents;
    deliver(ctx);
}

/* ---- API ---- */

struct watch *watch_open(const char *path, int recursive, watch_fn *fn, void *ctx)
{
    struct stat st;
    if (stat(path, &st) < 0)
        return NULL;
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return NULL;
    }
    struct watch *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    w->root = strdup(path);
    w->recursive = recursive;
    w->fn = fn;
    w->ctx = ctx;
    w->last_wd = -1;
    if (w->fd < 0 || !w->root || add_one(w, path, 1) < 0 ||
        loop_add(w->fd, POLLIN, on_inotify, w) < 0) {
        int err = errno;
        if (w->fd >= 0)
            close(w->fd);
        for (int i = 0; i < w->ndirs; i++)
            free(w->dirs[i].path);
        free(w->dirs);
        free(w->root);
        free(w);
        errno = err;
        return NULL;
    }
    w->root_wd = w->dirs[0].wd;
    if (recursive)
        walk(w, 0);
    return w;
}

void watch_report_writes(struct watch *w)
{
    w->create_then_write = 1;
}

void watch_resume(struct watch *w)
{
    if (w->closed || !w->paused)
        return;
    w->paused = 0;
    loop_set(w->fd, POLLIN);
    if (!w->busy)
        deliver(w);
}

void watch_close(struct watch *w)
{
    w->closed = 1;
    if (!w->busy)
        watch_free(w);
}

int watch_dirs(const struct watch *w)
{
    return w->ndirs;
}
