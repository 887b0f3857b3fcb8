/* File watching on inotify, for any front-end (HopX WS/SSE /files/watch now, E2B's
 * WatchDir later). One watch follows one directory, recursively if asked: subdirectories
 * are watched as they appear (and moved in), dropped as they go (and moved out).
 *
 * Delivery is paced by the consumer: events are read from the kernel only as fast as the
 * consumer takes them, so nothing queues here beyond one read of raw events (4 KiB); the
 * kernel's own queue is the bound, and when it overflows the consumer gets one
 * WATCH_OVERFLOW event and the watch goes on. Each watch has its own inotify descriptor,
 * closed with it. Makes syscalls, never logs. */
#ifndef SANDBOX_WATCH_H
#define SANDBOX_WATCH_H

enum watch_kind {
    WATCH_CREATED,    /* created, or moved in (fsnotify's Create) */
    WATCH_MODIFIED,   /* written (consecutive writes to one file are one event) */
    WATCH_DELETED,
    WATCH_RENAMED,    /* moved away from this path (fsnotify's Rename; the new name, if
                       * inside the watch, comes as WATCH_CREATED) */
    WATCH_CHMOD,      /* metadata: mode, owner, times */
    WATCH_OVERFLOW,   /* the kernel dropped events: rescan if exactness matters */
};

struct watch_event {
    enum watch_kind kind;
    int is_dir;
    const char *path;     /* absolute; NUL-terminated; valid during the callback only;
                           * the watched directory's path for WATCH_OVERFLOW */
};

struct watch;

/* Offers one event. Returns 0 when taken, or -1 when the consumer cannot take it now: it is
 * offered again (and nothing after it) once the consumer calls watch_resume. The callback
 * may call watch_close on its own watch. */
typedef int watch_fn(void *ctx, const struct watch_event *ev);

/* Starts watching the directory at path (absolute). Returns the watch, or NULL with errno:
 * ENOENT, ENOTDIR, EACCES, EMFILE (inotify instances), ENOSPC (the user's inotify watches),
 * ENOMEM. A recursive watch stops adding subdirectories at LIMIT_WATCH_DIRS (and says so
 * with one WATCH_OVERFLOW). */
struct watch *watch_open(const char *path, int recursive, watch_fn *fn, void *ctx);
/* Reports the first write to a newly created file as its own WATCH_MODIFIED (by default it
 * is part of the WATCH_CREATED): E2B's envd (fsnotify) shows a new file's create and write. */
void watch_report_writes(struct watch *w);
/* The consumer can take events again. */
void watch_resume(struct watch *w);
/* Stops watching and frees everything (also from inside the callback). */
void watch_close(struct watch *w);
/* Directories followed. */
int watch_dirs(const struct watch *w);

#endif
